#include "pfs/pfs.h"

#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"
#include "pfs/keys.h"
#include "pfs/rebuild.h"
#include "pfs/records.h"
#include "pfs/refs.h"

namespace tusk::pfs {

using google::protobuf::util::TimeUtil;
using storage::v1::StagedOp;

namespace {

Entry DirEntry(const std::string& name, const DirInfo& info) {
  Entry e;
  e.set_name(name);
  e.set_type(Entry::DIR);
  e.set_size(info.size);
  e.set_hash(info.hash.Raw());
  e.set_file_count(info.file_count);
  return e;
}

// The staged writes of a commit, as a tree of paths.
struct Trie {
  bool cleared = false;      // deleted first (the old content is gone)
  std::optional<Entry> put;  // a file written here
  std::map<std::string, std::unique_ptr<Trie>> children;
};

// Applies the trie to the directory `old_dir` (at `path`). Returns the new
// directory's summary (zero hash if empty).
absl::StatusOr<DirInfo> ApplyTrie(NodeStore* nodes, BlobWriter* writer, const Hash& old_dir,
                                  const Trie& trie, const std::string& path) {
  Hash base = trie.cleared ? Hash{} : old_dir;
  std::vector<DirChange> changes;
  for (const auto& [name, child] : trie.children) {
    std::string child_path = JoinPath(path, name);
    std::optional<Entry> old;
    if (!base.IsZero()) {
      ASSIGN_OR_RETURN(old, FindEntry(nodes, base, name));
    }
    if (child->put) {
      if (!child->children.empty()) {
        return absl::FailedPreconditionError(absl::StrCat(
            child_path, " was written both as a file and as a directory in this commit"));
      }
      if (old && old->type() == Entry::DIR && !child->cleared) {
        return absl::FailedPreconditionError(
            absl::StrCat("cannot write file ", child_path, ": it is a directory"));
      }
      changes.push_back({name, child->put});
    } else if (!child->children.empty()) {
      Hash sub_base;
      if (old && !child->cleared) {
        if (old->type() == Entry::FILE) {
          return absl::FailedPreconditionError(
              absl::StrCat("cannot write beneath ", child_path, ": it is a file"));
        }
        ASSIGN_OR_RETURN(sub_base, Hash::FromRaw(old->hash()));
      }
      ASSIGN_OR_RETURN(DirInfo sub, ApplyTrie(nodes, writer, sub_base, *child, child_path));
      if (sub.hash.IsZero()) {
        if (old) changes.push_back({name, std::nullopt});
      } else {
        changes.push_back({name, DirEntry(name, sub)});
      }
    } else if (child->cleared) {
      if (old) changes.push_back({name, std::nullopt});
    }
  }
  return EditDir(nodes, writer, base, changes);
}

}  // namespace

// ---------------------------------------------------------------------------
// Open / close

absl::StatusOr<std::unique_ptr<Pfs>> Pfs::Open(const PfsOptions& options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("data directory is not set");
  auto pfs = std::unique_ptr<Pfs>(new Pfs(options));
  RETURN_IF_ERROR(MkdirAll(options.data_dir));
  if (options.object_store != nullptr) {
    pfs->store_ = options.object_store;
  } else {
    ASSIGN_OR_RETURN(pfs->owned_store_, OpenLocalObjectStore(options.data_dir + "/objects"));
    pfs->store_ = pfs->owned_store_.get();
  }
  const std::string index_dir = options.data_dir + "/index";
  if (options.rebuild_index) {
    RETURN_IF_ERROR(RebuildIndex(pfs->store_, options.data_dir, options.rebuild_progress).status());
  }
  struct stat st;
  if (::stat((index_dir + "/CURRENT").c_str(), &st) != 0) {
    // A new index over an object store that already holds tusk data would
    // hide that data and reuse its log sequence numbers. Checked before the
    // index is created, so that a refused start leaves nothing behind.
    auto marker = pfs->store_->Size(kStoreMarkerKey);
    if (marker.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("object store ", pfs->store_->Describe(),
                       " already holds tusk data but there is no index in ", index_dir,
                       "; start with --rebuild-index to recover the index from the object store"));
    }
    if (!absl::IsNotFound(marker.status())) {
      return Annotate(marker.status(), "checking the object store");
    }
  }
  ASSIGN_OR_RETURN(pfs->kv_, Kv::Open(index_dir));
  ASSIGN_OR_RETURN(auto format, pfs->kv_->Get(kFormatKey));
  if (!format) {
    RETURN_IF_ERROR(
        Annotate(pfs->store_->Put(kStoreMarkerKey, kFormatVersion), "marking the object store"));
    RETURN_IF_ERROR(pfs->kv_->Put(kFormatKey, kFormatVersion, /*sync=*/true));
  } else if (*format != kFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat("data directory ", options.data_dir,
                                                      " has index format ", *format,
                                                      ", this tuskd reads ", kFormatVersion));
  }
  ASSIGN_OR_RETURN(auto seq, pfs->kv_->Get(kSeqKey));
  ASSIGN_OR_RETURN(auto applied_seq, pfs->kv_->Get(kAppliedSeqKey));
  {
    absl::MutexLock lock(&pfs->meta_mu_);
    uint64_t reserved = 0, applied = 0;
    if ((seq && !absl::SimpleAtoi(*seq, &reserved)) ||
        (applied_seq && !absl::SimpleAtoi(*applied_seq, &applied))) {
      return absl::DataLossError(absl::StrCat("the log sequence in ", index_dir, " is corrupt"));
    }
    // Numbers up to `reserved` may have been used by a log pack whose index
    // write never happened: start above them, and declare the ones after the
    // last applied void, so that a rebuild does not bring back a change the
    // index never made (its client saw it fail).
    if (applied < reserved) {
      RETURN_IF_ERROR(Annotate(pfs->store_->Put(VoidKey(applied + 1, reserved), ""),
                               "recording unused log numbers"));
      RETURN_IF_ERROR(pfs->kv_->Put(kAppliedSeqKey, absl::StrCat(reserved), /*sync=*/true));
    }
    pfs->reserved_seq_ = reserved;
    pfs->next_seq_ = reserved + 1;
  }
  ASSIGN_OR_RETURN(pfs->blobs_, BlobStore::Open(pfs->kv_.get(), pfs->store_, options.blobs));
  pfs->nodes_ = std::make_unique<NodeStore>(pfs->blobs_.get(), options.node_cache_bytes);
  pfs->workers_ = std::make_unique<ThreadPool>(options.worker_threads);
  RETURN_IF_ERROR(pfs->Recover());
  pfs->packer_ = std::thread([p = pfs.get()] { p->PackerLoop(); });
  return pfs;
}

absl::StatusOr<uint64_t> Pfs::NextSeq() {
  constexpr uint64_t kBlock = 4096;
  if (next_seq_ > reserved_seq_) {
    uint64_t reserve = next_seq_ + kBlock - 1;
    RETURN_IF_ERROR(kv_->Put(kSeqKey, absl::StrCat(reserve), /*sync=*/true));
    reserved_seq_ = reserve;
  }
  return next_seq_++;
}

absl::Status Pfs::WriteLogged(std::vector<storage::v1::MetaEvent> events, KvBatch* batch,
                              const std::vector<PreparedBlob>& blobs,
                              const std::vector<Hash>& shipped_blobs) {
  ASSIGN_OR_RETURN(uint64_t seq, LogEvents(std::move(events), batch, blobs, shipped_blobs));
  absl::Status written = kv_->Write(batch, /*sync=*/true);
  if (!written.ok() && options_.log_mode == LogMode::kStrict) {
    // The log pack is in the object store but the change is not in the
    // index: void its number, so that a rebuild does not make it.
    absl::Status voided = store_->Put(VoidKey(seq, seq), "");
    if (!voided.ok()) {
      TUSK_LOG(WARNING) << "log " << seq
                        << " was written but not applied, and recording that failed (" << voided
                        << "); the next start voids it";
    }
  }
  return written;
}

absl::StatusOr<uint64_t> Pfs::LogEvents(std::vector<storage::v1::MetaEvent> events, KvBatch* batch,
                                        const std::vector<PreparedBlob>& blobs,
                                        const std::vector<Hash>& shipped_blobs) {
  storage::v1::MetaLog log;
  ASSIGN_OR_RETURN(uint64_t seq, NextSeq());
  log.set_seq(seq);
  for (auto& e : events) *log.add_events() = std::move(e);
  batch->Put(kAppliedSeqKey, absl::StrCat(seq));
  if (options_.log_mode == LogMode::kShipped) {
    storage::v1::PendingLog pending;
    *pending.mutable_log() = std::move(log);
    for (const Hash& h : shipped_blobs) pending.add_blobs(h.Raw());
    batch->Put(PendingLogKey(seq), pending.SerializeAsString());
    return seq;
  }
  RETURN_IF_ERROR(Annotate(blobs_->WriteLogPack({log}, blobs, batch), "writing the metadata log"));
  return seq;
}

absl::StatusOr<size_t> Pfs::ShipLogs() {
  absl::MutexLock lock(&ship_mu_);
  size_t shipped = 0;
  for (;;) {
    std::vector<storage::v1::MetaLog> logs;
    std::vector<Hash> hashes;
    std::vector<std::string> keys;
    absl::Status parse;
    // From the first number not yet shipped: the shipped ones before it are
    // deletions that a scan from "l" would wade through on every call.
    RETURN_IF_ERROR(kv_->Scan(
        PendingLogKey(shipped_below_), "m", [&](absl::string_view k, absl::string_view v) {
          storage::v1::PendingLog p;
          if (!p.ParseFromString(std::string(v))) {
            parse = absl::DataLossError(absl::StrCat("pending log ", k.substr(1), " is corrupt"));
            return false;
          }
          for (const auto& raw : p.blobs()) {
            auto h = Hash::FromRaw(raw);
            if (h.ok()) hashes.push_back(*h);
          }
          logs.push_back(std::move(*p.mutable_log()));
          keys.emplace_back(k);
          return keys.size() < 1000;
        }));
    RETURN_IF_ERROR(parse);
    if (keys.empty()) break;
    std::vector<PreparedBlob> blobs;
    RETURN_IF_ERROR(blobs_->CollectInline(hashes, &blobs, /*skip_missing=*/true));
    KvBatch batch;
    std::string pack_id;
    RETURN_IF_ERROR(
        Annotate(blobs_->WriteLogPack(logs, blobs, &batch, &pack_id), "shipping the metadata log"));
    for (const auto& k : keys) batch.Delete(k);
    // Not synced: if this write is lost, the logs are shipped again (the
    // same sequence numbers, replayed once) and the blobs stay inline.
    RETURN_IF_ERROR(blobs_->DropPackIfUnindexed(kv_->Write(&batch, /*sync=*/false), pack_id));
    // Pending logs reach the index in number order (numbered and written
    // under meta_mu_), so none below these can still appear.
    shipped_below_ = std::max(shipped_below_, logs.back().seq() + 1);
    shipped += keys.size();
    if (keys.size() < 1000) break;
  }
  return shipped;
}

