// Deleting commits, retention, checkpoints, garbage collection and durable
// records: the parts of Pfs that remove things.

#include <algorithm>
#include <map>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"
#include "pfs/keys.h"
#include "pfs/pfs.h"
#include "pfs/records.h"
#include "pfs/refs.h"

namespace tusk::pfs {

using google::protobuf::util::TimeUtil;

namespace {

// Marks into a set: trees are walked once per distinct node.
class SetMarker : public GcMarker {
 public:
  SetMarker(NodeStore* nodes, absl::flat_hash_set<Hash>* live) : nodes_(nodes), live_(live) {}

  absl::Status Tree(const Hash& root) override {
    std::vector<Hash> stack;
    if (!root.IsZero()) stack.push_back(root);
    while (!stack.empty()) {
      Hash h = stack.back();
      stack.pop_back();
      // Visited apart from `live`, which may hold a node already (an upload
      // touched it) whose subtree is still to be marked.
      if (!visited_.insert(h).second) continue;
      live_->insert(h);
      ASSIGN_OR_RETURN(auto node, nodes_->Get(h));
      for (const auto& c : node->children()) {
        ASSIGN_OR_RETURN(Hash ch, Hash::FromRaw(c.hash()));
        stack.push_back(ch);
      }
      for (const auto& e : node->entries()) {
        ASSIGN_OR_RETURN(Hash eh, Hash::FromRaw(e.hash()));
        if (e.type() == Entry::DIR) {
          stack.push_back(eh);
          continue;
        }
        RETURN_IF_ERROR(File(e));
      }
    }
    return absl::OkStatus();
  }

  absl::Status File(const Entry& e) {
    ASSIGN_OR_RETURN(Hash eh, Hash::FromRaw(e.hash()));
    if (!visited_.insert(eh).second) return absl::OkStatus();
    if (e.chunk_list_blob()) live_->insert(eh);
    ASSIGN_OR_RETURN(ChunkList list, nodes_->GetChunks(e));
    Chunks(list);
    return absl::OkStatus();
  }

  void Chunks(const ChunkList& chunks) override {
    for (const auto& ref : chunks.chunks()) {
      auto h = Hash::FromRaw(ref.hash());
      if (h.ok()) live_->insert(*h);
    }
  }

