#pragma once

// TokenStore: the bearer tokens of tuskd --auth. A token is
// `tusk_<id>_<secret>`; the store keeps its public id, its role and a SHA-256
// of the whole token, never the token itself, so a token is shown once, when
// it is made. Records are durable (KeySpace::PutRecord: logged to the object
// store like commits), so tokens survive a restart and an index rebuild.
//
// Lifecycle: Open() loads every record into memory; Verify() is then a hash
// and a map lookup. Thread-safe.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pfs/key_space.h"
#include "proto/auth.pb.h"

namespace tusk::server {

class TokenStore {
 public:
  // A token just made: the secret (shown once) and its record.
  struct Created {
    std::string token;
    auth::v1::TokenInfo info;
  };

  // `space` is the kTokenSpace of the index.
  static absl::StatusOr<std::unique_ptr<TokenStore>> Open(pfs::KeySpace space);

  // A new token as the request describes (InvalidArgument naming what is
  // wrong: a role without what it needs, a bad repo glob, a negative ttl).
  absl::StatusOr<Created> Create(const auth::v1::CreateTokenRequest& req,
                                 const std::string& created_by);
  // Makes the root token if there is none (tuskd's first start with --auth).
  absl::StatusOr<std::optional<Created>> EnsureRoot();
  // A new root token; the old one stops working.
  absl::StatusOr<Created> RotateRoot(const std::string& created_by);
  // NotFound if no token has this id.
  absl::Status Revoke(const std::string& id);
  // A new runner token for `pipeline`; earlier runner tokens of it are revoked.
  absl::StatusOr<Created> MintRunnerToken(const std::string& pipeline);
  absl::Status RevokeRunnerTokens(const std::string& pipeline);

  std::vector<auth::v1::TokenInfo> List() const;
  // The record of `token`: Unauthenticated if it is malformed, unknown,
  // revoked or expired. The message never repeats the token.
  absl::StatusOr<auth::v1::TokenInfo> Verify(absl::string_view token, absl::Time now) const;

 private:
  explicit TokenStore(pfs::KeySpace space) : space_(std::move(space)) {}
  absl::StatusOr<Created> Make(auth::v1::TokenInfo info, const std::string& id);
  absl::Status Delete(const std::string& id);

  const pfs::KeySpace space_;
  mutable absl::Mutex mu_;
  // Serializes writers so that a record and the map agree.
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::map<std::string, auth::v1::TokenRecord> records_ ABSL_GUARDED_BY(mu_);
};

// The `repos` glob `glob` matches repo `repo` (fnmatch rules: * ? [..]).
bool RepoGlobMatches(const std::string& glob, const std::string& repo);

}  // namespace tusk::server
