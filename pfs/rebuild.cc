#include "pfs/rebuild.h"

#include <sys/stat.h>

#include <cstring>
#include <future>
#include <map>
#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/fs.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/status.h"
#include "common/thread_pool.h"
#include "pfs/blob_store.h"
#include "pfs/keys.h"
#include "pfs/kv.h"
#include "proto/pfs.pb.h"
#include "proto/storage.pb.h"

namespace tusk::pfs {
namespace {

using storage::v1::MetaEvent;
using storage::v1::MetaLog;

// The metadata state the events are applied to.
struct State {
  std::map<std::string, v1::RepoInfo> repos;
  std::map<std::pair<std::string, std::string>, v1::BranchInfo> branches;
  std::map<std::pair<std::string, std::string>, v1::CommitInfo> commits;
  std::map<std::string, std::string> records;

  void Apply(const MetaEvent& e) {
    switch (e.kind_case()) {
      case MetaEvent::kRepo:
        repos[e.repo().name()] = e.repo();
        break;
      case MetaEvent::kDeletedRepo: {
        const std::string& name = e.deleted_repo();
        repos.erase(name);
        EraseRepo(&branches, name);
        EraseRepo(&commits, name);
        break;
      }
      case MetaEvent::kBranch:
        branches[{e.branch().repo(), e.branch().name()}] = e.branch();
        break;
      case MetaEvent::kDeletedBranch:
        branches.erase({e.deleted_branch().repo(), e.deleted_branch().name()});
        break;
      case MetaEvent::kCommit:
        commits[{e.commit().repo(), e.commit().id()}] = e.commit();
        break;
      case MetaEvent::kDeletedCommit:
        commits.erase({e.deleted_commit().repo(), e.deleted_commit().id()});
        break;
      case MetaEvent::kRecord:
        records[e.record().key()] = e.record().value();
        break;
      case MetaEvent::kDeletedRecord:
        records.erase(e.deleted_record());
        break;
      case MetaEvent::kDeletedRecordKey:
        records.erase(e.deleted_record_key());
        break;
      case MetaEvent::kDeletedRecordPrefix: {
        const std::string& prefix = e.deleted_record_prefix();
        auto it = records.lower_bound(prefix);
        while (it != records.end() && absl::StartsWith(it->first, prefix)) it = records.erase(it);
        break;
      }
      case MetaEvent::KIND_NOT_SET:
        break;
    }
  }

  template <typename M>
  static void EraseRepo(M* m, const std::string& repo) {
    auto it = m->lower_bound({repo, ""});
    while (it != m->end() && it->first.first == repo) it = m->erase(it);
  }
};

// Writes batches of at most ~4 MiB.
class BatchWriter {
 public:
  explicit BatchWriter(Kv* kv) : kv_(kv) {}
  absl::Status Put(absl::string_view k, absl::string_view v) {
    batch_.Put(k, v);
    if (batch_.ByteSize() > (4 << 20)) return Flush();
    return absl::OkStatus();
  }
  absl::Status Flush() {
    if (batch_.Count() == 0) return absl::OkStatus();
    RETURN_IF_ERROR(kv_->Write(&batch_, /*sync=*/false));
    batch_.Clear();
    return absl::OkStatus();
  }

 private:
  Kv* kv_;
  KvBatch batch_;
};

// One rebuild, step by step.
class Rebuilder {
 public:
  Rebuilder(ObjectStore* store, const std::string& data_dir,
            const std::function<void(const std::string&)>& progress)
      : store_(store), data_dir_(data_dir), progress_(progress) {}

  absl::StatusOr<RebuildStats> Run() {
    RETURN_IF_ERROR(CheckStore());
    RETURN_IF_ERROR(ReadCheckpoint());
    RETURN_IF_ERROR(ReadVoids());
    const std::string tmp_dir = data_dir_ + "/index.rebuild";
    RETURN_IF_ERROR(RemoveAll(tmp_dir));
    {
      ASSIGN_OR_RETURN(auto kv, Kv::Open(tmp_dir));
      BatchWriter out(kv.get());
      RETURN_IF_ERROR(ReadPacks(&out));
      RETURN_IF_ERROR(WriteRecords(&out));
      RETURN_IF_ERROR(out.Flush());
      RETURN_IF_ERROR(kv->Flush());
    }
    RETURN_IF_ERROR(SwapIn(tmp_dir));
    Summary();
    return stats_;
  }

 private:
  void say(const std::string& line) {
    LOG(INFO) << "rebuild-index: " << line;
    if (progress_) progress_(line);
  }
  bool IsVoid(uint64_t seq) const {
    for (const auto& [first, last] : voids_) {
      if (seq >= first && seq <= last) return true;
    }
    return false;
  }

  absl::Status CheckStore() {
    ObjectStore* store = store_;
    auto marker = store->Size(kStoreMarkerKey);
    if (absl::IsNotFound(marker.status())) {
      return absl::NotFoundError(absl::StrCat("object store ", store->Describe(),
                                              " holds no tusk data (no ", kStoreMarkerKey, ")"));
    }
    RETURN_IF_ERROR(Annotate(marker.status(), "reading the object store"));
    ASSIGN_OR_RETURN(std::string format, store->Get(kStoreMarkerKey));
    if (format != kFormatVersion) {
      return absl::FailedPreconditionError(absl::StrCat("object store ", store->Describe(),
                                                        " has format ", format,
                                                        ", this tuskd reads ", kFormatVersion));
    }
    return absl::OkStatus();
  }