 private:
  NodeStore* nodes_;
  absl::flat_hash_set<Hash>* live_;
  absl::flat_hash_set<Hash> visited_;  // tree nodes and files walked
};

}  // namespace

// ---------------------------------------------------------------------------
// Repos and commits

absl::StatusOr<RepoInfo> Pfs::UpdateRepo(const std::string& name,
                                         const std::optional<std::string>& description,
                                         const std::optional<v1::Retention>& retention) {
  RETURN_IF_ERROR(ValidateRepoName(name));
  if (retention && retention->has_keep_for() &&
      TimeUtil::DurationToNanoseconds(retention->keep_for()) < 0) {
    return absl::InvalidArgumentError("retention keep_for must not be negative");
  }
  {
    absl::MutexLock lock(&meta_mu_);
    ASSIGN_OR_RETURN(auto r, GetRepo(name));
    if (!r) return absl::NotFoundError(absl::StrCat("repo ", name, " not found"));
    if (description) r->set_description(*description);
    if (retention) {
      if (retention->keep_last() == 0 &&
          (!retention->has_keep_for() ||
           TimeUtil::DurationToNanoseconds(retention->keep_for()) == 0)) {
        r->clear_retention();
      } else {
        *r->mutable_retention() = *retention;
      }
    }
    KvBatch batch;
    batch.Put(RepoKey(name), r->SerializeAsString());
    RETURN_IF_ERROR(WriteLogged({RepoEvent(*r)}, &batch));
  }
  TUSK_LOG(INFO) << "updated repo " << name;
  return InspectRepo(name);
}

absl::StatusOr<std::vector<BranchInfo>> Pfs::DeleteCommit(const std::string& repo,
                                                          const std::string& ref) {
  ASSIGN_OR_RETURN(CommitInfo c, ResolveCommit(repo, ref));
  absl::MutexLock lock(&meta_mu_);
  ASSIGN_OR_RETURN(auto current, GetCommit(repo, c.id()));
  if (!current)
    return absl::NotFoundError(absl::StrCat("commit ", repo, "@", c.id(), " not found"));
  c = *current;
  if (c.state() != v1::FINISHED) {
    return absl::FailedPreconditionError(absl::StrCat(
        "commit ", repo, "@", c.id(), " is open; finish it (or delete its branch) first"));
  }
  // Children: commits whose parent it is (open ones included).
  std::vector<std::string> children;
  RETURN_IF_ERROR(kv_->ScanPrefix(CommitPrefix(repo), [&](absl::string_view, absl::string_view v) {
    CommitInfo other;
    if (other.ParseFromString(std::string(v)) && other.parent() == c.id())
      children.push_back(other.id());
    return true;
  }));
  if (!children.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("commit ", repo, "@", c.id(), " has ", children.size(), " child commit",
                     children.size() == 1 ? "" : "s", " (", children[0],
                     "); delete those first, or let the repo's retention squash old history"));
  }
  ASSIGN_OR_RETURN(auto sub, ScanCommitPairs(kv_.get(), SubvenancePrefix(repo, c.id())));
  for (const auto& [r, id] : sub) {
    ASSIGN_OR_RETURN(auto s, GetCommit(r, id));
    if (s) {
      return absl::FailedPreconditionError(absl::StrCat("commit ", repo, "@", c.id(),
                                                        " has commits computed from it (", r, "@",
                                                        id, "); delete those first"));
    }
  }
  std::vector<BranchInfo> moved;
  RETURN_IF_ERROR(kv_->ScanPrefix(BranchPrefix(repo), [&](absl::string_view, absl::string_view v) {
    BranchInfo b;
    if (b.ParseFromString(std::string(v)) && b.head() == c.id()) moved.push_back(std::move(b));
    return true;
  }));
  std::vector<storage::v1::MetaEvent> events;
  storage::v1::MetaEvent gone;
  gone.mutable_deleted_commit()->set_repo(repo);
  gone.mutable_deleted_commit()->set_id(c.id());
  events.push_back(gone);
  for (auto& b : moved) {
    b.set_head(c.parent());
    events.push_back(BranchEvent(b));
  }
  KvBatch batch;
  batch.Delete(CommitKey(repo, c.id()));
  batch.Delete(CommitSetKey(c.commit_set(), repo, c.id()));
  for (const auto& p : c.provenance()) batch.Delete(SubvenanceKey(p.repo(), p.id(), repo, c.id()));
  RETURN_IF_ERROR(DeletePrefix(kv_.get(), SubvenancePrefix(repo, c.id()), &batch));
  for (const auto& b : moved) batch.Put(BranchKey(repo, b.name()), b.SerializeAsString());
  RETURN_IF_ERROR(WriteLogged(std::move(events), &batch));
  TUSK_LOG(INFO) << "deleted commit " << repo << "@" << c.id();
  return moved;
}

// ---------------------------------------------------------------------------
// Retention

absl::StatusOr<uint64_t> Pfs::ApplyRetention(absl::Time now) {
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
        TUSK_LOG(WARNING) << "retention of " << r.name() << "@" << b.name() << ": " << n.status();
        continue;
      }
      squashed += *n;
    }
  }
  return squashed;
}

absl::StatusOr<uint64_t> Pfs::SquashBranch(const RepoInfo& repo_info, const BranchInfo& branch_in,
                                           absl::Time now) {
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
    TUSK_LOG(INFO) << "retention of " << repo << "@" << b->name() << ": " << drop.size()
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
    RETURN_IF_ERROR(DeletePrefix(kv_.get(), SubvenancePrefix(repo, d.id()), &batch));
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
  TUSK_LOG(INFO) << "retention of " << repo << "@" << b->name() << ": squashed " << drop.size()
                 << " commits into " << child.id();
  return drop.size();
}

// ---------------------------------------------------------------------------
// Durable records

absl::Status Pfs::PutRecord(const std::string& key, const std::string& value) {
  absl::MutexLock lock(&meta_mu_);
  storage::v1::MetaEvent e;
  e.mutable_record()->set_key(key);
  e.mutable_record()->set_value(value);
  KvBatch batch;
  batch.Put(key, value);
  batch.Put(RecordMarkerKey(key), "");
  return WriteLogged({e}, &batch);
}