Pfs::~Pfs() {
  {
    absl::MutexLock lock(&packer_mu_);
    stopping_ = true;
  }
  if (packer_.joinable()) packer_.join();
  workers_.reset();
  if (blobs_ && kv_ && options_.log_mode == LogMode::kShipped) {
    auto shipped = ShipLogs();
    if (!shipped.ok())
      TUSK_LOG(WARNING) << "shipping the metadata log at shutdown: " << shipped.status();
  }
  if (blobs_) {
    auto packed = blobs_->PackPending();
    if (!packed.ok()) TUSK_LOG(WARNING) << "packing at shutdown: " << packed.status();
  }
  if (kv_) {
    absl::Status s = kv_->Flush();
    if (!s.ok()) TUSK_LOG(WARNING) << "flushing the index at shutdown: " << s;
  }
}

absl::Status Pfs::Recover() {
  // An automatic commit lives only as long as the upload stream that opened it;
  // one left open by a crash can never be finished by its client: drop it.
  std::vector<std::pair<std::string, std::string>> open;
  RETURN_IF_ERROR(kv_->ScanPrefix("b", [&](absl::string_view, absl::string_view v) {
    BranchInfo b;
    if (b.ParseFromString(std::string(v)) && !b.open_commit().empty()) {
      open.emplace_back(b.repo(), b.open_commit());
    }
    return true;
  }));
  for (const auto& [repo, id] : open) {
    ASSIGN_OR_RETURN(auto c, GetCommit(repo, id));
    if (c && (c->automatic() || c->origin() == v1::AUTO)) {
      TUSK_LOG(INFO) << "dropping automatic commit " << repo << "@" << id
                     << " left open by an interrupted upload";
      RETURN_IF_ERROR(DropOpenCommit(repo, id));
    }
  }
  return absl::OkStatus();
}

void Pfs::PackerLoop() {
  const bool ship = options_.log_mode == LogMode::kShipped;
  // A failure that repeats every tick (a full disk) is logged when it
  // changes, and otherwise once a minute.
  struct Quiet {
    std::string last;
    absl::Time at = absl::InfinitePast();
    void Warn(const char* what, const absl::Status& s) {
      // By code: the message names a new temporary file every time.
      std::string msg = absl::StatusCodeToString(s.code());
      if (msg == last && absl::Now() - at < absl::Minutes(1)) return;
      last = msg;
      at = absl::Now();
      TUSK_LOG(WARNING) << what << ": " << s << " (retrying every tick; said again after a minute)";
    }
  } ship_warning, pack_warning;
  while (true) {
    {
      absl::MutexLock lock(&packer_mu_);
      packer_mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                                  ship ? options_.ship_interval : absl::Seconds(1));
      if (stopping_) return;
    }
    RetryDrops();
    if (ship) {
      auto shipped = ShipLogs();
      if (!shipped.ok()) ship_warning.Warn("shipping the metadata log", shipped.status());
    }
    if (blobs_->pending_bytes() >= options_.pack_pending_bytes) {
      auto packed = blobs_->PackPending();
      if (!packed.ok()) pack_warning.Warn("background packing", packed.status());
    }
  }
}

absl::Status Pfs::PackPending() { return blobs_->PackPending().status(); }

void Pfs::DropOrRetry(const std::string& repo, const std::string& id) {
  absl::Status s = DropOpenCommit(repo, id);
  if (s.ok()) return;
  // A commit left open would hold its branch (writers wait for an automatic
  // commit) until a restart: try again in the background until it goes.
  TUSK_LOG(WARNING) << "dropping automatic commit " << repo << "@" << id << ": " << s
                    << "; retrying in the background";
  absl::MutexLock lock(&packer_mu_);
  pending_drops_.emplace_back(repo, id);
}

void Pfs::RetryDrops() {
  std::vector<std::pair<std::string, std::string>> drops;
  {
    absl::MutexLock lock(&packer_mu_);
    drops.swap(pending_drops_);
  }
  for (const auto& [repo, id] : drops) {
    absl::Status s = DropOpenCommit(repo, id);
    if (s.ok()) {
      TUSK_LOG(INFO) << "dropped automatic commit " << repo << "@" << id
                     << " (after an earlier failure)";
      continue;
    }
    absl::MutexLock lock(&packer_mu_);
    pending_drops_.emplace_back(repo, id);
  }
}

std::shared_ptr<absl::Mutex> Pfs::CommitLock(const std::string& id) {
  absl::MutexLock lock(&locks_mu_);
  auto& weak = commit_locks_[id];
  auto strong = weak.lock();
  if (!strong) {
    strong = std::make_shared<absl::Mutex>();
    weak = strong;
  }
  // Sweep expired entries now and then (amortized: the threshold doubles with
  // the number of live locks).
  if (commit_locks_.size() > sweep_at_) {
    for (auto it = commit_locks_.begin(); it != commit_locks_.end();) {
      if (it->second.expired()) {
        commit_locks_.erase(it++);
      } else {
        ++it;
      }
    }
    sweep_at_ = std::max<size_t>(1024, 2 * commit_locks_.size());
  }
  return strong;
}

// ---------------------------------------------------------------------------
// Records

absl::StatusOr<std::optional<RepoInfo>> Pfs::GetRepo(const std::string& name) {
  ASSIGN_OR_RETURN(auto v, kv_->Get(RepoKey(name)));
  if (!v) return std::optional<RepoInfo>();
  ASSIGN_OR_RETURN(auto r, Parse<RepoInfo>(*v, absl::StrCat("repo ", name)));
  return std::optional<RepoInfo>(std::move(r));
}

absl::StatusOr<std::optional<BranchInfo>> Pfs::GetBranch(const std::string& repo,
                                                         const std::string& branch) {
  ASSIGN_OR_RETURN(auto v, kv_->Get(BranchKey(repo, branch)));
  if (!v) return std::optional<BranchInfo>();
  ASSIGN_OR_RETURN(auto b, Parse<BranchInfo>(*v, absl::StrCat("branch ", repo, "@", branch)));
  return std::optional<BranchInfo>(std::move(b));
}

absl::StatusOr<std::optional<CommitInfo>> Pfs::GetCommit(const std::string& repo,
                                                         const std::string& id) {
  ASSIGN_OR_RETURN(auto v, kv_->Get(CommitKey(repo, id)));
  if (!v) return std::optional<CommitInfo>();
  ASSIGN_OR_RETURN(auto c, Parse<CommitInfo>(*v, absl::StrCat("commit ", repo, "@", id)));
  return std::optional<CommitInfo>(std::move(c));
}

absl::StatusOr<CommitInfo> Pfs::ResolveCommit(const std::string& repo, const std::string& ref) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  ASSIGN_OR_RETURN(auto r, GetRepo(repo));
  if (!r) return absl::NotFoundError(absl::StrCat("repo ", repo, " not found"));
  ASSIGN_OR_RETURN(ParsedRef parsed, ParseRef(ref.empty() ? std::string(kDefaultBranch) : ref));
  std::string id;
  if (parsed.is_commit_id) {
    id = parsed.base;
  } else {
    ASSIGN_OR_RETURN(auto b, GetBranch(repo, parsed.base));
    if (!b)
      return absl::NotFoundError(absl::StrCat("branch ", repo, "@", parsed.base, " not found"));
    if (b->head().empty()) {
      return absl::NotFoundError(
          absl::StrCat("branch ", repo, "@", parsed.base, " has no finished commit yet"));
    }
    id = b->head();
  }
  ASSIGN_OR_RETURN(auto c, GetCommit(repo, id));
  if (!c) return absl::NotFoundError(absl::StrCat("commit ", id, " not found in repo ", repo));
  for (int i = 0; i < parsed.ancestors; ++i) {
    if (c->parent().empty()) {
      return absl::NotFoundError(absl::StrCat("ref ", repo, "@", ref, ": commit ", c->id(),
                                              " has no parent (history has only ", i + 1,
                                              " commits)"));
    }
    std::string parent = c->parent();
    ASSIGN_OR_RETURN(c, GetCommit(repo, parent));
    if (!c)
      return absl::DataLossError(
          absl::StrCat("parent commit ", parent, " of ", repo, " is missing"));
  }
  return *c;
}

absl::StatusOr<CommitInfo> Pfs::ResolveForRead(const std::string& repo, const std::string& ref) {
  ASSIGN_OR_RETURN(CommitInfo c, ResolveCommit(repo, ref));
  if (c.state() != v1::FINISHED) {
    return absl::FailedPreconditionError(
        absl::StrCat("commit ", repo, "@", c.id(), " is still open; finish it to read its files"));
  }
  return c;
}

// ---------------------------------------------------------------------------
// Repos

absl::StatusOr<RepoInfo> Pfs::CreateRepo(const std::string& name, const std::string& description) {
  RETURN_IF_ERROR(ValidateRepoName(name));
  absl::MutexLock lock(&meta_mu_);
  ASSIGN_OR_RETURN(auto existing, GetRepo(name));
  if (existing) return absl::AlreadyExistsError(absl::StrCat("repo ", name, " already exists"));
  RepoInfo info;
  info.set_name(name);
  info.set_description(description);
  *info.mutable_created() = Now();
  BranchInfo master;
  master.set_repo(name);
  master.set_name(kDefaultBranch);
  *master.mutable_created() = info.created();
  KvBatch batch;
  batch.Put(RepoKey(name), info.SerializeAsString());
  batch.Put(BranchKey(name, kDefaultBranch), master.SerializeAsString());
  RETURN_IF_ERROR(WriteLogged({RepoEvent(info), BranchEvent(master)}, &batch));
  TUSK_LOG(INFO) << "created repo " << name;
  info.add_branches(kDefaultBranch);
  return info;
}

