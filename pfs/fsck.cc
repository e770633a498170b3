// Fsck: verifies every reachable commit, node, chunk list and chunk, and every
// pack footer.

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"
#include "pfs/keys.h"
#include "pfs/pfs_impl.h"
#include "pfs/records.h"
#include "pfs/refs.h"

namespace tusk::pfs {

using google::protobuf::util::TimeUtil;
using storage::v1::StagedOp;

// One Fsck pass: what it has seen and found.
class FsckRun {
 public:
  FsckRun(BlobStore* blobs, NodeStore* nodes,
          const std::function<void(const std::string&)>& on_problem)
      : blobs_(blobs), nodes_(nodes), on_problem_(on_problem) {}

  void problem(const std::string& what) {
    stats.set_problems(stats.problems() + 1);
    on_problem_(what);
  }
  // Verifies one directory tree, reading every node from the store (not the
  // cache); `where` names the commit in problems.
  void CheckDir(const Hash& h, const std::string& path, const std::string& where);
  // Verifies a file's chunk list and chunks.
  void CheckFile(const Entry& e, const Hash& eh, const std::string& p, const std::string& where);

  v1::FsckResponse stats;

 private:
  BlobStore* blobs_;
  NodeStore* nodes_;
  const std::function<void(const std::string&)>& on_problem_;
  absl::flat_hash_set<Hash> seen_nodes, seen_chunks;
};

void FsckRun::CheckDir(const Hash& h, const std::string& path, const std::string& where) {
  if (h.IsZero() || !seen_nodes.insert(h).second) return;
  auto bytes = blobs_->Read(h);
  if (!bytes.ok()) {
    problem(absl::StrCat(where, ": directory ", path, ": ", bytes.status().message()));
    return;
  }
  TreeNode node;
  if (!node.ParseFromString(*bytes)) {
    problem(absl::StrCat(where, ": directory ", path, ": node ", h.Hex(), " does not parse"));
    return;
  }
  stats.set_nodes(stats.nodes() + 1);
  for (const auto& c : node.children()) {
    auto ch = Hash::FromRaw(c.hash());
    if (!ch.ok()) {
      problem(absl::StrCat(where, ": directory ", path, ": malformed child hash"));
      continue;
    }
    CheckDir(*ch, path, where);
  }
  for (const auto& e : node.entries()) {
    std::string p = JoinPath(path, e.name());
    auto eh = Hash::FromRaw(e.hash());
    if (!eh.ok()) {
      problem(absl::StrCat(where, ": ", p, ": malformed hash"));
      continue;
    }
    if (e.type() == Entry::DIR) {
      CheckDir(*eh, p, where);
      continue;
    }
    CheckFile(e, *eh, p, where);
  }
}

void FsckRun::CheckFile(const Entry& e, const Hash& eh, const std::string& p,
                        const std::string& where) {
  if (!seen_nodes.insert(eh).second) return;  // same content checked before
  auto list = nodes_->GetChunks(e);
  if (!list.ok()) {
    problem(absl::StrCat(where, ": file ", p, ": ", list.status().message()));
    return;
  }
  if (Sha256(list->SerializeAsString()) != eh) {
    problem(absl::StrCat(where, ": file ", p, ": chunk list does not match the file's hash"));
  }
  uint64_t total = 0;
  for (const auto& ref : list->chunks()) {
    total += ref.size();
    auto chh = Hash::FromRaw(ref.hash());
    if (!chh.ok()) {
      problem(absl::StrCat(where, ": file ", p, ": malformed chunk hash"));
      continue;
    }
    if (!seen_chunks.insert(*chh).second) continue;
    auto data = blobs_->Read(*chh);
    if (!data.ok()) {
      problem(absl::StrCat(where, ": file ", p, ": ", data.status().message()));
      continue;
    }
    if (data->size() != ref.size()) {
      problem(absl::StrCat(where, ": file ", p, ": chunk ", chh->Hex(), " has ", data->size(),
                           " bytes, the file says ", ref.size()));
    }
    stats.set_chunks(stats.chunks() + 1);
    stats.set_bytes(stats.bytes() + data->size());
  }
  if (total != e.size()) {
    problem(absl::StrCat(where, ": file ", p, ": chunks add up to ", total,
                         " bytes, the entry says ", e.size()));
  }
}

absl::StatusOr<v1::FsckResponse> PfsImpl::Fsck(
    const std::function<void(const std::string&)>& on_problem) {
  FsckRun run(blobs_.get(), nodes_.get(), on_problem);
  RETURN_IF_ERROR(FsckCommits(&run));
  RETURN_IF_ERROR(FsckPacks(&run));
  RETURN_IF_ERROR(FsckBranches(&run));
  return run.stats;
}

absl::Status PfsImpl::FsckCommits(FsckRun* run) {
  std::vector<CommitInfo> commits;
  RETURN_IF_ERROR(kv_->ScanPrefix(kCommitSpace, [&](absl::string_view k, absl::string_view v) {
    CommitInfo c;
    if (!c.ParseFromString(std::string(v))) {
      run->problem(absl::StrCat("commit record ", ToHex(k), " does not parse"));
    } else {
      commits.push_back(std::move(c));
    }
    return true;
  }));
  for (const auto& c : commits) {
    run->stats.set_commits(run->stats.commits() + 1);
    std::string where = absl::StrCat("commit ", c.repo(), "@", c.id());
    if (!c.parent().empty()) {
      auto p = GetCommit(c.repo(), c.parent());
      if (!p.ok() || !*p) run->problem(absl::StrCat(where, ": parent ", c.parent(), " is missing"));
    }
    if (c.state() != v1::FINISHED) continue;
    auto root = RootHash(c);
    if (!root.ok()) {
      run->problem(absl::StrCat(where, ": ", root.status().message()));
      continue;
    }
    run->CheckDir(*root, "/", where);
    auto info = GetDirInfo(nodes_.get(), *root);
    if (info.ok() && (info->size != c.size_bytes() || info->file_count != c.file_count())) {
      run->problem(absl::StrCat(where, ": records ", c.size_bytes(), " bytes in ", c.file_count(),
                                " files, its tree holds ", info->size, " bytes in ",
                                info->file_count));
    }
  }
  return absl::OkStatus();
}

absl::Status PfsImpl::FsckPacks(FsckRun* run) {
  uint64_t packs_checked = 0;
  // Every pack's footer: a rebuild depends on them, and a read of an
  // indexed blob does not look at them.
  std::vector<std::pair<std::string, uint64_t>> packs;
  RETURN_IF_ERROR(store_->List(kPackPrefix, [&](const std::string& key, uint64_t size) {
    if (!PackIdFromKey(key).empty()) packs.emplace_back(key, size);
  }));
  for (const auto& [key, size] : packs) {
    auto footer = ReadPackFooter(store_, key, size);
    if (absl::IsNotFound(footer.status())) continue;  // GC deleted it meanwhile
    if (!footer.ok()) run->problem(std::string(footer.status().message()));
    packs_checked++;
  }
  LOG(INFO) << "fsck: checked the footers of " << packs_checked << " packs";
  return absl::OkStatus();
}

absl::Status PfsImpl::FsckBranches(FsckRun* run) {
  RETURN_IF_ERROR(kv_->ScanPrefix(kBranchSpace, [&](absl::string_view, absl::string_view v) {
    BranchInfo b;
    if (!b.ParseFromString(std::string(v))) {
      run->problem("a branch record does not parse");
      return true;
    }
    std::string where = absl::StrCat("branch ", b.repo(), "@", b.name());
    if (!b.head().empty()) {
      auto c = GetCommit(b.repo(), b.head());
      if (!c.ok() || !*c) {
        run->problem(absl::StrCat(where, ": head ", b.head(), " is missing"));
      } else if ((*c)->state() != v1::FINISHED) {
        run->problem(absl::StrCat(where, ": head ", b.head(), " is not finished"));
      }
    }
    if (!b.open_commit().empty()) {
      auto c = GetCommit(b.repo(), b.open_commit());
      if (!c.ok() || !*c)
        run->problem(absl::StrCat(where, ": open commit ", b.open_commit(), " is missing"));
    }
    return true;
  }));
  return absl::OkStatus();
}

}  // namespace tusk::pfs