absl::Status Pfs::DeleteRecord(const std::string& key) {
  absl::MutexLock lock(&meta_mu_);
  storage::v1::MetaEvent e;
  e.set_deleted_record(key);
  KvBatch batch;
  batch.Delete(key);
  batch.Delete(RecordMarkerKey(key));
  return WriteLogged({e}, &batch);
}

// ---------------------------------------------------------------------------
// Checkpoint and GC

absl::StatusOr<uint64_t> Pfs::WriteCheckpoint() {
  storage::v1::Checkpoint cp;
  {
    absl::MutexLock lock(&meta_mu_);
    // Every change the checkpoint covers must have its blobs in the object
    // store: ship what is pending (no change can be logged meanwhile).
    if (options_.log_mode == LogMode::kShipped) RETURN_IF_ERROR(ShipLogs().status());
    absl::Status parse;
    auto scan = [&](const char* prefix, auto add) {
      return kv_->ScanPrefix(prefix, [&](absl::string_view k, absl::string_view v) {
        if (!add(v)) {
          parse =
              absl::DataLossError(absl::StrCat("index record ", k.substr(0, 40), " is corrupt"));
          return false;
        }
        return true;
      });
    };
    RETURN_IF_ERROR(scan(
        "r", [&](absl::string_view v) { return cp.add_repos()->ParseFromString(std::string(v)); }));
    RETURN_IF_ERROR(scan("b", [&](absl::string_view v) {
      v1::BranchInfo* b = cp.add_branches();
      if (!b->ParseFromString(std::string(v))) return false;
      b->clear_open_commit();
      return true;
    }));
    RETURN_IF_ERROR(scan("c", [&](absl::string_view v) {
      v1::CommitInfo c;
      if (!c.ParseFromString(std::string(v))) return false;
      if (c.state() == v1::FINISHED) *cp.add_commits() = std::move(c);
      return true;
    }));
    RETURN_IF_ERROR(parse);
    std::vector<std::string> record_keys;
    RETURN_IF_ERROR(
        kv_->ScanPrefix(kRecordMarkerPrefix, [&](absl::string_view k, absl::string_view) {
          record_keys.emplace_back(k.substr(1));
          return true;
        }));
    for (const auto& k : record_keys) {
      ASSIGN_OR_RETURN(auto v, kv_->Get(k));
      if (!v) continue;
      auto* r = cp.add_records();
      r->set_key(k);
      r->set_value(*v);
    }
    // Every log up to next_seq_ - 1 is reflected: they were all written
    // under this lock, before the index writes now visible.
    cp.set_seq(next_seq_ - 1);
    RETURN_IF_ERROR(Annotate(store_->Put(CheckpointKey(cp.seq()), cp.SerializeAsString()),
                             "writing a checkpoint"));
  }
  // Void ranges below the checkpoint no longer matter: older logs are
  // replaced by it.
  std::vector<std::string> voids;
  RETURN_IF_ERROR(
      store_->List(kVoidPrefix, [&](const std::string& k, uint64_t) { voids.push_back(k); }));
  for (const auto& k : voids) {
    uint64_t first = 0, last = 0;
    if (ParseVoidKey(k, &first, &last) && last <= cp.seq()) {
      absl::Status s = store_->Delete(k);
      if (!s.ok()) TUSK_LOG(WARNING) << "deleting void range " << k << ": " << s;
    }
  }
  // Keep the two newest.
  std::vector<std::string> keys;
  RETURN_IF_ERROR(
      store_->List(kCheckpointPrefix, [&](const std::string& k, uint64_t) { keys.push_back(k); }));
  std::sort(keys.begin(), keys.end());
  for (size_t i = 0; i + 2 < keys.size(); ++i) {
    absl::Status s = store_->Delete(keys[i]);
    if (!s.ok()) TUSK_LOG(WARNING) << "deleting old checkpoint " << keys[i] << ": " << s;
  }
  return cp.seq();
}

void Pfs::AddGcSource(std::function<absl::Status(GcMarker*)> source) {
  gc_sources_.push_back(std::move(source));
}