absl::StatusOr<RepoInfo> Pfs::InspectRepo(const std::string& name) {
  RETURN_IF_ERROR(ValidateRepoName(name));
  ASSIGN_OR_RETURN(auto r, GetRepo(name));
  if (!r) return absl::NotFoundError(absl::StrCat("repo ", name, " not found"));
  RepoInfo info = *r;
  RETURN_IF_ERROR(kv_->ScanPrefix(BranchPrefix(name), [&](absl::string_view, absl::string_view v) {
    BranchInfo b;
    if (b.ParseFromString(std::string(v))) {
      info.add_branches(b.name());
      if (b.name() == kDefaultBranch && !b.head().empty()) {
        auto c = GetCommit(name, b.head());
        if (c.ok() && *c) info.set_size_bytes((*c)->size_bytes());
      }
    }
    return true;
  }));
  return info;
}

absl::StatusOr<std::vector<RepoInfo>> Pfs::ListRepo() {
  std::vector<std::string> names;
  RETURN_IF_ERROR(kv_->ScanPrefix("r", [&](absl::string_view k, absl::string_view) {
    names.emplace_back(k.substr(1));
    return true;
  }));
  std::vector<RepoInfo> out;
  for (const auto& n : names) {
    auto r = InspectRepo(n);
    if (r.ok()) out.push_back(std::move(*r));
  }
  return out;
}

absl::Status Pfs::DeleteRepo(const std::string& name, bool force) {
  RETURN_IF_ERROR(ValidateRepoName(name));
  absl::MutexLock lock(&meta_mu_);
  ASSIGN_OR_RETURN(auto r, GetRepo(name));
  if (!r) return absl::NotFoundError(absl::StrCat("repo ", name, " not found"));
  std::vector<std::string> open;
  RETURN_IF_ERROR(kv_->ScanPrefix(BranchPrefix(name), [&](absl::string_view, absl::string_view v) {
    BranchInfo b;
    if (b.ParseFromString(std::string(v)) && !b.open_commit().empty())
      open.push_back(b.open_commit());
    return true;
  }));
  if (!open.empty() && !force) {
    return absl::FailedPreconditionError(absl::StrCat("repo ", name, " has an open commit (",
                                                      open[0], "); finish it or use --force"));
  }
  KvBatch batch;
  storage::v1::MetaEvent gone;
  gone.set_deleted_repo(name);
  for (const auto& id : open) {
    RETURN_IF_ERROR(DeletePrefix(kv_.get(), StagePrefix(id), &batch));
  }
  batch.Delete(RepoKey(name));
  RETURN_IF_ERROR(DeletePrefix(kv_.get(), BranchPrefix(name), &batch));
  RETURN_IF_ERROR(DeletePrefix(kv_.get(), CommitPrefix(name), &batch));
  RETURN_IF_ERROR(WriteLogged({gone}, &batch));
  TUSK_LOG(INFO) << "deleted repo " << name;
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Branches

absl::StatusOr<BranchInfo> Pfs::CreateBranch(const std::string& repo, const std::string& branch,
                                             const std::string& head_ref) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  RETURN_IF_ERROR(ValidateBranchName(branch));
  absl::MutexLock lock(&meta_mu_);
  ASSIGN_OR_RETURN(auto r, GetRepo(repo));
  if (!r) return absl::NotFoundError(absl::StrCat("repo ", repo, " not found"));
  std::string head;
  if (!head_ref.empty()) {
    ASSIGN_OR_RETURN(CommitInfo c, ResolveCommit(repo, head_ref));
    if (c.state() != v1::FINISHED) {
      return absl::FailedPreconditionError(
          absl::StrCat("commit ", c.id(), " is open; a branch head must be a finished commit"));
    }
    head = c.id();
  }
  ASSIGN_OR_RETURN(auto existing, GetBranch(repo, branch));
  BranchInfo info;
  if (existing) {
    if (head_ref.empty()) {
      return absl::AlreadyExistsError(
          absl::StrCat("branch ", repo, "@", branch, " already exists"));
    }
    if (!existing->open_commit().empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("branch ", repo, "@", branch, " has an open commit (",
                       existing->open_commit(), "); finish it first"));
    }
    info = *existing;
  } else {
    info.set_repo(repo);
    info.set_name(branch);
    *info.mutable_created() = Now();
  }
  info.set_head(head);
  KvBatch batch;
  batch.Put(BranchKey(repo, branch), info.SerializeAsString());
  RETURN_IF_ERROR(WriteLogged({BranchEvent(info)}, &batch));
  return info;
}

absl::StatusOr<BranchInfo> Pfs::InspectBranch(const std::string& repo, const std::string& branch) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  RETURN_IF_ERROR(ValidateBranchName(branch));
  ASSIGN_OR_RETURN(auto r, GetRepo(repo));
  if (!r) return absl::NotFoundError(absl::StrCat("repo ", repo, " not found"));
  ASSIGN_OR_RETURN(auto b, GetBranch(repo, branch));
  if (!b) return absl::NotFoundError(absl::StrCat("branch ", repo, "@", branch, " not found"));
  // Subvenance by a scan of every branch: there are few, and a stored
  // reverse index would have to be kept right through pipeline updates.
  RETURN_IF_ERROR(kv_->ScanPrefix("b", [&](absl::string_view, absl::string_view v) {
    BranchInfo other;
    if (!other.ParseFromString(std::string(v))) return true;  // fsck reports corrupt records
    for (const auto& p : other.provenance()) {
      if (p.repo() == repo && p.name() == branch) {
        v1::BranchRef* ref = b->add_subvenance();
        ref->set_repo(other.repo());
        ref->set_name(other.name());
        break;
      }
    }
    return true;
  }));
  return *b;
}

absl::StatusOr<BranchInfo> Pfs::SetBranchProvenance(const std::string& repo,
                                                    const std::string& branch,
                                                    const std::vector<v1::BranchRef>& provenance) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  RETURN_IF_ERROR(ValidateBranchName(branch));
  absl::MutexLock lock(&meta_mu_);
  ASSIGN_OR_RETURN(auto r, GetRepo(repo));
  if (!r) return absl::NotFoundError(absl::StrCat("repo ", repo, " not found"));
  ASSIGN_OR_RETURN(auto existing, GetBranch(repo, branch));
  BranchInfo info;
  if (existing) {
    info = *existing;
  } else {
    info.set_repo(repo);
    info.set_name(branch);
    *info.mutable_created() = Now();
  }
  info.clear_provenance();
  for (const auto& p : provenance) *info.add_provenance() = p;
  KvBatch batch;
  batch.Put(BranchKey(repo, branch), info.SerializeAsString());
  RETURN_IF_ERROR(WriteLogged({BranchEvent(info)}, &batch));
  return info;
}

absl::StatusOr<std::vector<BranchInfo>> Pfs::ListBranch(const std::string& repo) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  ASSIGN_OR_RETURN(auto r, GetRepo(repo));
  if (!r) return absl::NotFoundError(absl::StrCat("repo ", repo, " not found"));
  std::vector<BranchInfo> out;
  absl::Status parse_status;
  RETURN_IF_ERROR(kv_->ScanPrefix(BranchPrefix(repo), [&](absl::string_view, absl::string_view v) {
    BranchInfo b;
    if (!b.ParseFromString(std::string(v))) {
      parse_status =
          absl::DataLossError(absl::StrCat("a branch record of repo ", repo, " is corrupt"));
      return false;
    }
    out.push_back(std::move(b));
    return true;
  }));
  RETURN_IF_ERROR(parse_status);
  return out;
}

absl::Status Pfs::DeleteBranch(const std::string& repo, const std::string& branch, bool force) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  RETURN_IF_ERROR(ValidateBranchName(branch));
  absl::MutexLock lock(&meta_mu_);
  ASSIGN_OR_RETURN(auto b, GetBranch(repo, branch));
  if (!b) return absl::NotFoundError(absl::StrCat("branch ", repo, "@", branch, " not found"));
  KvBatch batch;
  if (!b->open_commit().empty()) {
    if (!force) {
      return absl::FailedPreconditionError(absl::StrCat("branch ", repo, "@", branch,
                                                        " has an open commit (", b->open_commit(),
                                                        "); finish it or use --force"));
    }
    RETURN_IF_ERROR(DeletePrefix(kv_.get(), StagePrefix(b->open_commit()), &batch));
    batch.Delete(CommitKey(repo, b->open_commit()));
  }
  storage::v1::MetaEvent gone;
  gone.mutable_deleted_branch()->set_repo(repo);
  gone.mutable_deleted_branch()->set_name(branch);
  batch.Delete(BranchKey(repo, branch));
  return WriteLogged({gone}, &batch);
}

// ---------------------------------------------------------------------------
// Commits

absl::StatusOr<CommitInfo> Pfs::StartCommit(const std::string& repo, const std::string& branch,
                                            const std::string& message, v1::Origin origin,
                                            const std::map<std::string, std::string>& metadata,
                                            const CommitOptions& options) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  RETURN_IF_ERROR(ValidateBranchName(branch));
  if (!options.id.empty() && !IsCommitId(options.id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("commit id '", options.id, "' is not 32 lowercase hex characters"));
  }
  absl::MutexLock lock(&meta_mu_);
  // An automatic commit, or one that a resumable upload owns, ends by
  // itself: wait for it instead of failing.
  const absl::Time deadline = absl::Now() + options.wait;
  while (true) {
    ASSIGN_OR_RETURN(auto b, GetBranch(repo, branch));
    if (!b || b->open_commit().empty()) break;
    ASSIGN_OR_RETURN(auto open, GetCommit(repo, b->open_commit()));
    if (!open || !WaitsForIt(*open)) break;  // StartCommitLocked says why not
    if (auto_commit_done_.WaitWithDeadline(&meta_mu_, deadline)) {
      return absl::DeadlineExceededError(BusyMessage(*open, options.wait));
    }
  }
  return StartCommitLocked(repo, branch, message, origin, metadata, false, options);
}

