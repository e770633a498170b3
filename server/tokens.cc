#include "server/tokens.h"

#include <fnmatch.h>
#include <sys/random.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/hash.h"
#include "common/proto_util.h"
#include "common/status.h"
#include "pfs/keys.h"
#include "pfs/refs.h"

namespace tusk::server {
namespace {

using auth::v1::TokenInfo;
using auth::v1::TokenRecord;

constexpr char kTokenPrefix[] = "tusk_";
constexpr char kRootId[] = "root";

absl::StatusOr<std::string> RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = getrandom(raw.data() + got, bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("getrandom: ", strerror(errno)));
    }
    got += n;
  }
  return absl::BytesToHexString(raw);
}

// Equal without an early exit: how long a comparison takes says nothing
// about how much of a guess was right.
bool SameBytes(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i];
  return diff == 0;
}

absl::Status ValidateGlob(const std::string& glob) {
  if (glob.empty()) return absl::InvalidArgumentError("a repo glob is empty");
  // A glob is a repo name with wildcards: the name rules with * ? [ ] allowed.
  std::string probe;
  for (char c : glob) probe.push_back(c == '*' || c == '?' || c == '[' || c == ']' ? 'x' : c);
  absl::Status s = pfs::ValidateRepoName(probe);
  if (!s.ok())
    return absl::InvalidArgumentError(absl::StrCat("repo glob \"", glob, "\": ", s.message()));
  return absl::OkStatus();
}

}  // namespace

bool RepoGlobMatches(const std::string& glob, const std::string& repo) {
  return fnmatch(glob.c_str(), repo.c_str(), 0) == 0;
}

absl::StatusOr<std::unique_ptr<TokenStore>> TokenStore::Open(pfs::KeySpace space) {
  auto store = std::unique_ptr<TokenStore>(new TokenStore(std::move(space)));
  absl::Status parse = absl::OkStatus();
  absl::MutexLock lock(&store->mu_);
  RETURN_IF_ERROR(store->space_.ScanPrefix(
      pfs::kTokenSpace, [&](absl::string_view key, absl::string_view value) {
        auto rec = ParseProto<TokenRecord>(value, absl::StrCat("token record ", key));
        if (!rec.ok()) {
          parse = rec.status();
          return false;
        }
        store->records_[rec->info().id()] = *std::move(rec);
        return true;
      }));
  RETURN_IF_ERROR(parse);
  return store;
}

absl::StatusOr<TokenStore::Created> TokenStore::Make(TokenInfo info, const std::string& id) {
  ASSIGN_OR_RETURN(std::string secret, RandomHex(20));
  Created c;
  c.token = absl::StrCat(kTokenPrefix, id, "_", secret);
  info.set_id(id);
  *info.mutable_created() = NowTimestamp();
  TokenRecord rec;
  *rec.mutable_info() = info;
  rec.set_hash(Sha256(c.token).Raw());
  RETURN_IF_ERROR(space_.PutRecord(pfs::TokenKey(id), rec.SerializeAsString()));
  {
    absl::MutexLock lock(&mu_);
    records_[id] = rec;
  }
  c.info = std::move(info);
  return c;
}

absl::Status TokenStore::Delete(const std::string& id) {
  RETURN_IF_ERROR(space_.DeleteRecord(pfs::TokenKey(id)));
  absl::MutexLock lock(&mu_);
  records_.erase(id);
  return absl::OkStatus();
}

absl::StatusOr<TokenStore::Created> TokenStore::Create(const auth::v1::CreateTokenRequest& req,
                                                       const std::string& created_by) {
  TokenInfo info;
  info.set_role(req.role());
  info.set_name(req.name());
  info.set_created_by(created_by);
  switch (req.role()) {
    case auth::v1::ADMIN:
      if (req.repos_size() > 0 || !req.pipeline().empty()) {
        return absl::InvalidArgumentError("an admin token takes no repos or pipeline");
      }
      break;
    case auth::v1::WRITER:
    case auth::v1::READER:
      if (req.repos_size() == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("a ", auth::v1::Role_Name(req.role()),
                         " token needs at least one repo (a name or a glob such as 'logs-*')"));
      }
      if (!req.pipeline().empty()) {
        return absl::InvalidArgumentError("only a runner token names a pipeline");
      }
      for (const auto& g : req.repos()) {
        RETURN_IF_ERROR(ValidateGlob(g));
        info.add_repos(g);
      }
      break;
    case auth::v1::RUNNER:
      if (req.pipeline().empty())
        return absl::InvalidArgumentError("a runner token needs a pipeline");
      if (req.repos_size() > 0) return absl::InvalidArgumentError("a runner token takes no repos");
      RETURN_IF_ERROR(pfs::ValidateRepoName(req.pipeline()));
      info.set_pipeline(req.pipeline());
      break;
    default:
      return absl::InvalidArgumentError("a token needs a role: admin, writer, reader or runner");
  }
  if (req.has_ttl()) {
    absl::Duration ttl = FromDuration(req.ttl());
    if (ttl < absl::ZeroDuration()) return absl::InvalidArgumentError("the ttl is negative");
    if (ttl > absl::ZeroDuration()) *info.mutable_expires() = ToTimestamp(absl::Now() + ttl);
  }
  if (info.name().empty()) info.set_name(absl::AsciiStrToLower(auth::v1::Role_Name(req.role())));
  absl::MutexLock write(&write_mu_);
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(std::string id, RandomHex(6));
    bool taken;
    {
      absl::MutexLock lock(&mu_);
      taken = records_.count(id) > 0;
    }
    if (!taken) return Make(std::move(info), id);
    if (attempt > 8) return absl::InternalError("could not pick a free token id");
  }
}

