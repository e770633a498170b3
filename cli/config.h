#pragma once

// The CLI's contexts (pachctl's `config` habits): named sets of tuskd
// address, token and TLS files in a YAML file, one of them current.
//
//   current-context: prod
//   contexts:
//     prod: {address: tusk.example.com:1650, token: tusk_..., tls-ca: /etc/tusk/ca.pem}
//
// The file is $TUSK_CONFIG, else $XDG_CONFIG_HOME/tusk/config.yaml, else
// ~/.config/tusk/config.yaml; it is written with mode 0600 (it holds
// tokens). What a command connects with: --address, then TUSK_ADDRESS, then
// the current context, then 127.0.0.1:1650; TUSK_TOKEN and TUSK_TLS_* win
// over the context's, and the context's token and TLS files are used only
// when the address is the context's.

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "common/grpc_channel.h"

namespace tusk::cli {

struct Context {
  std::string address;
  std::string token;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_server_name;
};

struct Config {
  std::string current;
  std::map<std::string, Context> contexts;

  // The current context, or nullptr.
  const Context* Current() const;
};

std::string ConfigPath();
// An absent file is an empty Config; a file that does not parse is
// InvalidArgument naming it and the line.
absl::StatusOr<Config> LoadConfig(const std::string& path);
absl::Status SaveConfig(const std::string& path, const Config& config);

// The address and channel options a command uses: the --address flag (may
// be empty) and what `channel` holds already (--tls-ca) first, then the
// environment, then the current context.
absl::Status ResolveConnection(const std::string& address_flag, std::string* address,
                               ChannelOptions* channel);

}  // namespace tusk::cli
