#pragma once

// AuthService: tokens over gRPC (service tusk.auth.v1.Auth). WhoAmI takes any
// valid token; the rest need admin (a token may also revoke itself). With
// authentication off every call but WhoAmI is FailedPrecondition.
// Thread-safe; owns nothing.

#include "proto/auth.grpc.pb.h"
#include "server/auth.h"

namespace tusk::server {

class AuthService final : public auth::v1::Auth::Service {
 public:
  explicit AuthService(const Authorizer* auth) : auth_(auth) {}

  grpc::Status WhoAmI(grpc::ServerContext*, const auth::v1::WhoAmIRequest*,
                      auth::v1::WhoAmIResponse*) override;
  grpc::Status CreateToken(grpc::ServerContext*, const auth::v1::CreateTokenRequest*,
                           auth::v1::CreateTokenResponse*) override;
  grpc::Status RevokeToken(grpc::ServerContext*, const auth::v1::RevokeTokenRequest*,
                           auth::v1::RevokeTokenResponse*) override;
  grpc::Status ListTokens(grpc::ServerContext*, const auth::v1::ListTokensRequest*,
                          auth::v1::ListTokensResponse*) override;
  grpc::Status RotateRootToken(grpc::ServerContext*, const auth::v1::RotateRootTokenRequest*,
                               auth::v1::CreateTokenResponse*) override;

 private:
  // FailedPrecondition when authentication is off.
  absl::Status Enabled() const;

  const Authorizer* const auth_;
};

}  // namespace tusk::server