bool Pfs::WaitsForIt(const CommitInfo& open) {
  return open.automatic() || open.metadata().contains(kUploadOwnerMetadataKey);
}

std::string Pfs::BusyMessage(const CommitInfo& open, absl::Duration waited) {
  auto owner = open.metadata().find(kUploadOwnerMetadataKey);
  if (owner != open.metadata().end()) {
    return absl::StrCat("branch ", open.repo(), "@", open.branch(), " is still busy after ",
                        absl::FormatDuration(waited), ": its open commit ", open.id(),
                        " belongs to the upload '", owner->second,
                        "' (running, or interrupted: run it again to resume it, or finish the "
                        "commit with 'tusk finish commit ",
                        open.repo(), "@", open.id(), "')");
  }
  return absl::StrCat("branch ", open.repo(), "@", open.branch(),
                      " is still busy with automatic commit ", open.id(), " after ",
                      absl::FormatDuration(waited));
}

absl::Status Pfs::CarryMetadata(const std::string& repo, const std::string& parent, CommitInfo* c) {
  if (parent.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto p, GetCommit(repo, parent));
  if (!p) return absl::DataLossError(absl::StrCat("parent commit ", parent, " is missing"));
  for (const auto& [k, v] : p->metadata()) {
    if (absl::StartsWith(k, kCarriedMetadataPrefix)) (*c->mutable_metadata())[k] = v;
  }
  return absl::OkStatus();
}

absl::StatusOr<CommitInfo> Pfs::StartCommitLocked(
    const std::string& repo, const std::string& branch, const std::string& message,
    v1::Origin origin, const std::map<std::string, std::string>& metadata, bool automatic,
    const CommitOptions& options) {
  ASSIGN_OR_RETURN(auto r, GetRepo(repo));
  if (!r) return absl::NotFoundError(absl::StrCat("repo ", repo, " not found"));
  ASSIGN_OR_RETURN(auto existing, GetBranch(repo, branch));
  BranchInfo b;
  if (existing) {
    b = *existing;
    if (!b.open_commit().empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "branch ", repo, "@", branch, " already has an open commit (", b.open_commit(), ")"));
    }
  } else {
    b.set_repo(repo);
    b.set_name(branch);
    *b.mutable_created() = Now();
  }
  CommitInfo c;
  c.set_id(options.id.empty() ? NewCommitId() : options.id);
  if (!options.id.empty()) {
    ASSIGN_OR_RETURN(auto taken, GetCommit(repo, options.id));
    if (taken) {
      return absl::AlreadyExistsError(
          absl::StrCat("commit ", repo, "@", options.id, " already exists"));
    }
  }
  c.set_repo(repo);
  c.set_branch(branch);
  c.set_parent(b.head());
  c.set_state(v1::OPEN);
  c.set_origin(origin == v1::ORIGIN_UNSPECIFIED ? v1::USER : origin);
  c.set_message(message);
  *c.mutable_started() = Now();
  c.set_commit_set(options.commit_set.empty() ? c.id() : options.commit_set);
  c.set_automatic(automatic);
  for (const auto& p : options.provenance) *c.add_provenance() = p;
  RETURN_IF_ERROR(CarryMetadata(repo, b.head(), &c));
  for (const auto& [k, v] : metadata) (*c.mutable_metadata())[k] = v;
  b.set_open_commit(c.id());
  KvBatch batch;
  batch.Put(CommitKey(repo, c.id()), c.SerializeAsString());
  batch.Put(BranchKey(repo, branch), b.SerializeAsString());
  batch.Put(CommitSetKey(c.commit_set(), repo, c.id()), "");
  for (const auto& p : c.provenance()) {
    batch.Put(SubvenanceKey(p.repo(), p.id(), repo, c.id()), "");
  }
  // Not synced: an open commit holds nothing of value until it is finished,
  // and the finishing write syncs everything before it.
  RETURN_IF_ERROR(kv_->Write(&batch, /*sync=*/false));
  return c;
}

absl::StatusOr<CommitInfo> Pfs::FinishCommit(
    const std::string& repo, const std::string& ref, const std::string& message,
    const std::map<std::string, std::string>& metadata,
    const std::map<std::string, std::string>& expect_metadata) {
  FinishOptions options;
  options.message = message;
  options.metadata = metadata;
  options.expect_metadata = expect_metadata;
  return FinishCommit(repo, ref, options);
}

absl::StatusOr<CommitInfo> Pfs::FinishCommit(const std::string& repo, const std::string& ref,
                                             const FinishOptions& options) {
  ASSIGN_OR_RETURN(std::string id, OpenCommitId(repo, ref, "finish commit"));
  return FinishCommitById(repo, id, options);
}

absl::Status Pfs::ListCommitSet(const std::string& commit_set,
                                const std::function<absl::Status(const CommitInfo&)>& fn) {
  ASSIGN_OR_RETURN(auto ids, ScanCommitPairs(kv_.get(), absl::StrCat("k", commit_set, kNul)));
  for (const auto& [repo, id] : ids) {
    ASSIGN_OR_RETURN(auto c, GetCommit(repo, id));
    if (c) RETURN_IF_ERROR(fn(*c));  // gone with a deleted repo otherwise
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::CommitRef>> Pfs::Subvenance(const std::string& repo,
                                                           const std::string& id) {
  std::vector<v1::CommitRef> out;
  ASSIGN_OR_RETURN(auto ids, ScanCommitPairs(kv_.get(), SubvenancePrefix(repo, id)));
  for (const auto& [r, i] : ids) {
    ASSIGN_OR_RETURN(auto c, GetCommit(r, i));
    if (!c) continue;
    v1::CommitRef ref;
    ref.set_repo(r);
    ref.set_id(i);
    ref.set_branch(c->branch());
    out.push_back(std::move(ref));
  }
  return out;
}

absl::StatusOr<std::string> Pfs::OpenCommitId(const std::string& repo, const std::string& ref,
                                              const std::string& what) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  ASSIGN_OR_RETURN(ParsedRef parsed, ParseRef(ref.empty() ? std::string(kDefaultBranch) : ref));
  if (parsed.ancestors > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " needs a branch or a commit id, not '", ref, "'"));
  }
  if (parsed.is_commit_id) return parsed.base;
  ASSIGN_OR_RETURN(auto r, GetRepo(repo));
  if (!r) return absl::NotFoundError(absl::StrCat("repo ", repo, " not found"));
  ASSIGN_OR_RETURN(auto b, GetBranch(repo, parsed.base));
  if (!b) return absl::NotFoundError(absl::StrCat("branch ", repo, "@", parsed.base, " not found"));
  if (b->open_commit().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("branch ", repo, "@", parsed.base, " has no open commit"));
  }
  return b->open_commit();
}

absl::StatusOr<CommitInfo> Pfs::FinishCommitById(const std::string& repo, const std::string& id,
                                                 const FinishOptions& options) {
  const auto& expect_metadata = options.expect_metadata;
  auto commit_lock = CommitLock(id);
  absl::WriterMutexLock finish_lock(commit_lock.get());
  ASSIGN_OR_RETURN(auto c, GetCommit(repo, id));
  if (!c) return absl::NotFoundError(absl::StrCat("commit ", id, " not found in repo ", repo));
  if (c->state() == v1::FINISHED) {
    return absl::FailedPreconditionError(
        absl::StrCat("commit ", repo, "@", id, " is already finished"));
  }
  Hash parent_root;
  if (!c->parent().empty()) {
    ASSIGN_OR_RETURN(auto p, GetCommit(repo, c->parent()));
    if (!p) return absl::DataLossError(absl::StrCat("parent commit ", c->parent(), " is missing"));
    ASSIGN_OR_RETURN(parent_root, RootHash(*p));
  }
  // Gather the staged writes into a path trie.
  Trie trie;
  absl::Status parse_status;
  std::vector<std::string> staged_keys;
  std::vector<Entry> staged_files;
  std::string prefix = StagePrefix(id);
  RETURN_IF_ERROR(kv_->ScanPrefix(prefix, [&](absl::string_view k, absl::string_view v) {
    StagedOp op;
    if (!op.ParseFromString(std::string(v))) {
      parse_status = absl::DataLossError(
          absl::StrCat("staged write ", k.substr(prefix.size()), " of commit ", id, " is corrupt"));
      return false;
    }
    staged_keys.emplace_back(k);
    Trie* node = &trie;
    for (const auto& part : SplitPath(k.substr(prefix.size()))) {
      auto& child = node->children[part];
      if (!child) child = std::make_unique<Trie>();
      node = child.get();
    }
    if (op.kind() == StagedOp::PUT) {
      staged_files.push_back(op.entry());
      node->put = op.entry();
      node->cleared = node->cleared || op.cleared();
    } else {
      node->cleared = true;
      node->put.reset();
    }
    return true;
  }));
  RETURN_IF_ERROR(parse_status);

  auto writer = blobs_->NewWriter();
  ASSIGN_OR_RETURN(DirInfo root, ApplyTrie(nodes_.get(), writer.get(), parent_root, trie, "/"));
  KvBatch batch;
  const bool strict = options_.log_mode == LogMode::kStrict;
  std::vector<PreparedBlob> tail;  // strict: new nodes go into the log pack
  RETURN_IF_ERROR(writer->Finish(&batch, strict ? &tail : nullptr));
  // The blobs this commit adds to its parent's tree: the log pack carries the
  // ones that are still only in the index.
  std::vector<Hash> new_blobs = writer->Touched();
  {
    absl::flat_hash_set<Hash> seen(new_blobs.begin(), new_blobs.end());
    auto add = [&](const Hash& h) {
      if (seen.insert(h).second) new_blobs.push_back(h);
    };
    for (const Entry& e : staged_files) {
      if (e.chunk_list_blob()) {
        ASSIGN_OR_RETURN(Hash list, Hash::FromRaw(e.hash()));
        add(list);
      }
      ASSIGN_OR_RETURN(ChunkList chunks, nodes_->GetChunks(e));
      for (const auto& ref : chunks.chunks()) {
        ASSIGN_OR_RETURN(Hash h, Hash::FromRaw(ref.hash()));
        add(h);
      }
    }
  }
  // Read outside the metadata lock: if the packer moves one of these blobs
  // meanwhile, both copies are valid.
  std::vector<PreparedBlob> log_blobs = std::move(tail);
  if (strict) RETURN_IF_ERROR(blobs_->CollectInline(new_blobs, &log_blobs));

  absl::MutexLock lock(&meta_mu_);
  if (!expect_metadata.empty()) {
    // The parent cannot change while this commit is open (one open commit
    // per branch), so checking here, in the finishing critical section, is
    // atomic with the finish.
    CommitInfo parent;
    if (!c->parent().empty()) {
      ASSIGN_OR_RETURN(auto p, GetCommit(repo, c->parent()));
      if (p) parent = *p;
    }
    for (const auto& [k, want] : expect_metadata) {
      auto it = parent.metadata().find(k);
      std::string have = it == parent.metadata().end() ? "" : it->second;
      if (have != want) {
        return absl::AbortedError(absl::StrCat("precondition failed: metadata '", k,
                                               "' of parent commit ",
                                               c->parent().empty() ? "(none)" : c->parent(),
                                               " is '", have, "', expected '", want, "'"));
      }
    }
  }
  ASSIGN_OR_RETURN(auto b, GetBranch(repo, c->branch()));
  c->set_state(v1::FINISHED);
  *c->mutable_finished() = Now();
  c->set_root(root.hash.IsZero() ? "" : root.hash.Hex());
  c->set_size_bytes(root.size);
  c->set_file_count(root.file_count);
  if (!options.message.empty()) c->set_message(options.message);
  for (const auto& [k, v] : options.metadata) (*c->mutable_metadata())[k] = v;
  if (!options.error.empty()) c->set_error(options.error);
  std::vector<storage::v1::MetaEvent> events = {CommitEvent(*c)};
  if (b && b->open_commit() == id) {
    b->set_open_commit("");
    b->set_head(id);
    events.push_back(BranchEvent(*b));
  }
  batch.Put(CommitKey(repo, id), c->SerializeAsString());
  if (b && b->head() == id) batch.Put(BranchKey(repo, c->branch()), b->SerializeAsString());
  for (const auto& k : staged_keys) batch.Delete(k);
  if (hook_ != nullptr) RETURN_IF_ERROR(hook_->BeforeFinish(*c, &batch));
  if (options.extra != nullptr) batch.Append(*options.extra);
  // The log (strict: to the object store first) then the index, so that
  // the object store can find this commit and all it references on its own.
  RETURN_IF_ERROR(WriteLogged(std::move(events), &batch, log_blobs, new_blobs));
  auto_commit_done_.SignalAll();  // a waiting writer may go on
  if (hook_ != nullptr) hook_->AfterFinish(*c);
  TUSK_LOG(DEBUG) << "finished commit " << repo << "@" << id << " (" << root.file_count
                  << " files, " << root.size << " bytes)";
  return *c;
}