absl::Status Pfs::Mark(absl::flat_hash_set<Hash>* live) {
  SetMarker marker(nodes_.get(), live);
  // Files staged in open commits first, then commits: a commit that
  // finishes between the two scans is seen in the second (its files were
  // staged in the first); read the other way round, it would be in neither.
  std::vector<Entry> staged;
  RETURN_IF_ERROR(kv_->ScanPrefix("s", [&](absl::string_view, absl::string_view v) {
    storage::v1::StagedOp op;
    if (op.ParseFromString(std::string(v)) && op.kind() == storage::v1::StagedOp::PUT) {
      staged.push_back(op.entry());
    }
    return true;
  }));
  std::vector<Hash> roots;
  absl::Status parse;
  RETURN_IF_ERROR(kv_->ScanPrefix("c", [&](absl::string_view k, absl::string_view v) {
    CommitInfo c;
    if (!c.ParseFromString(std::string(v))) {
      parse = absl::DataLossError(absl::StrCat("commit record ", k.substr(1), " is corrupt"));
      return false;
    }
    auto root = RootHash(c);
    if (!root.ok()) {
      parse = root.status();
      return false;
    }
    roots.push_back(*root);
    return true;
  }));
  RETURN_IF_ERROR(parse);
  for (const Hash& r : roots) RETURN_IF_ERROR(Annotate(marker.Tree(r), "marking commits"));
  for (const Entry& e : staged) RETURN_IF_ERROR(Annotate(marker.File(e), "marking staged files"));
  for (const auto& source : gc_sources_) RETURN_IF_ERROR(source(&marker));
  return absl::OkStatus();
}