absl::StatusOr<std::optional<TokenStore::Created>> TokenStore::EnsureRoot() {
  absl::MutexLock write(&write_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (records_.count(kRootId)) return std::optional<Created>();
  }
  TokenInfo info;
  info.set_role(auth::v1::ADMIN);
  info.set_name("root");
  info.set_root(true);
  ASSIGN_OR_RETURN(Created c, Make(std::move(info), kRootId));
  return std::optional<Created>(std::move(c));
}

absl::StatusOr<TokenStore::Created> TokenStore::RotateRoot(const std::string& created_by) {
  absl::MutexLock write(&write_mu_);
  TokenInfo info;
  info.set_role(auth::v1::ADMIN);
  info.set_name("root");
  info.set_root(true);
  info.set_created_by(created_by);
  // One write replaces the record: the old secret stops working as the new
  // one starts.
  return Make(std::move(info), kRootId);
}

absl::Status TokenStore::Revoke(const std::string& id) {
  absl::MutexLock write(&write_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (!records_.count(id)) return absl::NotFoundError(absl::StrCat("token ", id, " not found"));
  }
  if (id == kRootId) {
    return absl::FailedPreconditionError(
        "the root token cannot be revoked, only rotated (tusk auth rotate-root-token)");
  }
  return Delete(id);
}

absl::StatusOr<TokenStore::Created> TokenStore::MintRunnerToken(const std::string& pipeline) {
  RETURN_IF_ERROR(RevokeRunnerTokens(pipeline));
  auth::v1::CreateTokenRequest req;
  req.set_role(auth::v1::RUNNER);
  req.set_pipeline(pipeline);
  req.set_name("runner:" + pipeline);
  return Create(req, "tuskd");
}

absl::Status TokenStore::RevokeRunnerTokens(const std::string& pipeline) {
  absl::MutexLock write(&write_mu_);
  std::vector<std::string> ids;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, rec] : records_) {
      if (rec.info().role() == auth::v1::RUNNER && rec.info().pipeline() == pipeline) {
        ids.push_back(id);
      }
    }
  }
  for (const auto& id : ids) RETURN_IF_ERROR(Delete(id));
  return absl::OkStatus();
}

std::vector<TokenInfo> TokenStore::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<TokenInfo> out;
  for (const auto& [id, rec] : records_) out.push_back(rec.info());
  return out;
}

absl::StatusOr<TokenInfo> TokenStore::Verify(absl::string_view token, absl::Time now) const {
  // tusk_<id>_<secret>
  if (token.substr(0, sizeof(kTokenPrefix) - 1) != kTokenPrefix) {
    return absl::UnauthenticatedError("the token is malformed (tusk tokens begin with tusk_)");
  }
  absl::string_view rest = token.substr(sizeof(kTokenPrefix) - 1);
  size_t sep = rest.find('_');
  if (sep == absl::string_view::npos || sep == 0) {
    return absl::UnauthenticatedError("the token is malformed");
  }
  std::string id(rest.substr(0, sep));
  const std::string hash = Sha256(token).Raw();
  absl::MutexLock lock(&mu_);
  auto it = records_.find(id);
  if (it == records_.end() || !SameBytes(it->second.hash(), hash)) {
    return absl::UnauthenticatedError(
        absl::StrCat("token ", id, " is unknown or was revoked or rotated"));
  }
  const TokenInfo& info = it->second.info();
  if (info.has_expires() && FromTimestamp(info.expires()) <= now) {
    return absl::UnauthenticatedError(absl::StrCat(
        "token ", id, " expired at ", absl::FormatTime(FromTimestamp(info.expires()))));
  }
  return info;
}

}  // namespace tusk::server