absl::Status Pfs::DropOpenCommit(const std::string& repo, const std::string& id) {
  auto commit_lock = CommitLock(id);
  absl::WriterMutexLock finish_lock(commit_lock.get());
  absl::MutexLock lock(&meta_mu_);
  ASSIGN_OR_RETURN(auto c, GetCommit(repo, id));
  if (!c || c->state() != v1::OPEN) return absl::OkStatus();
  KvBatch batch;
  ASSIGN_OR_RETURN(auto b, GetBranch(repo, c->branch()));
  if (b && b->open_commit() == id) {
    b->set_open_commit("");
    batch.Put(BranchKey(repo, c->branch()), b->SerializeAsString());
  }
  batch.Delete(CommitKey(repo, id));
  RETURN_IF_ERROR(DeletePrefix(kv_.get(), StagePrefix(id), &batch));
  RETURN_IF_ERROR(kv_->Write(&batch, /*sync=*/false));
  auto_commit_done_.SignalAll();  // a waiting writer may go on
  return absl::OkStatus();
}

absl::StatusOr<CommitInfo> Pfs::InspectCommit(const std::string& repo, const std::string& ref) {
  ASSIGN_OR_RETURN(CommitInfo c, ResolveCommit(repo, ref));
  ASSIGN_OR_RETURN(auto sub, Subvenance(repo, c.id()));
  for (auto& r : sub) *c.add_subvenance() = std::move(r);
  return c;
}

absl::Status Pfs::ListCommit(const std::string& repo, const std::string& ref, uint64_t limit,
                             const std::function<absl::Status(const CommitInfo&)>& fn) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  ASSIGN_OR_RETURN(auto r, GetRepo(repo));
  if (!r) return absl::NotFoundError(absl::StrCat("repo ", repo, " not found"));
  uint64_t n = 0;
  if (ref.empty()) {
    std::vector<CommitInfo> all;
    RETURN_IF_ERROR(
        kv_->ScanPrefix(CommitPrefix(repo), [&](absl::string_view, absl::string_view v) {
          CommitInfo c;
          if (c.ParseFromString(std::string(v))) all.push_back(std::move(c));
          return true;
        }));
    std::sort(all.begin(), all.end(), [](const CommitInfo& a, const CommitInfo& b) {
      return TimeUtil::TimestampToNanoseconds(a.started()) >
             TimeUtil::TimestampToNanoseconds(b.started());
    });
    for (const auto& c : all) {
      if (limit > 0 && n >= limit) break;
      RETURN_IF_ERROR(fn(c));
      ++n;
    }
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(ParsedRef parsed, ParseRef(ref));
  std::optional<CommitInfo> c;
  if (!parsed.is_commit_id && parsed.ancestors == 0) {
    ASSIGN_OR_RETURN(auto b, GetBranch(repo, parsed.base));
    if (!b)
      return absl::NotFoundError(absl::StrCat("branch ", repo, "@", parsed.base, " not found"));
    if (!b->open_commit().empty()) {
      ASSIGN_OR_RETURN(auto open, GetCommit(repo, b->open_commit()));
      if (open) {
        RETURN_IF_ERROR(fn(*open));
        ++n;
      }
    }
    if (b->head().empty()) return absl::OkStatus();
    ASSIGN_OR_RETURN(c, GetCommit(repo, b->head()));
  } else {
    ASSIGN_OR_RETURN(c, ResolveCommit(repo, ref));
  }
  while (c && (limit == 0 || n < limit)) {
    RETURN_IF_ERROR(fn(*c));
    ++n;
    if (c->parent().empty()) break;
    ASSIGN_OR_RETURN(c, GetCommit(repo, c->parent()));
  }
  return absl::OkStatus();
}

absl::StatusOr<CommitInfo> Pfs::Revert(const std::string& repo, const std::string& branch,
                                       const std::string& to, const std::string& message) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  RETURN_IF_ERROR(ValidateBranchName(branch));
  ASSIGN_OR_RETURN(CommitInfo target, ResolveForRead(repo, to));
  absl::MutexLock lock(&meta_mu_);
  ASSIGN_OR_RETURN(auto b, GetBranch(repo, branch));
  if (!b) return absl::NotFoundError(absl::StrCat("branch ", repo, "@", branch, " not found"));
  if (!b->open_commit().empty()) {
    return absl::FailedPreconditionError(absl::StrCat("branch ", repo, "@", branch,
                                                      " has an open commit (", b->open_commit(),
                                                      "); finish it first"));
  }
  CommitInfo c;
  c.set_id(NewCommitId());
  c.set_repo(repo);
  c.set_branch(branch);
  c.set_parent(b->head());
  c.set_state(v1::FINISHED);
  c.set_origin(v1::USER);
  c.set_message(message.empty() ? absl::StrCat("revert to ", target.id()) : message);
  *c.mutable_started() = Now();
  *c.mutable_finished() = c.started();
  c.set_root(target.root());
  c.set_size_bytes(target.size_bytes());
  c.set_file_count(target.file_count());
  c.set_commit_set(c.id());
  // Carried state describes what the branch has consumed, not its tree: it
  // comes from the head being replaced, not from the revert target.
  RETURN_IF_ERROR(CarryMetadata(repo, b->head(), &c));
  (*c.mutable_metadata())["reverted_to"] = target.id();
  b->set_head(c.id());
  KvBatch batch;
  batch.Put(CommitKey(repo, c.id()), c.SerializeAsString());
  batch.Put(BranchKey(repo, branch), b->SerializeAsString());
  RETURN_IF_ERROR(WriteLogged({CommitEvent(c), BranchEvent(*b)}, &batch));
  TUSK_LOG(INFO) << "reverted " << repo << "@" << branch << " to " << target.id();
  return c;
}

// ---------------------------------------------------------------------------
// Files

absl::StatusOr<FileInfo> Pfs::MakeFileInfo(const std::string& path, const Entry& e,
                                           const std::string& commit) {
  FileInfo info;
  info.set_path(path);
  info.set_type(e.type() == Entry::DIR ? v1::DIR : v1::FILE);
  info.set_size_bytes(e.size());
  if (!e.hash().empty()) {
    ASSIGN_OR_RETURN(Hash h, Hash::FromRaw(e.hash()));
    if (!h.IsZero()) info.set_hash(h.Hex());
  }
  info.set_commit(commit);
  if (e.type() == Entry::DIR) {
    info.set_file_count(e.file_count());
  } else {
    info.set_file_count(1);
    if (e.chunk_list_blob()) {
      ASSIGN_OR_RETURN(ChunkList list, nodes_->GetChunks(e));
      info.set_chunk_count(static_cast<uint32_t>(list.chunks_size()));
    } else {
      info.set_chunk_count(static_cast<uint32_t>(e.chunks_size()));
    }
  }
  return info;
}

