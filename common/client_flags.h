#pragma once

// The flags with which tusk-runner and tusk-ingest reach a secured tuskd:
// --token-file, --tls-ca, --tls-cert, --tls-key, --tls-server-name. Each
// falls back to its environment variable (TUSK_TOKEN, TUSK_TLS_CA, ...).
// Linked into those binaries' mains only (libraries take ChannelOptions).

#include "absl/status/statusor.h"
#include "common/grpc_channel.h"

namespace tusk {

// For a usage text.
inline constexpr char kClientFlagsHelp[] =
    R"(  --token-file FILE     the token to call tuskd with (tuskd --auth); default
                        $TUSK_TOKEN
  --tls-ca FILE         reach tuskd over TLS, trusting this PEM CA bundle
                        (default $TUSK_TLS_CA; none: plaintext)
  --tls-cert FILE       client certificate for mutual TLS ($TUSK_TLS_CERT)
  --tls-key FILE        its PEM private key ($TUSK_TLS_KEY)
  --tls-server-name N   the name tuskd's certificate must carry, when not the
                        address's host
)";

// The flags (then the environment) as ChannelOptions; InvalidArgument for an
// unreadable or empty token file.
absl::StatusOr<ChannelOptions> ChannelOptionsFromFlags();

}  // namespace tusk
