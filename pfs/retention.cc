// Retention: squashing a branch's old commits as its repo's policy says.

#include <algorithm>
#include <map>

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

absl::StatusOr<uint64_t> PfsImpl::ApplyRetention(absl::Time now) {
  ASSIGN_OR_RETURN(auto repos, ListRepo());
  uint64_t squashed = 0;
  for (const auto& r : repos) {
    if (!r.has_retention()) continue;
    ASSIGN_OR_RETURN(auto branches, ListBranch(r.name()));
    for (const auto& b : branches) {
      if (b.head().empty()) continue;
      absl::MutexLock lock(&meta_mu_);
      auto n = SquashBranch(r, b, now);
      if (!n.ok()) {
        LOG(WARNING) << "retention of " << r.name() << "@" << b.name() << ": " << n.status();
        continue;
      }
      squashed += *n;
    }
  }
  return squashed;
}

absl::StatusOr<uint64_t> PfsImpl::SquashBranch(const RepoInfo& repo_info,
                                               const BranchInfo& branch_in, absl::Time now) {
  const std::string& repo = repo_info.name();
  ASSIGN_OR_RETURN(auto b, GetBranch(repo, branch_in.name()));
  if (!b || b->head().empty()) return 0;
  const v1::Retention& keep = repo_info.retention();
  const int64_t keep_for_ns =
      keep.has_keep_for() ? TimeUtil::DurationToNanoseconds(keep.keep_for()) : 0;
  // Walk back from the head to the oldest commit that is kept.
  std::vector<CommitInfo> chain;
  ASSIGN_OR_RETURN(auto c, GetCommit(repo, b->head()));
  while (c) {
    chain.push_back(*c);
    if (c->parent().empty()) break;
    ASSIGN_OR_RETURN(c, GetCommit(repo, c->parent()));
  }
  size_t kept = 1;  // the head is always kept
  for (; kept < chain.size(); ++kept) {
    const CommitInfo& x = chain[kept];
    bool by_count = keep.keep_last() > 0 && kept < keep.keep_last();
    bool by_age =
        keep_for_ns > 0 && absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(x.finished())) +
                                   absl::Nanoseconds(keep_for_ns) >
                               now;
    if (!by_count && !by_age) break;
  }
  if (kept >= chain.size()) return 0;
  // chain[kept..] goes. Another branch may still need part of it (its head,
  // or the parent of one of its commits): then keep everything for now.
  absl::flat_hash_set<std::string> drop;
  for (size_t i = kept; i < chain.size(); ++i) drop.insert(chain[i].id());
  const std::string& child_id = chain[kept - 1].id();
  std::string blocker;
  RETURN_IF_ERROR(kv_->ScanPrefix(BranchPrefix(repo), [&](absl::string_view, absl::string_view v) {
    BranchInfo other;
    if (other.ParseFromString(std::string(v)) && drop.contains(other.head()))
      blocker = other.name();
    return blocker.empty();
  }));
  if (blocker.empty()) {
    RETURN_IF_ERROR(
        kv_->ScanPrefix(CommitPrefix(repo), [&](absl::string_view, absl::string_view v) {
          CommitInfo other;
          if (other.ParseFromString(std::string(v)) && drop.contains(other.parent()) &&
              !drop.contains(other.id()) && other.id() != child_id) {
            blocker = absl::StrCat(other.branch(), " (commit ", other.id(), ")");
          }
          return blocker.empty();
        }));
  }
  if (!blocker.empty()) {
    LOG(INFO) << "retention of " << repo << "@" << b->name() << ": " << drop.size()
              << " old commits are still needed by branch " << blocker << "; kept";
    return 0;
  }

  KvBatch batch;
  std::vector<storage::v1::MetaEvent> events;
  CommitInfo child = chain[kept - 1];
  child.set_parent("");
  uint64_t before = 0;
  auto it = child.metadata().find("squashed_commits");
  if (it != child.metadata().end()) (void)absl::SimpleAtoi(it->second, &before);
  (*child.mutable_metadata())["squashed_commits"] = absl::StrCat(before + drop.size());
  // Commits computed from a squashed commit now name the child.
  std::map<std::pair<std::string, std::string>, CommitInfo> rewritten;
  for (size_t i = kept; i < chain.size(); ++i) {
    const CommitInfo& d = chain[i];
    ASSIGN_OR_RETURN(auto sub, ScanCommitPairs(kv_.get(), SubvenancePrefix(repo, d.id())));
    for (const auto& [sr, sid] : sub) {
      auto key = std::make_pair(sr, sid);
      if (!rewritten.contains(key)) {
        ASSIGN_OR_RETURN(auto s, GetCommit(sr, sid));
        if (!s) continue;
        rewritten[key] = *s;
      }
      CommitInfo& s = rewritten[key];
      google::protobuf::RepeatedPtrField<v1::CommitRef> prov;
      bool has_child = false;
      for (const auto& p : s.provenance()) {
        if (p.repo() == repo && p.id() == child.id()) has_child = true;
      }
      for (const auto& p : s.provenance()) {
        if (p.repo() == repo && p.id() == d.id()) {
          if (has_child) continue;
          v1::CommitRef moved = p;
          moved.set_id(child.id());
          *prov.Add() = moved;
          has_child = true;
        } else {
          *prov.Add() = p;
        }
      }
      s.mutable_provenance()->Swap(&prov);
      batch.Put(SubvenanceKey(repo, child.id(), sr, sid), "");
    }
    RETURN_IF_ERROR(kv_->DeletePrefix(SubvenancePrefix(repo, d.id()), &batch));
    for (const auto& p : d.provenance())
      batch.Delete(SubvenanceKey(p.repo(), p.id(), repo, d.id()));
    batch.Delete(CommitKey(repo, d.id()));
    batch.Delete(CommitSetKey(d.commit_set(), repo, d.id()));
    storage::v1::MetaEvent gone;
    gone.mutable_deleted_commit()->set_repo(repo);
    gone.mutable_deleted_commit()->set_id(d.id());
    events.push_back(std::move(gone));
  }
  events.push_back(CommitEvent(child));
  batch.Put(CommitKey(repo, child.id()), child.SerializeAsString());
  for (const auto& [key, s] : rewritten) {
    events.push_back(CommitEvent(s));
    batch.Put(CommitKey(key.first, key.second), s.SerializeAsString());
  }
  RETURN_IF_ERROR(WriteLogged(std::move(events), &batch));
  LOG(INFO) << "retention of " << repo << "@" << b->name() << ": squashed " << drop.size()
            << " commits into " << child.id();
  return drop.size();
}

}  // namespace tusk::pfs