absl::StatusOr<std::unique_ptr<Upload>> Pfs::BeginUpload(const std::string& repo,
                                                         const std::string& ref,
                                                         const AutoCommitOptions& auto_opts) {
  bool auto_only = auto_opts.origin != v1::AUTO || !auto_opts.metadata.empty() ||
                   !auto_opts.expect_metadata.empty();
  if (auto_opts.origin != v1::AUTO && auto_opts.origin != v1::INGEST) {
    return absl::InvalidArgumentError(
        absl::StrCat("an automatic commit's origin must be AUTO or INGEST, not ",
                     v1::Origin_Name(auto_opts.origin)));
  }
  RETURN_IF_ERROR(ValidateRepoName(repo));
  ASSIGN_OR_RETURN(ParsedRef parsed, ParseRef(ref.empty() ? std::string(kDefaultBranch) : ref));
  if (parsed.ancestors > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot write to '", ref, "': writes need a branch or an open commit, not an ancestor"));
  }
  CommitInfo c;
  bool auto_commit = false;
  if (parsed.is_commit_id) {
    ASSIGN_OR_RETURN(auto r, GetRepo(repo));
    if (!r) return absl::NotFoundError(absl::StrCat("repo ", repo, " not found"));
    ASSIGN_OR_RETURN(auto found, GetCommit(repo, parsed.base));
    if (!found)
      return absl::NotFoundError(absl::StrCat("commit ", parsed.base, " not found in repo ", repo));
    c = *found;
  } else {
    absl::MutexLock lock(&meta_mu_);
    ASSIGN_OR_RETURN(auto r, GetRepo(repo));
    if (!r) return absl::NotFoundError(absl::StrCat("repo ", repo, " not found"));
    RETURN_IF_ERROR(ValidateBranchName(parsed.base));
    absl::Time deadline = absl::Now() + auto_opts.wait;
    while (true) {
      ASSIGN_OR_RETURN(auto b, GetBranch(repo, parsed.base));
      if (!b || b->open_commit().empty()) {
        ASSIGN_OR_RETURN(c, StartCommitLocked(repo, parsed.base, auto_opts.message,
                                              auto_opts.origin, {}, /*automatic=*/true));
        auto_commit = true;
        break;
      }
      ASSIGN_OR_RETURN(auto found, GetCommit(repo, b->open_commit()));
      if (!found)
        return absl::DataLossError(absl::StrCat("open commit ", b->open_commit(), " is missing"));
      if (!WaitsForIt(*found)) {
        c = *found;  // an explicitly started commit: write into it
        break;
      }
      // Another stream's automatic commit ends with that stream; an upload's
      // own commit ends with that upload. Neither is joined.
      if (auto_commit_done_.WaitWithDeadline(&meta_mu_, deadline)) {
        return absl::DeadlineExceededError(BusyMessage(*found, auto_opts.wait));
      }
    }
  }
  if (!auto_commit && auto_only) {
    return absl::InvalidArgumentError(absl::StrCat(
        "origin, metadata and preconditions apply to an automatic commit, but the write goes into "
        "open commit ",
        repo, "@", c.id(), "; pass them to finish commit instead"));
  }
  if (c.state() != v1::OPEN) {
    return absl::FailedPreconditionError(absl::StrCat(
        "commit ", repo, "@", c.id(), " is finished; writes need an open commit or a branch"));
  }
  Hash parent_root;
  if (!c.parent().empty()) {
    ASSIGN_OR_RETURN(auto p, GetCommit(repo, c.parent()));
    if (!p) return absl::DataLossError(absl::StrCat("parent commit ", c.parent(), " is missing"));
    ASSIGN_OR_RETURN(parent_root, RootHash(*p));
  }
  auto upload = std::unique_ptr<Upload>(new Upload(this, repo, c.id(), parent_root, auto_commit));
  if (auto_commit) {
    upload->auto_metadata_ = auto_opts.metadata;
    upload->auto_expect_ = auto_opts.expect_metadata;
  }
  return upload;
}

std::unique_ptr<Upload> Pfs::BeginTreeUpload() {
  return std::unique_ptr<Upload>(new Upload(this, "", "", Hash{}, false));
}

absl::StatusOr<FileInfo> Pfs::InspectFile(const std::string& repo, const std::string& ref,
                                          const std::string& path) {
  ASSIGN_OR_RETURN(std::string p, NormalizePath(path));
  ASSIGN_OR_RETURN(CommitInfo c, ResolveForRead(repo, ref));
  ASSIGN_OR_RETURN(Hash root, RootHash(c));
  ASSIGN_OR_RETURN(auto e, LookupPath(nodes_.get(), root, p));
  if (!e) return absl::NotFoundError(absl::StrCat("file ", p, " not found in ", repo, "@", c.id()));
  return MakeFileInfo(p, *e, c.id());
}

absl::Status Pfs::ListStagedFile(const std::string& repo, const std::string& ref,
                                 const std::function<absl::Status(const FileInfo&)>& fn) {
  ASSIGN_OR_RETURN(std::string id, OpenCommitId(repo, ref, "list staged files"));
  ASSIGN_OR_RETURN(auto c, GetCommit(repo, id));
  if (!c) return absl::NotFoundError(absl::StrCat("commit ", id, " not found in repo ", repo));
  if (c->state() != v1::OPEN) {
    return absl::FailedPreconditionError(
        absl::StrCat("commit ", repo, "@", id, " is finished; 'list file' shows its files"));
  }
  std::string prefix = StagePrefix(id);
  absl::Status status;
  RETURN_IF_ERROR(kv_->ScanPrefix(prefix, [&](absl::string_view k, absl::string_view v) {
    StagedOp op;
    if (!op.ParseFromString(std::string(v))) {
      status = absl::DataLossError(
          absl::StrCat("staged write ", k.substr(prefix.size()), " of commit ", id, " is corrupt"));
      return false;
    }
    if (op.kind() != StagedOp::PUT) return true;
    auto info = MakeFileInfo(std::string(k.substr(prefix.size())), op.entry(), id);
    if (info.ok())
      status = fn(*info);
    else
      status = info.status();
    return status.ok();
  }));
  return status;
}

absl::Status Pfs::ListFile(const std::string& repo, const std::string& ref, const std::string& path,
                           const std::function<absl::Status(const FileInfo&)>& fn) {
  ASSIGN_OR_RETURN(std::string p, NormalizePath(path));
  ASSIGN_OR_RETURN(CommitInfo c, ResolveForRead(repo, ref));
  ASSIGN_OR_RETURN(Hash root, RootHash(c));
  ASSIGN_OR_RETURN(auto e, LookupPath(nodes_.get(), root, p));
  if (!e) return absl::NotFoundError(absl::StrCat("path ", p, " not found in ", repo, "@", c.id()));
  if (e->type() == Entry::FILE) {
    ASSIGN_OR_RETURN(FileInfo info, MakeFileInfo(p, *e, c.id()));
    return fn(info);
  }
  ASSIGN_OR_RETURN(Hash dir, Hash::FromRaw(e->hash()));
  return ForEachEntry(nodes_.get(), dir, [&](const Entry& child) -> absl::Status {
    ASSIGN_OR_RETURN(FileInfo info, MakeFileInfo(JoinPath(p, child.name()), child, c.id()));
    return fn(info);
  });
}

absl::Status Pfs::GlobFile(const std::string& repo, const std::string& ref,
                           const std::string& pattern,
                           const std::function<absl::Status(const FileInfo&)>& fn) {
  ASSIGN_OR_RETURN(CommitInfo c, ResolveForRead(repo, ref));
  ASSIGN_OR_RETURN(Hash root, RootHash(c));
  return Glob(nodes_.get(), root, pattern,
              [&](const std::string& path, const Entry& e) -> absl::Status {
                ASSIGN_OR_RETURN(FileInfo info, MakeFileInfo(path, e, c.id()));
                return fn(info);
              });
}

absl::Status Pfs::GetFile(const std::string& repo, const std::string& ref, const std::string& path,
                          const std::function<absl::Status(const FileInfo&)>& on_file,
                          const std::function<absl::Status(std::string data)>& on_data) {
  ASSIGN_OR_RETURN(std::string p, NormalizePath(path));
  ASSIGN_OR_RETURN(CommitInfo c, ResolveForRead(repo, ref));
  ASSIGN_OR_RETURN(Hash root, RootHash(c));
  ASSIGN_OR_RETURN(auto e, LookupPath(nodes_.get(), root, p));
  if (!e) return absl::NotFoundError(absl::StrCat("path ", p, " not found in ", repo, "@", c.id()));
  auto send_file = [&](const std::string& file_path, const Entry& file) -> absl::Status {
    ASSIGN_OR_RETURN(FileInfo info, MakeFileInfo(file_path, file, c.id()));
    RETURN_IF_ERROR(on_file(info));
    ASSIGN_OR_RETURN(ChunkList list, nodes_->GetChunks(file));
    // Read ahead a few chunks on the workers: reading and verifying overlap
    // with sending.
    // Further ahead, ask the object store to start fetching (on a local disk
    // the kernel reads while the workers verify).
    constexpr size_t kReadAhead = 4;
    constexpr int kPrefetchAhead = 16;
    std::deque<std::future<absl::StatusOr<std::string>>> ahead;
    int next = 0;
    int prefetched = 0;
    auto submit = [&]() -> absl::Status {
      for (; prefetched < list.chunks_size() && prefetched < next + kPrefetchAhead; ++prefetched) {
        if (prefetched < next + static_cast<int>(kReadAhead)) continue;  // read right away anyway
        auto ph = Hash::FromRaw(list.chunks(prefetched).hash());
        if (ph.ok()) blobs_->Prefetch(*ph);
      }
      ASSIGN_OR_RETURN(Hash h, Hash::FromRaw(list.chunks(next).hash()));
      ++next;
      BlobStore* blobs = blobs_.get();
      ahead.push_back(workers_->Submit([blobs, h] { return blobs->Read(h); }));
      return absl::OkStatus();
    };
    absl::Status status;
    while (status.ok() && (next < list.chunks_size() || !ahead.empty())) {
      while (status.ok() && next < list.chunks_size() && ahead.size() < kReadAhead)
        status = submit();
      if (!status.ok()) break;
      auto data = ahead.front().get();
      ahead.pop_front();
      if (!data.ok()) {
        status = Annotate(data.status(), absl::StrCat("reading ", file_path));
        break;
      }
      status = on_data(std::move(*data));
    }
    for (auto& f : ahead) f.wait();  // the tasks refer to nothing local, but finish them first
    return status;
  };
  if (e->type() == Entry::FILE) return send_file(p, *e);
  ASSIGN_OR_RETURN(Hash dir, Hash::FromRaw(e->hash()));
  return WalkFiles(nodes_.get(), dir, p, send_file);
}

