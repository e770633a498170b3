#include "pfs/records.h"

#include "absl/time/clock.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"

namespace tusk::pfs {

using google::protobuf::util::TimeUtil;
using v1::BranchInfo;
using v1::CommitInfo;
using v1::RepoInfo;

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ScanCommitPairs(
    Kv* kv, const std::string& prefix) {
  std::vector<std::pair<std::string, std::string>> out;
  RETURN_IF_ERROR(kv->ScanPrefix(prefix, [&](absl::string_view k, absl::string_view) {
    absl::string_view rest = k.substr(prefix.size());
    size_t nul = rest.find('\0');
    if (nul != absl::string_view::npos) {
      out.emplace_back(std::string(rest.substr(0, nul)), std::string(rest.substr(nul + 1)));
    }
    return true;
  }));
  return out;
}

// Deletes every key starting with `prefix`, one by one. RocksDB range
// tombstones would be cheaper to write but make every later read in the
// memtable slower (RocksDB 7.x rebuilds them per read), and commits are frequent.
absl::StatusOr<Hash> RootHash(const CommitInfo& c) {
  if (c.root().empty()) return Hash{};
  auto h = Hash::FromHex(c.root());
  if (!h.ok()) return absl::DataLossError(absl::StrCat("commit ", c.id(), " has a malformed root"));
  return *h;
}

storage::v1::MetaEvent RepoEvent(const RepoInfo& r) {
  storage::v1::MetaEvent e;
  *e.mutable_repo() = r;
  e.mutable_repo()->clear_branches();
  e.mutable_repo()->clear_size_bytes();
  return e;
}
// The durable part of a branch: an open commit does not survive a rebuild.
storage::v1::MetaEvent BranchEvent(const BranchInfo& b) {
  storage::v1::MetaEvent e;
  *e.mutable_branch() = b;
  e.mutable_branch()->clear_open_commit();
  e.mutable_branch()->clear_subvenance();
  return e;
}
storage::v1::MetaEvent CommitEvent(const CommitInfo& c) {
  storage::v1::MetaEvent e;
  *e.mutable_commit() = c;
  e.mutable_commit()->clear_subvenance();
  return e;
}

}  // namespace tusk::pfs