  // The latest checkpoint.
  absl::Status ReadCheckpoint() {
    ObjectStore* store = store_;
    State& state = state_;
    RebuildStats& stats = stats_;
    std::string checkpoint_key;
    RETURN_IF_ERROR(store->List(kCheckpointPrefix, [&](const std::string& key, uint64_t) {
      if (key > checkpoint_key) checkpoint_key = key;  // fixed-width hex: order is numeric
    }));
    if (!checkpoint_key.empty()) {
      ASSIGN_OR_RETURN(std::string bytes, store->Get(checkpoint_key));
      storage::v1::Checkpoint cp;
      if (!cp.ParseFromString(bytes)) {
        return absl::DataLossError(absl::StrCat("checkpoint ", checkpoint_key, " is corrupt"));
      }
      stats.checkpoint_seq = cp.seq();
      for (const auto& r : cp.repos()) state.repos[r.name()] = r;
      for (const auto& b : cp.branches()) state.branches[{b.repo(), b.name()}] = b;
      for (const auto& c : cp.commits()) state.commits[{c.repo(), c.id()}] = c;
      for (const auto& r : cp.records()) state.records[r.key()] = r.value();
      say(absl::StrCat("checkpoint ", checkpoint_key, " at seq ", cp.seq(), ": ", cp.repos_size(),
                       " repos, ", cp.commits_size(), " commits"));
    }

    return absl::OkStatus();
  }

  // Numbers that never reached an index (see VoidKey).
  absl::Status ReadVoids() {
    absl::Status void_parse;
    RETURN_IF_ERROR(store_->List(kVoidPrefix, [&](const std::string& key, uint64_t) {
      uint64_t first = 0, last = 0;
      if (!ParseVoidKey(key, &first, &last)) {
        void_parse = absl::DataLossError(absl::StrCat("malformed void range ", key));
        return;
      }
      voids_.emplace_back(first, last);
    }));
    return void_parse;
  }

  // Every pack's footer, read in parallel: the blob index, and the logs
  // after the checkpoint applied in order.
  absl::Status ReadPacks(BatchWriter* out_writer) {
    ObjectStore* store = store_;
    RebuildStats& stats = stats_;
    BatchWriter& out = *out_writer;
    std::vector<std::pair<std::string, uint64_t>> packs;
    RETURN_IF_ERROR(store->List(kPackPrefix, [&](const std::string& key, uint64_t size) {
      if (!PackIdFromKey(key).empty()) packs.emplace_back(key, size);
    }));
    say(absl::StrCat(packs.size(), " packs to read"));
    std::vector<MetaLog> logs;
    ThreadPool readers(8);
    const size_t kWindow = 64;
    struct Read {
      absl::StatusOr<storage::v1::PackFooter> footer;
      std::string damaged;
    };
    std::vector<std::future<Read>> inflight;
    size_t next = 0, done = 0;
    absl::Time last_report = absl::Now();
    while (done < packs.size()) {
      while (next < packs.size() && next - done < kWindow) {
        const auto& [key, size] = packs[next++];
        inflight.push_back(readers.Submit([store, key = key, size = size] {
          Read r;
          r.footer = RecoverPackFooter(store, key, size, &r.damaged);
          return r;
        }));
      }
      Read read = inflight[done].get();
      auto& footer = read.footer;
      const std::string& key = packs[done].first;
      ++done;
      if (absl::IsDataLoss(footer.status())) {
        // One damaged pack loses what only it held; the rest still comes
        // back (fsck then names what is missing).
        stats.damaged_packs++;
        say(absl::StrCat("skipping a damaged pack: ", footer.status().message()));
        continue;
      }
      if (!footer.ok()) return Annotate(footer.status(), "rebuilding the index");
      std::string pack_id = PackIdFromKey(key);
      if (!read.damaged.empty()) {
        // Its blobs were each checked against their content; its logs (if
        // it had any) cannot be trusted and are not in what was recovered.
        stats.recovered_packs++;
        stats.recovered_blobs += footer->items_size();
        say(absl::StrCat(read.damaged, ": recovered ", footer->items_size(),
                         " blobs from their content; any logs it held are not applied"));
      }
      for (const auto& item : footer->items()) {
        auto [k, v] = BlobIndexRecord(pack_id, item);
        RETURN_IF_ERROR(out.Put(k, v));
        stats.blobs++;
      }
      for (const auto& log : footer->logs()) {
        stats.logs++;
        stats.last_seq = std::max(stats.last_seq, log.seq());
        if (IsVoid(log.seq())) {
          stats.void_logs++;
        } else if (log.seq() > stats.checkpoint_seq) {
          logs.push_back(log);
        }
      }
      stats.packs++;
      if (absl::Now() - last_report > absl::Seconds(2)) {
        say(absl::StrCat("read ", done, " of ", packs.size(), " packs"));
        last_report = absl::Now();
      }
    }
    inflight.clear();
    std::sort(logs.begin(), logs.end(),
              [](const MetaLog& a, const MetaLog& b) { return a.seq() < b.seq(); });
    for (const auto& log : logs) {
      for (const auto& e : log.events()) state_.Apply(e);
    }

    return absl::OkStatus();
  }