absl::StatusOr<CommitInfo> Pfs::DeleteFile(const std::string& repo, const std::string& ref,
                                           const std::string& path) {
  ASSIGN_OR_RETURN(auto upload, BeginUpload(repo, ref));
  RETURN_IF_ERROR(upload->Delete(path));
  return upload->Close();
}

absl::Status Pfs::DiffCommit(const std::string& repo, const std::string& new_ref,
                             const std::string& old_ref,
                             const std::function<absl::Status(const FileDiff&)>& fn) {
  ASSIGN_OR_RETURN(CommitInfo n, ResolveForRead(repo, new_ref));
  Hash old_root;
  if (!old_ref.empty()) {
    ASSIGN_OR_RETURN(CommitInfo o, ResolveForRead(repo, old_ref));
    ASSIGN_OR_RETURN(old_root, RootHash(o));
  } else if (!n.parent().empty()) {
    ASSIGN_OR_RETURN(auto o, GetCommit(repo, n.parent()));
    if (!o) return absl::DataLossError(absl::StrCat("parent commit ", n.parent(), " is missing"));
    ASSIGN_OR_RETURN(old_root, RootHash(*o));
  }
  ASSIGN_OR_RETURN(Hash new_root, RootHash(n));
  return DiffTrees(nodes_.get(), old_root, new_root, "/", [&](const PathDiff& d) -> absl::Status {
    FileDiff out;
    out.set_path(d.path);
    out.set_change(d.kind == PathDiff::kAdded     ? FileDiff::ADDED
                   : d.kind == PathDiff::kDeleted ? FileDiff::DELETED
                                                  : FileDiff::MODIFIED);
    if (d.old_entry) {
      out.set_old_size(d.old_entry->size());
      ASSIGN_OR_RETURN(Hash h, Hash::FromRaw(d.old_entry->hash()));
      out.set_old_hash(h.Hex());
    }
    if (d.new_entry) {
      out.set_new_size(d.new_entry->size());
      ASSIGN_OR_RETURN(Hash h, Hash::FromRaw(d.new_entry->hash()));
      out.set_new_hash(h.Hex());
    }
    return fn(out);
  });
}

// ---------------------------------------------------------------------------
// Fsck

absl::StatusOr<Pfs::FsckStats> Pfs::Fsck(
    const std::function<void(const std::string&)>& on_problem) {
  FsckStats stats;
  auto problem = [&](const std::string& what) {
    stats.problems++;
    on_problem(what);
  };
  absl::flat_hash_set<Hash> seen_nodes, seen_chunks;
  // Verifies one directory tree, reading every node from the store (not the cache).
  std::function<void(const Hash&, const std::string&, const std::string&)> check_dir =
      [&](const Hash& h, const std::string& path, const std::string& where) {
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
        stats.nodes++;
        for (const auto& c : node.children()) {
          auto ch = Hash::FromRaw(c.hash());
          if (!ch.ok()) {
            problem(absl::StrCat(where, ": directory ", path, ": malformed child hash"));
            continue;
          }
          check_dir(*ch, path, where);
        }
        for (const auto& e : node.entries()) {
          std::string p = JoinPath(path, e.name());
          auto eh = Hash::FromRaw(e.hash());
          if (!eh.ok()) {
            problem(absl::StrCat(where, ": ", p, ": malformed hash"));
            continue;
          }
          if (e.type() == Entry::DIR) {
            check_dir(*eh, p, where);
            continue;
          }
          if (!seen_nodes.insert(*eh).second) continue;  // same content checked before
          auto list = nodes_->GetChunks(e);
          if (!list.ok()) {
            problem(absl::StrCat(where, ": file ", p, ": ", list.status().message()));
            continue;
          }
          if (Sha256(list->SerializeAsString()) != *eh) {
            problem(
                absl::StrCat(where, ": file ", p, ": chunk list does not match the file's hash"));
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
              problem(absl::StrCat(where, ": file ", p, ": chunk ", chh->Hex(), " has ",
                                   data->size(), " bytes, the file says ", ref.size()));
            }
            stats.chunks++;
            stats.bytes += data->size();
          }
          if (total != e.size()) {
            problem(absl::StrCat(where, ": file ", p, ": chunks add up to ", total,
                                 " bytes, the entry says ", e.size()));
          }
        }
      };

  std::vector<CommitInfo> commits;
  RETURN_IF_ERROR(kv_->ScanPrefix("c", [&](absl::string_view k, absl::string_view v) {
    CommitInfo c;
    if (!c.ParseFromString(std::string(v))) {
      problem(absl::StrCat("commit record ", ToHex(k), " does not parse"));
    } else {
      commits.push_back(std::move(c));
    }
    return true;
  }));
  for (const auto& c : commits) {
    stats.commits++;
    std::string where = absl::StrCat("commit ", c.repo(), "@", c.id());
    if (!c.parent().empty()) {
      auto p = GetCommit(c.repo(), c.parent());
      if (!p.ok() || !*p) problem(absl::StrCat(where, ": parent ", c.parent(), " is missing"));
    }
    if (c.state() != v1::FINISHED) continue;
    auto root = RootHash(c);
    if (!root.ok()) {
      problem(absl::StrCat(where, ": ", root.status().message()));
      continue;
    }
    check_dir(*root, "/", where);
    auto info = GetDirInfo(nodes_.get(), *root);
    if (info.ok() && (info->size != c.size_bytes() || info->file_count != c.file_count())) {
      problem(absl::StrCat(where, ": records ", c.size_bytes(), " bytes in ", c.file_count(),
                           " files, its tree holds ", info->size, " bytes in ", info->file_count));
    }
  }
  // Every pack's footer: a rebuild depends on them, and a read of an
  // indexed blob does not look at them.
  std::vector<std::pair<std::string, uint64_t>> packs;
  RETURN_IF_ERROR(store_->List(kPackPrefix, [&](const std::string& key, uint64_t size) {
    if (!PackIdFromKey(key).empty()) packs.emplace_back(key, size);
  }));
  for (const auto& [key, size] : packs) {
    auto footer = ReadPackFooter(store_, key, size);
    if (absl::IsNotFound(footer.status())) continue;  // GC deleted it meanwhile
    if (!footer.ok()) problem(std::string(footer.status().message()));
    stats.packs++;
  }
  RETURN_IF_ERROR(kv_->ScanPrefix("b", [&](absl::string_view, absl::string_view v) {
    BranchInfo b;
    if (!b.ParseFromString(std::string(v))) {
      problem("a branch record does not parse");
      return true;
    }
    std::string where = absl::StrCat("branch ", b.repo(), "@", b.name());
    if (!b.head().empty()) {
      auto c = GetCommit(b.repo(), b.head());
      if (!c.ok() || !*c) {
        problem(absl::StrCat(where, ": head ", b.head(), " is missing"));
      } else if ((*c)->state() != v1::FINISHED) {
        problem(absl::StrCat(where, ": head ", b.head(), " is not finished"));
      }
    }
    if (!b.open_commit().empty()) {
      auto c = GetCommit(b.repo(), b.open_commit());
      if (!c.ok() || !*c)
        problem(absl::StrCat(where, ": open commit ", b.open_commit(), " is missing"));
    }
    return true;
  }));
  return stats;
}

// ---------------------------------------------------------------------------
// Upload

Upload::Upload(Pfs* pfs, std::string repo, std::string commit_id, Hash parent_root,
               bool auto_commit)
    : pfs_(pfs),
      repo_(std::move(repo)),
      commit_id_(std::move(commit_id)),
      parent_root_(parent_root),
      auto_commit_(auto_commit),
      writer_(pfs->blobs()->NewWriter()),
      chunker_(pfs->options().chunker) {}

Upload::~Upload() {
  if (!closed_) Abort();
}

void Upload::Abort() {
  closed_ = true;
  for (auto& f : in_flight_) f.wait();
  in_flight_.clear();
  writer_->Abandon();
  if (auto_commit_) pfs_->DropOrRetry(repo_, commit_id_);
}

absl::Status Upload::BeginFile(absl::string_view path, bool append) {
  if (closed_) return absl::FailedPreconditionError("upload is closed");
  if (in_file_) {
    return absl::InvalidArgumentError(
        absl::StrCat("file ", path_, " was not ended before file ", path, " began"));
  }
  ASSIGN_OR_RETURN(std::string p, NormalizePath(path));
  if (p == "/") return absl::InvalidArgumentError("cannot write a file at the root path '/'");
  RETURN_IF_ERROR(CheckPut(p));
  path_ = p;
  in_file_ = true;
  chunks_.clear();
  file_bytes_ = 0;
  chunk_.clear();
  chunker_.Reset();
  if (append) {
    ASSIGN_OR_RETURN(auto existing, CurrentEntry(p));
    if (existing && existing->type() == Entry::FILE) {
      ASSIGN_OR_RETURN(ChunkList list, pfs_->nodes()->GetChunks(*existing));
      for (const auto& c : list.chunks()) chunks_.push_back(c);
    }
  }
  return absl::OkStatus();
}

absl::Status Upload::Write(absl::string_view data) {
  if (!in_file_) return absl::InvalidArgumentError("data sent before a file path");
  file_bytes_ += data.size();
  while (!data.empty()) {
    Chunker::Result r = chunker_.FindBoundary(data);
    chunk_.append(data.data(), r.consumed);
    data.remove_prefix(r.consumed);
    if (r.boundary) {
      std::string chunk;
      chunk.swap(chunk_);
      RETURN_IF_ERROR(SubmitChunk(std::move(chunk)));
    }
  }
  return absl::OkStatus();
}

absl::Status Upload::SubmitChunk(std::string chunk) {
  ChunkRef ref;
  ref.set_size(static_cast<uint32_t>(chunk.size()));
  chunks_.push_back(ref);  // hash filled in when the chunk is drained
  if (chunk.size() < (64 << 10)) {
    // Small: hashing it here is cheaper than a trip through the pool.
    std::promise<PreparedBlob> p;
    p.set_value(PrepareBlob(chunk));
    in_flight_.push_back(p.get_future());
  } else {
    auto shared = std::make_shared<std::string>(std::move(chunk));
    in_flight_.push_back(
        pfs_->workers()->Submit([shared] { return PrepareOwnedBlob(std::move(*shared)); }));
  }
  return DrainChunks(/*keep=*/4);
}

