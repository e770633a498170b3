#pragma once

// Authorizer: who a gRPC call comes from and whether it may do what it asks.
// Every handler of every service begins with one of its Require* calls (the
// auth test calls each RPC without a token and expects UNAUTHENTICATED).
//
// With authentication off (no TokenStore) every call is allowed: the
// single-user loopback default. With it on, a call carries
// `authorization: Bearer <token>`; a missing, unknown, revoked or expired
// token is UNAUTHENTICATED, and a token whose role does not allow the call is
// PERMISSION_DENIED naming the role it would need. Messages never contain a
// token's secret.
//
// Roles (proto/auth.proto): admin may do everything; writer and reader act
// on the repos their globs match (a repo's pipelines, jobs and sources count
// as the repo); a runner token runs one pipeline's datums and reads that
// pipeline's input repos.
//
// Thread-safe; owns nothing.

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/grpc_status.h"
#include "common/status.h"
#include "proto/auth.pb.h"
#include "server/tokens.h"

namespace grpc {
class ServerContext;
}  // namespace grpc

namespace tusk::server {

enum class Access { kRead, kWrite };

// The caller of one RPC.
struct Caller {
  bool everyone = false;  // authentication is off
  auth::v1::TokenInfo token;

  // How the caller is named in messages: `token 3f2a9c01d4e7 ("ci", writer on logs-*)`.
  std::string Describe() const;
};

class Authorizer {
 public:
  // The repos a pipeline reads (its runners may read them too).
  using InputRepos = std::function<absl::StatusOr<std::vector<std::string>>(const std::string&)>;

  // `tokens` null: authentication is off.
  Authorizer(TokenStore* tokens, InputRepos input_repos)
      : tokens_(tokens), input_repos_(std::move(input_repos)) {}

  bool enabled() const { return tokens_ != nullptr; }
  TokenStore* tokens() const { return tokens_; }

  absl::StatusOr<Caller> Authenticate(const grpc::ServerContext* ctx) const;

  // Whether `caller` may read or write `repo` (and its pipeline, jobs and
  // sources).
  bool Can(const Caller& caller, Access access, const std::string& repo) const;
  absl::Status Check(const Caller& caller, Access access, const std::string& repo) const;

  // Authenticate, then Check.
  absl::StatusOr<Caller> Require(const grpc::ServerContext* ctx, Access access,
                                 const std::string& repo) const;
  absl::StatusOr<Caller> RequireAdmin(const grpc::ServerContext* ctx) const;
  // Any valid token (what it may see is filtered by Can).
  absl::StatusOr<Caller> RequireAuthenticated(const grpc::ServerContext* ctx) const;
  // The runner protocol for `pipeline`: only that pipeline's runner tokens.
  absl::Status CheckRunner(const Caller& caller, const std::string& pipeline) const;
  absl::StatusOr<Caller> RequireRunner(const grpc::ServerContext* ctx,
                                       const std::string& pipeline) const;

 private:
  TokenStore* const tokens_;
  const InputRepos input_repos_;
};

// Returns the grpc::Status of a failed check (a Require* or an absl::Status)
// from the handler.
#define TUSK_AUTHORIZE(expr)                                     \
  do {                                                           \
    const auto& tusk_auth_ = (expr);                             \
    if (!tusk_auth_.ok()) {                                      \
      return ::tusk::ToGrpcStatus(::tusk::StatusOf(tusk_auth_)); \
    }                                                            \
  } while (0)

// As TUSK_AUTHORIZE, keeping the Caller: TUSK_AUTHORIZE_AS(Caller c, ...).
#define TUSK_AUTHORIZE_AS(lhs, expr) \
  TUSK_AUTHORIZE_AS_IMPL_(TUSK_STATUS_CONCAT_(tusk_caller_, __LINE__), lhs, expr)
#define TUSK_AUTHORIZE_AS_IMPL_(tmp, lhs, expr)             \
  auto tmp = (expr);                                        \
  if (!tmp.ok()) return ::tusk::ToGrpcStatus(tmp.status()); \
  lhs = std::move(*tmp)

}  // namespace tusk::server