  // The records of repos, branches, commits and components.
  absl::Status WriteRecords(BatchWriter* out_writer) {
    BatchWriter& out = *out_writer;
    State& state = state_;
    RebuildStats& stats = stats_;
    for (const auto& [name, r] : state.repos) {
      RETURN_IF_ERROR(out.Put(RepoKey(name), r.SerializeAsString()));
    }
    for (const auto& [key, b] : state.branches) {
      if (!state.repos.contains(key.first)) continue;
      RETURN_IF_ERROR(out.Put(BranchKey(key.first, key.second), b.SerializeAsString()));
    }
    for (const auto& [key, c] : state.commits) {
      if (!state.repos.contains(key.first)) continue;
      RETURN_IF_ERROR(out.Put(CommitKey(key.first, key.second), c.SerializeAsString()));
      RETURN_IF_ERROR(out.Put(CommitSetKey(c.commit_set(), c.repo(), c.id()), ""));
      for (const auto& p : c.provenance()) {
        RETURN_IF_ERROR(out.Put(SubvenanceKey(p.repo(), p.id(), c.repo(), c.id()), ""));
      }
    }
    for (const auto& [k, v] : state.records) {
      RETURN_IF_ERROR(out.Put(k, v));
      // Marked as PutRecord marks it, or the next checkpoint would leave it
      // out and a rebuild after that would lose it.
      RETURN_IF_ERROR(out.Put(RecordMarkerKey(k), ""));
    }
    stats.repos = state.repos.size();
    stats.branches = state.branches.size();
    stats.commits = state.commits.size();
    stats.records = state.records.size();
    RETURN_IF_ERROR(out.Put(kFormatKey, kFormatVersion));
    // Above every number a log pack may carry, and above every void range:
    // a number a void range covers is never used again, or a rebuild after
    // this one would ignore the change that reused it. All of them applied
    // (or void).
    uint64_t top_seq = std::max(stats.last_seq, stats.checkpoint_seq);
    for (const auto& [first, last] : voids_) top_seq = std::max(top_seq, last);
    std::string top = absl::StrCat(top_seq);
    RETURN_IF_ERROR(out.Put(kSeqKey, top));
    RETURN_IF_ERROR(out.Put(kAppliedSeqKey, top));
    return absl::OkStatus();
  }

  // Swaps the new index in, keeping an old one aside.
  absl::Status SwapIn(const std::string& tmp_dir) {
    const std::string index_dir = data_dir_ + "/index";
    struct stat st;
    if (::stat(index_dir.c_str(), &st) == 0) {
      // Two rebuilds within a second must not collide on the name.
      const std::string stem = absl::StrCat(index_dir, ".old-", absl::ToUnixSeconds(absl::Now()));
      std::string old = stem;
      for (int n = 1; ::stat(old.c_str(), &st) == 0; ++n) old = absl::StrCat(stem, "-", n);
      if (::rename(index_dir.c_str(), old.c_str()) != 0) {
        return absl::InternalError(absl::StrCat("cannot move the old index ", index_dir, " to ",
                                                old, ": ", std::strerror(errno)));
      }
      say(absl::StrCat("the previous index is kept as ", old));
    }
    if (::rename(tmp_dir.c_str(), index_dir.c_str()) != 0) {
      return absl::InternalError(
          absl::StrCat("cannot move the rebuilt index ", tmp_dir, " to ", index_dir));
    }
    return absl::OkStatus();
  }

  void Summary() {
    const RebuildStats& stats = stats_;
    say(absl::StrCat(
        "rebuilt: ", stats.repos, " repos, ", stats.branches, " branches, ", stats.commits,
        " commits, ", stats.blobs, " blobs in ", stats.packs, " packs, ", stats.logs,
        " logs (last seq ", stats.last_seq, "; ", stats.void_logs, " never applied, ignored)",
        stats.damaged_packs > 0
            ? absl::StrCat("; ", stats.damaged_packs, " damaged packs skipped: run tusk fsck")
            : "",
        stats.recovered_packs > 0
            ? absl::StrCat("; ", stats.recovered_packs,
                           " packs with a damaged footer: ", stats.recovered_blobs,
                           " blobs recovered from their content, run tusk fsck")
            : ""));
  }

  ObjectStore* const store_;
  const std::string data_dir_;
  const std::function<void(const std::string&)>& progress_;
  RebuildStats stats_;
  State state_;
  std::vector<std::pair<uint64_t, uint64_t>> voids_;
};

}  // namespace

absl::StatusOr<RebuildStats> RebuildIndex(ObjectStore* store, const std::string& data_dir,
                                          const std::function<void(const std::string&)>& progress) {
  return Rebuilder(store, data_dir, progress).Run();
}

}  // namespace tusk::pfs
