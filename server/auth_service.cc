#include "server/auth_service.h"

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace tusk::server {

absl::Status AuthService::Enabled() const {
  if (auth_->enabled()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      "authentication is off: tokens exist only when tuskd runs with --auth");
}

grpc::Status AuthService::WhoAmI(grpc::ServerContext* ctx, const auth::v1::WhoAmIRequest*,
                                 auth::v1::WhoAmIResponse* out) {
  TUSK_AUTHORIZE_AS(Caller caller, auth_->RequireAuthenticated(ctx));
  out->set_auth_enabled(!caller.everyone);
  if (!caller.everyone) *out->mutable_token() = caller.token;
  return grpc::Status::OK;
}

grpc::Status AuthService::CreateToken(grpc::ServerContext* ctx,
                                      const auth::v1::CreateTokenRequest* req,
                                      auth::v1::CreateTokenResponse* out) {
  TUSK_AUTHORIZE(Enabled());
  TUSK_AUTHORIZE_AS(Caller caller, auth_->RequireAdmin(ctx));
  auto made = auth_->tokens()->Create(*req, caller.token.id());
  if (!made.ok()) return ToGrpcStatus(made.status());
  LOG(INFO) << caller.Describe() << " created token " << made->info.id() << " ("
            << made->info.name() << ")";
  out->set_token(made->token);
  *out->mutable_info() = made->info;
  return grpc::Status::OK;
}

grpc::Status AuthService::RevokeToken(grpc::ServerContext* ctx,
                                      const auth::v1::RevokeTokenRequest* req,
                                      auth::v1::RevokeTokenResponse*) {
  TUSK_AUTHORIZE(Enabled());
  TUSK_AUTHORIZE_AS(Caller caller, auth_->RequireAuthenticated(ctx));
  if (caller.token.id() != req->id()) TUSK_AUTHORIZE(auth_->RequireAdmin(ctx));
  absl::Status s = auth_->tokens()->Revoke(req->id());
  if (s.ok()) LOG(INFO) << caller.Describe() << " revoked token " << req->id();
  return ToGrpcStatus(s);
}

grpc::Status AuthService::ListTokens(grpc::ServerContext* ctx, const auth::v1::ListTokensRequest*,
                                     auth::v1::ListTokensResponse* out) {
  TUSK_AUTHORIZE(Enabled());
  TUSK_AUTHORIZE(auth_->RequireAdmin(ctx));
  for (auto& t : auth_->tokens()->List()) *out->add_tokens() = std::move(t);
  return grpc::Status::OK;
}

grpc::Status AuthService::RotateRootToken(grpc::ServerContext* ctx,
                                          const auth::v1::RotateRootTokenRequest*,
                                          auth::v1::CreateTokenResponse* out) {
  TUSK_AUTHORIZE(Enabled());
  TUSK_AUTHORIZE_AS(Caller caller, auth_->RequireAdmin(ctx));
  auto made = auth_->tokens()->RotateRoot(caller.token.id());
  if (!made.ok()) return ToGrpcStatus(made.status());
  LOG(INFO) << caller.Describe() << " rotated the root token";
  out->set_token(made->token);
  *out->mutable_info() = made->info;
  return grpc::Status::OK;
}

}  // namespace tusk::server