absl::Status Upload::DrainChunks(size_t keep) {
  while (in_flight_.size() > keep) {
    PreparedBlob blob = in_flight_.front().get();
    in_flight_.pop_front();
    // The oldest in-flight chunk is the (size - 1 - in_flight)-th of chunks_.
    size_t index = chunks_.size() - 1 - in_flight_.size();
    chunks_[index].set_hash(blob.hash.Raw());
    RETURN_IF_ERROR(writer_->Add(std::move(blob)).status());
  }
  return absl::OkStatus();
}

absl::Status Upload::EndFile(uint64_t expected_size) {
  if (!in_file_) return absl::InvalidArgumentError("end of file sent before a file path");
  if (!chunk_.empty()) {
    std::string chunk;
    chunk.swap(chunk_);
    RETURN_IF_ERROR(SubmitChunk(std::move(chunk)));
  }
  RETURN_IF_ERROR(DrainChunks(0));
  in_file_ = false;
  if (expected_size != file_bytes_) {
    return absl::InvalidArgumentError(absl::StrCat("truncated upload of ", path_, ": received ",
                                                   file_bytes_, " bytes, the client sent ",
                                                   expected_size));
  }
  RETURN_IF_ERROR(StageFile(path_, chunks_));
  bytes_ += file_bytes_;
  chunks_.clear();
  return absl::OkStatus();
}

absl::Status Upload::StageFile(const std::string& path, const std::vector<ChunkRef>& chunks) {
  ASSIGN_OR_RETURN(Entry e, MakeFileEntry(path.substr(path.rfind('/') + 1), chunks, writer_.get()));
  storage::v1::StagedOp op;
  op.set_kind(storage::v1::StagedOp::PUT);
  *op.mutable_entry() = std::move(e);
  auto prev = op_index_.find(path);
  if (prev != op_index_.end() && ops_[prev->second].op.kind() == storage::v1::StagedOp::DELETE) {
    op.set_cleared(true);
  }
  op_index_[path] = ops_.size();
  ops_.push_back({path, std::move(op)});
  files_++;
  return absl::OkStatus();
}

absl::StatusOr<std::optional<Entry>> Upload::CurrentEntry(const std::string& path) {
  // This upload's own writes first, then the parent commit's tree. (Writes
  // staged by other uploads to the same commit are reconciled at finish.)
  auto it = op_index_.find(path);
  if (it != op_index_.end()) {
    const auto& op = ops_[it->second].op;
    if (op.kind() == storage::v1::StagedOp::PUT) return std::optional<Entry>(op.entry());
  }
  auto below = op_index_.lower_bound(path + "/");
  for (; below != op_index_.end() && below->first.compare(0, path.size() + 1, path + "/") == 0;
       ++below) {
    if (ops_[below->second].op.kind() == storage::v1::StagedOp::PUT) {
      Entry dir;
      dir.set_type(Entry::DIR);
      return std::optional<Entry>(dir);
    }
  }
  if (it != op_index_.end()) return std::optional<Entry>();  // deleted here
  // A deleted ancestor hides the parent's content.
  std::string p = path;
  while (true) {
    size_t slash = p.rfind('/');
    if (slash == 0 || slash == std::string::npos) break;
    p.resize(slash);
    auto a = op_index_.find(p);
    if (a != op_index_.end() && ops_[a->second].op.kind() == storage::v1::StagedOp::DELETE) {
      return std::optional<Entry>();
    }
  }
  auto root = op_index_.find("/");
  if (root != op_index_.end()) return std::optional<Entry>();
  return LookupPath(pfs_->nodes(), parent_root_, path);
}

absl::Status Upload::CheckPut(const std::string& path) {
  std::vector<std::string> parts = SplitPath(path);
  std::string prefix;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    prefix += "/" + parts[i];
    if (checked_dirs_.contains(prefix)) continue;
    ASSIGN_OR_RETURN(auto e, CurrentEntry(prefix));
    if (e && e->type() == Entry::FILE) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot write ", path, ": ", prefix, " is a file"));
    }
    checked_dirs_[prefix] = true;
  }
  ASSIGN_OR_RETURN(auto e, CurrentEntry(path));
  if (e && e->type() == Entry::DIR) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write file ", path, ": it is a directory"));
  }
  return absl::OkStatus();
}

absl::Status Upload::Delete(absl::string_view path) {
  if (closed_) return absl::FailedPreconditionError("upload is closed");
  if (in_file_) return absl::InvalidArgumentError("delete sent in the middle of a file");
  ASSIGN_OR_RETURN(std::string p, NormalizePath(path));
  if (p != "/") {
    ASSIGN_OR_RETURN(auto e, CurrentEntry(p));
    if (!e) {
      return absl::NotFoundError(absl::StrCat(
          "cannot delete ", p, ": no such file or directory in ", repo_, "@", commit_id_));
    }
  }
  // Forget this upload's earlier writes at and beneath the path.
  std::string below = p == "/" ? "/" : p + "/";
  for (auto it = op_index_.lower_bound(below);
       it != op_index_.end() && it->first.compare(0, below.size(), below) == 0;) {
    it = op_index_.erase(it);
  }
  for (auto it = checked_dirs_.begin(); it != checked_dirs_.end();) {
    if (it->first == p || it->first.compare(0, below.size(), below) == 0) {
      checked_dirs_.erase(it++);
    } else {
      ++it;
    }
  }
  storage::v1::StagedOp op;
  op.set_kind(storage::v1::StagedOp::DELETE);
  op.set_cleared(true);
  op_index_[p] = ops_.size();
  ops_.push_back({p, std::move(op)});
  return absl::OkStatus();
}

absl::Status Upload::PutChunks(absl::string_view path, const std::vector<ChunkRef>& chunks) {
  if (closed_) return absl::FailedPreconditionError("upload is closed");
  if (in_file_) return absl::InvalidArgumentError("file put in the middle of another file");
  ASSIGN_OR_RETURN(std::string p, NormalizePath(path));
  if (p == "/") return absl::InvalidArgumentError("cannot write a file at the root path '/'");
  RETURN_IF_ERROR(CheckPut(p));
  RETURN_IF_ERROR(StageFile(p, chunks));
  for (const auto& c : chunks) bytes_ += c.size();
  return absl::OkStatus();
}

absl::StatusOr<DirInfo> Upload::CloseToTree(KvBatch* batch) {
  if (closed_) return absl::FailedPreconditionError("upload is closed");
  if (!commit_id_.empty()) {
    return absl::FailedPreconditionError("CloseToTree is for uploads from BeginTreeUpload");
  }
  if (in_file_) {
    return absl::InvalidArgumentError(absl::StrCat("file ", path_, " was not ended"));
  }
  closed_ = true;
  Trie trie;
  for (size_t i = 0; i < ops_.size(); ++i) {
    const Op& op = ops_[i];
    auto live = op_index_.find(op.path);
    if (live == op_index_.end() || live->second != i) continue;
    if (op.op.kind() != storage::v1::StagedOp::PUT) continue;  // nothing to delete in a new tree
    Trie* node = &trie;
    for (const auto& part : SplitPath(op.path)) {
      auto& child = node->children[part];
      if (!child) child = std::make_unique<Trie>();
      node = child.get();
    }
    node->put = op.op.entry();
  }
  ASSIGN_OR_RETURN(DirInfo root, ApplyTrie(pfs_->nodes(), writer_.get(), Hash{}, trie, "/"));
  RETURN_IF_ERROR(writer_->Finish(batch));
  return root;
}

absl::StatusOr<CommitInfo> Upload::Close() {
  if (closed_) return absl::FailedPreconditionError("upload is closed");
  if (commit_id_.empty())
    return absl::FailedPreconditionError("a tree upload ends with CloseToTree");
  if (in_file_) {
    return absl::InvalidArgumentError(absl::StrCat("file ", path_, " was not ended"));
  }
  KvBatch batch;
  RETURN_IF_ERROR(writer_->Finish(&batch));
  for (size_t i = 0; i < ops_.size(); ++i) {
    const Op& op = ops_[i];
    // Only the latest op of a path counts, and none beneath a later delete.
    auto live = op_index_.find(op.path);
    if (live == op_index_.end() || live->second != i) continue;
    if (op.op.cleared()) {
      // Writes staged by earlier uploads beneath a deleted path go too.
      std::string below = StageKey(commit_id_, op.path == "/" ? "/" : op.path + "/");
      RETURN_IF_ERROR(DeletePrefix(pfs_->kv(), below, &batch));
    }
    batch.Put(StageKey(commit_id_, op.path), op.op.SerializeAsString());
  }
  {
    auto lock = pfs_->CommitLock(commit_id_);
    absl::ReaderMutexLock reader(lock.get());
    ASSIGN_OR_RETURN(auto c, pfs_->GetCommit(repo_, commit_id_));
    if (!c || c->state() != v1::OPEN) {
      return absl::FailedPreconditionError(absl::StrCat(
          "commit ", repo_, "@", commit_id_, " was finished or deleted during the upload"));
    }
    RETURN_IF_ERROR(pfs_->kv()->Write(&batch, /*sync=*/false));
  }
  closed_ = true;
  if (auto_commit_) {
    FinishOptions finish;
    finish.metadata = auto_metadata_;
    finish.expect_metadata = auto_expect_;
    auto finished = pfs_->FinishCommitById(repo_, commit_id_, finish);
    if (!finished.ok()) {
      // Leave nothing half-done: the automatic commit goes away with its writes.
      writer_->Abandon();
      pfs_->DropOrRetry(repo_, commit_id_);
      return finished.status();
    }
    return finished;
  }
  ASSIGN_OR_RETURN(auto c, pfs_->GetCommit(repo_, commit_id_));
  if (!c) return absl::NotFoundError(absl::StrCat("commit ", commit_id_, " disappeared"));
  return *c;
}

}  // namespace tusk::pfs
