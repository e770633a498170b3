#include "common/client_flags.h"

#include <gflags/gflags.h>

DEFINE_string(token_file, "", "file holding the token to call tuskd with (default $TUSK_TOKEN)");
DEFINE_string(tls_ca, "", "PEM CA bundle: reach tuskd over TLS (default $TUSK_TLS_CA)");
DEFINE_string(tls_cert, "", "PEM client certificate for mutual TLS (default $TUSK_TLS_CERT)");
DEFINE_string(tls_key, "", "PEM key of --tls-cert (default $TUSK_TLS_KEY)");
DEFINE_string(tls_server_name, "", "name tuskd's certificate must carry, if not the host's");

namespace tusk {

absl::StatusOr<ChannelOptions> ChannelOptionsFromFlags() {
  ChannelOptions o;
  if (!FLAGS_token_file.empty()) {
    auto token = ReadTokenFile(FLAGS_token_file);
    if (!token.ok()) return token.status();
    o.token = *token;
  }
  o.tls_ca = FLAGS_tls_ca;
  o.tls_cert = FLAGS_tls_cert;
  o.tls_key = FLAGS_tls_key;
  o.tls_server_name = FLAGS_tls_server_name;
  ApplyChannelEnv(&o);
  return o;
}

}  // namespace tusk
