// Auth: whoami, create-token, revoke-token, list-tokens, rotate-root-token.

#include <grpcpp/grpcpp.h>

#include <iostream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "cli/command.h"
#include "cli/command_base.h"
#include "cli/output.h"
#include "common/flag_values.h"
#include "common/proto_util.h"
#include "proto/auth.grpc.pb.h"

namespace tusk::cli {
namespace {

namespace av1 = tusk::auth::v1;

std::string RoleName(av1::Role r) { return absl::AsciiStrToLower(av1::Role_Name(r)); }

std::string Scope(const av1::TokenInfo& t) {
  if (!t.pipeline().empty()) return "pipeline " + t.pipeline();
  if (t.repos_size() > 0) return absl::StrJoin(t.repos(), ",");
  return "-";
}

std::string Expires(const av1::TokenInfo& t) {
  if (!t.has_expires()) return "never";
  std::string when = Time(t.expires());
  return FromTimestamp(t.expires()) <= absl::Now() ? when + " (expired)" : when;
}

class AuthCommands : public CommandBase {
 public:
  explicit AuthCommands(const Invocation& inv)
      : CommandBase(inv), auth_(av1::Auth::NewStub(inv.channel)) {}

  int WhoAmI() {
    return CallOn(auth_.get(), &av1::Auth::Stub::WhoAmI, av1::WhoAmIRequest(),
                  [&](const av1::WhoAmIResponse& r) {
                    if (!r.auth_enabled()) {
                      std::cout << "authentication is off at " << address_
                                << ": every caller may do everything\n";
                      return;
                    }
                    const auto& t = r.token();
                    std::cout << "Token: " << t.id() << "\nName: " << t.name()
                              << "\nRole: " << RoleName(t.role()) << "\nScope: " << Scope(t)
                              << "\nExpires: " << Expires(t) << "\n";
                  });
  }

  int CreateToken() {
    av1::CreateTokenRequest req;
    std::string role = absl::AsciiStrToLower(args_.Get("--role"));
    av1::Role r;
    if (role.empty() || !av1::Role_Parse(absl::AsciiStrToUpper(role), &r) ||
        r == av1::ROLE_UNSPECIFIED) {
      return UsageError("--role must be admin, writer, reader or runner");
    }
    req.set_role(r);
    auto repos = args_.values.find("--repo");
    if (repos != args_.values.end()) {
      for (const auto& g : repos->second) req.add_repos(g);
    }
    req.set_pipeline(args_.Get("--pipeline"));
    req.set_name(args_.Get("--name"));
    if (args_.Has("--ttl")) {
      auto ttl = ParseFlagDuration("--ttl", args_.Get("--ttl"));
      if (!ttl.ok()) return UsageError(std::string(ttl.status().message()));
      *req.mutable_ttl() = ToDuration(*ttl);
    }
    return CallOn(auth_.get(), &av1::Auth::Stub::CreateToken, req,
                  [&](const av1::CreateTokenResponse& resp) { PrintCreated(resp); });
  }

  int RevokeToken() {
    av1::RevokeTokenRequest req;
    req.set_id(args_.positional[0]);
    return CallOn(auth_.get(), &av1::Auth::Stub::RevokeToken, req,
                  [&](const av1::RevokeTokenResponse&) {
                    std::cout << "revoked token " << req.id() << "\n";
                  });
  }

  int ListTokens() {
    return CallOn(
        auth_.get(), &av1::Auth::Stub::ListTokens, av1::ListTokensRequest(),
        [&](const av1::ListTokensResponse& r) {
          Table t({"ID", "NAME", "ROLE", "SCOPE", "CREATED", "EXPIRES"});
          for (const auto& k : r.tokens()) {
            t.Add({k.id(), k.name(), RoleName(k.role()), Scope(k), Time(k.created()), Expires(k)});
          }
          t.Print();
        });
  }

  int RotateRootToken() {
    return CallOn(auth_.get(), &av1::Auth::Stub::RotateRootToken, av1::RotateRootTokenRequest(),
                  [&](const av1::CreateTokenResponse& resp) { PrintCreated(resp); });
  }

 private:
  // The token alone on standard output (TOKEN=$(tusk auth create-token ...)),
  // what it is on standard error.
  static void PrintCreated(const av1::CreateTokenResponse& resp) {
    std::cout << resp.token() << "\n";
    std::cerr << "token " << resp.info().id() << " (\"" << resp.info().name() << "\", "
              << RoleName(resp.info().role()) << " on " << Scope(resp.info()) << ", expires "
              << Expires(resp.info()) << "): shown once; tuskd keeps only its hash\n";
  }

  std::unique_ptr<av1::Auth::Stub> auth_;
};

}  // namespace

void AddAuthCommands(CommandTable* table) {
  table->Add({"auth whoami",
              "Auth",
              "auth whoami",
              "  The token this command runs with: its id, name, role and scope (or that\n"
              "  tuskd runs without authentication).\n",
              0,
              0,
              {},
              Run<AuthCommands, &AuthCommands::WhoAmI>});
  table->Add({"auth create-token",
              "Auth",
              "auth create-token --role ROLE [--repo GLOB]... [--pipeline P] [--name N] [--ttl "
              "DUR]",
              "  Makes a token (admin only) and prints it once; tuskd keeps only its hash.\n"
              "  Roles: admin (everything), writer or reader of the repos --repo names\n"
              "  (names or globs such as 'logs-*'; repeatable; a repo's pipelines, jobs and\n"
              "  sources count as the repo), runner of --pipeline P (tuskd makes these for\n"
              "  its own runners). --ttl 30d makes it expire.\n",
              0,
              0,
              {{"--role", true},
               {"--repo", true, true},
               {"--pipeline", true},
               {"--name", true},
               {"--ttl", true}},
              Run<AuthCommands, &AuthCommands::CreateToken>});
  table->Add({"auth revoke-token",
              "Auth",
              "auth revoke-token ID",
              "  Revokes a token by its id (see list-tokens): calls with it fail from now\n"
              "  on. Admin, or the token itself.\n",
              1,
              1,
              {},
              Run<AuthCommands, &AuthCommands::RevokeToken>});
  table->Add({"auth list-tokens",
              "Auth",
              "auth list-tokens",
              "  Every token's id, name, role, scope, creation and expiry (never the\n"
              "  secret). Admin.\n",
              0,
              0,
              {},
              Run<AuthCommands, &AuthCommands::ListTokens>});
  table->Add({"auth rotate-root-token",
              "Auth",
              "auth rotate-root-token",
              "  A new root token, printed once; the old one stops working. Admin. (A lost\n"
              "  root token: restart tuskd with --rotate-root-token.)\n",
              0,
              0,
              {},
              Run<AuthCommands, &AuthCommands::RotateRootToken>});
}

}  // namespace tusk::cli
