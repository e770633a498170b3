#pragma once

// Channels and servers with the settings every tusk process shares: the
// gRPC message limit (a message tuskd may send, such as a lease carrying a
// pipeline's transform or a batch of file data, is one every client
// accepts), reconnect backoff, and how a client proves who it is: a bearer
// token sent with every call, and TLS (optionally with a client
// certificate) when a CA is given.

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace tusk {

inline constexpr int kMaxGrpcMessageBytes = 64 << 20;

struct ChannelOptions {
  // Sent as `authorization: Bearer <token>` with every call; empty: none.
  std::string token;
  // TLS: verify tuskd's certificate against this CA bundle (PEM file).
  // Empty: plaintext, unless `tls` is set (then the system's roots).
  std::string tls_ca;
  bool tls = false;
  // A client certificate and key (PEM files) for mutual TLS.
  std::string tls_cert;
  std::string tls_key;
  // The name tuskd's certificate must carry, when not the address's host.
  std::string tls_server_name;
};

// A channel to `address` (host:port, or unix:PATH) with the shared limits
// and no transparent retries. Errors: InvalidArgument for a PEM file that
// cannot be read or a key without a certificate.
absl::StatusOr<std::shared_ptr<grpc::Channel>> NewChannel(const std::string& address,
                                                          const ChannelOptions& options);
// Plaintext and no token (tests, the embedded default on loopback).
std::shared_ptr<grpc::Channel> NewChannel(const std::string& address);

// The token and TLS settings a tusk client takes from its environment:
// TUSK_TOKEN, TUSK_TLS_CA, TUSK_TLS_CERT, TUSK_TLS_KEY. A field already set wins.
void ApplyChannelEnv(ChannelOptions* options);
// The token in `path` (surrounding white space removed); InvalidArgument if
// it cannot be read or is empty.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

struct ServerTlsOptions {
  std::string cert;       // PEM certificate chain; empty: plaintext
  std::string key;        // PEM private key
  std::string client_ca;  // PEM CA bundle: clients must present a certificate it signed
};
// The credentials a server listens with (InvalidArgument for unreadable files).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const ServerTlsOptions& tls);

// The shared limits applied to a server being built.
void ApplyMessageLimits(grpc::ServerBuilder* builder);

}  // namespace tusk
