#include "server/auth.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace tusk::server {
namespace {

std::string RoleName(auth::v1::Role r) { return absl::AsciiStrToLower(auth::v1::Role_Name(r)); }

constexpr char kNoToken[] =
    "this tuskd requires a token (tusk: TUSK_TOKEN or `tusk auth login`; "
    "tusk-runner and tusk-ingest: --token-file or TUSK_TOKEN)";

}  // namespace

std::string Caller::Describe() const {
  if (everyone) return "anyone";
  std::string scope;
  if (!token.repos().empty()) scope = " on " + absl::StrJoin(token.repos(), ",");
  if (!token.pipeline().empty()) scope = " of pipeline " + token.pipeline();
  return absl::StrCat("token ", token.id(), " (\"", token.name(), "\", ", RoleName(token.role()),
                      scope, ")");
}

absl::StatusOr<Caller> Authorizer::Authenticate(const grpc::ServerContext* ctx) const {
  Caller caller;
  if (!enabled()) {
    caller.everyone = true;
    return caller;
  }
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return absl::UnauthenticatedError(kNoToken);
  absl::string_view value(it->second.data(), it->second.size());
  if (!absl::ConsumePrefix(&value, "Bearer ") && !absl::ConsumePrefix(&value, "bearer ")) {
    return absl::UnauthenticatedError("the authorization header is not 'Bearer <token>'");
  }
  auto info = tokens_->Verify(absl::StripAsciiWhitespace(value), absl::Now());
  if (!info.ok()) return info.status();
  caller.token = *std::move(info);
  return caller;
}

bool Authorizer::Can(const Caller& caller, Access access, const std::string& repo) const {
  if (caller.everyone) return true;
  const auth::v1::TokenInfo& t = caller.token;
  switch (t.role()) {
    case auth::v1::ADMIN:
      return true;
    case auth::v1::WRITER:
    case auth::v1::READER:
      if (access == Access::kWrite && t.role() != auth::v1::WRITER) return false;
      return std::any_of(t.repos().begin(), t.repos().end(),
                         [&](const std::string& g) { return RepoGlobMatches(g, repo); });
    case auth::v1::RUNNER: {
      if (access != Access::kRead) return false;
      auto inputs =
          input_repos_ ? input_repos_(t.pipeline()) : absl::StatusOr<std::vector<std::string>>();
      return inputs.ok() && std::find(inputs->begin(), inputs->end(), repo) != inputs->end();
    }
    default:
      return false;
  }
}

absl::Status Authorizer::Check(const Caller& caller, Access access, const std::string& repo) const {
  if (Can(caller, access, repo)) return absl::OkStatus();
  const char* verb = access == Access::kRead ? "read" : "write";
  const char* role = access == Access::kRead ? "reader" : "writer";
  return absl::PermissionDeniedError(absl::StrCat(caller.Describe(), " may not ", verb, " repo \"",
                                                  repo, "\": that needs ", role, " on \"", repo,
                                                  "\" (or a glob matching it) or admin"));
}

absl::StatusOr<Caller> Authorizer::Require(const grpc::ServerContext* ctx, Access access,
                                           const std::string& repo) const {
  auto caller = Authenticate(ctx);
  if (!caller.ok()) return caller.status();
  absl::Status s = Check(*caller, access, repo);
  if (!s.ok()) return s;
  return caller;
}

absl::StatusOr<Caller> Authorizer::RequireAdmin(const grpc::ServerContext* ctx) const {
  auto caller = Authenticate(ctx);
  if (!caller.ok()) return caller.status();
  if (caller->everyone || caller->token.role() == auth::v1::ADMIN) return caller;
  return absl::PermissionDeniedError(
      absl::StrCat(caller->Describe(), " may not do this: it needs admin"));
}

absl::StatusOr<Caller> Authorizer::RequireAuthenticated(const grpc::ServerContext* ctx) const {
  return Authenticate(ctx);
}

absl::Status Authorizer::CheckRunner(const Caller& caller, const std::string& pipeline) const {
  if (caller.everyone) return absl::OkStatus();
  if (caller.token.role() == auth::v1::RUNNER && caller.token.pipeline() == pipeline) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat(caller.Describe(),
                                                  " may not run datums of pipeline \"", pipeline,
                                                  "\": that needs the pipeline's runner token"));
}

absl::StatusOr<Caller> Authorizer::RequireRunner(const grpc::ServerContext* ctx,
                                                 const std::string& pipeline) const {
  auto caller = Authenticate(ctx);
  if (!caller.ok()) return caller.status();
  absl::Status s = CheckRunner(*caller, pipeline);
  if (!s.ok()) return s;
  return caller;
}

}  // namespace tusk::server