absl::StatusOr<GcStats> Pfs::Gc(const GcOptions& options) {
  absl::MutexLock one(&gc_mu_);
  const absl::Time start = absl::Now();
  const absl::Time cutoff = start - options.grace;
  GcStats stats;
  ASSIGN_OR_RETURN(stats.commits_squashed, ApplyRetention(start));
  ASSIGN_OR_RETURN(stats.checkpoint_seq, WriteCheckpoint());

  absl::flat_hash_set<Hash> live;
  // From here every dedup hit counts as live. Uploads in progress count with
  // what they touched before: taken before the mark, so that one finishing
  // while the commits are walked is covered either way. What they touched
  // is also kept apart: a writer may not have written the index records of
  // its packs yet, so a pack that holds such a blob is left alone.
  absl::flat_hash_set<Hash> in_flight;
  blobs_->BeginGcMark();
  blobs_->AddInFlight(&in_flight);
  RETURN_IF_ERROR(Mark(&live));
  blobs_->AddInFlight(&in_flight);
  live.insert(in_flight.begin(), in_flight.end());

  // Sweep the index: per pack, what stays.
  struct PackUse {
    uint64_t live_bytes = 0, live_blobs = 0;
  };
  absl::flat_hash_map<std::string, PackUse> use;
  RETURN_IF_ERROR(blobs_->SweepIndex(
      &live, [&](const Hash& h, const storage::v1::BlobLocation& loc, bool is_live) {
        if (loc.pack().empty()) return false;  // inline: only in the index, packed later
        if (is_live) {
          PackUse& u = use[loc.pack()];
          u.live_bytes += loc.stored_size();
          u.live_blobs++;
          return false;
        }
        if (PackTime(loc.pack()) >= cutoff && !blobs_->IsAbandoned(loc.pack())) {
          use[loc.pack()];  // young: kept whole
          return false;
        }
        stats.blobs_deleted++;
        return true;
      }));
  stats.live_blobs = live.size();

  // Packs: delete the dead; rewrite the mostly dead, and merge small ones (a
  // log pack per micro-commit adds up), into packs of the usual size.
  std::vector<std::pair<std::string, uint64_t>> packs;
  RETURN_IF_ERROR(store_->List(
      kPackPrefix, [&](const std::string& key, uint64_t size) { packs.emplace_back(key, size); }));
  stats.packs = packs.size();
  const uint64_t small = std::max<uint64_t>(blobs_->options().pack_size / 16, 64 << 10);
  struct Group {
    std::vector<PreparedBlob> blobs;
    uint64_t bytes = 0, source_bytes = 0;
    std::vector<std::string> sources;
    bool sparse = false;
  } group;
  auto flush = [&](bool last) -> absl::Status {
    // A lone small pack gains nothing from being copied.
    if (group.sources.empty() || (last && group.sources.size() < 2 && !group.sparse)) {
      group = Group();
      return absl::OkStatus();
    }
    KvBatch batch;
    std::string pack_id;
    if (!group.blobs.empty())
      RETURN_IF_ERROR(blobs_->WritePack(group.blobs, &batch, nullptr, &pack_id));
    RETURN_IF_ERROR(blobs_->DropPackIfUnindexed(kv_->Write(&batch, /*sync=*/true), pack_id));
    for (const auto& key : group.sources) RETURN_IF_ERROR(Annotate(store_->Delete(key), "gc"));
    stats.packs_rewritten += group.sources.size();
    stats.bytes_deleted += group.source_bytes - std::min(group.source_bytes, group.bytes);
    group = Group();
    return absl::OkStatus();
  };
  for (const auto& [key, size] : packs) {
    std::string id = PackIdFromKey(key);
    if (id.empty() || (PackTime(id) >= cutoff && !blobs_->IsAbandoned(id))) continue;
    auto it = use.find(id);
    PackUse u = it == use.end() ? PackUse{} : it->second;
    stats.bytes_live += u.live_bytes;
    bool dead = u.live_blobs == 0;
    bool sparse =
        !dead && options.rewrite_below > 0 &&
        static_cast<double>(u.live_bytes) < options.rewrite_below * static_cast<double>(size);
    bool merge = !dead && size < small;
    if (!dead && !sparse && !merge) continue;
    // A log newer than the checkpoint is still the only record of its
    // change (possible only with a clock that jumped): keep the pack.
    // A pack to copy from is read whole, once.
    std::string whole;
    auto footer = ReadPackFooter(store_, key, size, dead ? nullptr : &whole);
    if (!footer.ok()) {
      TUSK_LOG(WARNING) << "gc: skipping " << key << ": " << footer.status();
      continue;
    }
    bool newer = false;
    for (const auto& l : footer->logs()) newer = newer || l.seq() > stats.checkpoint_seq;
    if (newer) continue;
    // The footer has the last word on what the pack holds: a blob of an
    // upload in progress, or a live blob with no index record (its writer
    // has not written it yet), keeps the pack whole for now.
    bool keep = false;
    for (const auto& item : footer->items()) {
      auto h = Hash::FromRaw(item.hash());
      if (!h.ok()) continue;
      if (in_flight.contains(*h)) {
        keep = true;
        break;
      }
      if (live.contains(*h) && !blobs_->Locate(*h).ok()) {
        keep = true;
        break;
      }
    }
    if (keep) continue;
    if (dead) {
      RETURN_IF_ERROR(Annotate(store_->Delete(key), "gc"));
      blobs_->ForgetAbandoned(id);
      stats.packs_deleted++;
      stats.bytes_deleted += size;
      continue;
    }
    // Copy the live blobs out; the index moves to the new pack at flush.
    for (const auto& item : footer->items()) {
      ASSIGN_OR_RETURN(Hash h, Hash::FromRaw(item.hash()));
      auto loc = blobs_->Locate(h);
      if (!loc.ok() || loc->pack() != id || !live.contains(h)) continue;
      PreparedBlob b;
      b.hash = h;
      b.raw_size = item.raw_size();
      b.codec = item.codec();
      b.stored = whole.substr(item.offset(), item.stored_size());
      group.bytes += b.stored.size();
      group.blobs.push_back(std::move(b));
    }
    group.sources.push_back(key);
    group.source_bytes += size;
    group.sparse = group.sparse || sparse;
    if (group.bytes >= blobs_->options().pack_size) RETURN_IF_ERROR(flush(false));
  }
  RETURN_IF_ERROR(flush(true));
  TUSK_LOG(INFO) << "gc: " << stats.live_blobs << " live blobs; deleted " << stats.packs_deleted
                 << " of " << stats.packs << " packs and rewrote or merged "
                 << stats.packs_rewritten << " (" << stats.bytes_deleted << " bytes freed), "
                 << stats.blobs_deleted << " index records; checkpoint at seq "
                 << stats.checkpoint_seq << "; took " << absl::FormatDuration(absl::Now() - start);
  return stats;
}

}  // namespace tusk::pfs
