// Opening, recovering and closing a Pfs; the background packer; commit locks.

#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"
#include "pfs/keys.h"
#include "pfs/pfs_impl.h"
#include "pfs/rebuild.h"
#include "pfs/records.h"
#include "pfs/refs.h"

namespace tusk::pfs {

using google::protobuf::util::TimeUtil;
using storage::v1::StagedOp;

absl::StatusOr<std::unique_ptr<Pfs>> Pfs::Open(const PfsOptions& options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("data directory is not set");
  auto pfs = std::unique_ptr<PfsImpl>(new PfsImpl(options));
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

PfsImpl::~PfsImpl() {
  {
    absl::MutexLock lock(&packer_mu_);
    stopping_ = true;
  }
  if (packer_.joinable()) packer_.join();
  workers_.reset();
  if (blobs_ && kv_ && options_.log_mode == LogMode::kShipped) {
    auto shipped = ShipLogs();
    if (!shipped.ok())
      LOG(WARNING) << "shipping the metadata log at shutdown: " << shipped.status();
  }
  if (blobs_) {
    auto packed = blobs_->PackPending();
    if (!packed.ok()) LOG(WARNING) << "packing at shutdown: " << packed.status();
  }
  if (kv_) {
    absl::Status s = kv_->Flush();
    if (!s.ok()) LOG(WARNING) << "flushing the index at shutdown: " << s;
  }
}

absl::Status PfsImpl::Recover() {
  // An automatic commit lives only as long as the upload stream that opened it;
  // one left open by a crash can never be finished by its client: drop it.
  std::vector<std::pair<std::string, std::string>> open;
  RETURN_IF_ERROR(kv_->ScanPrefix(kBranchSpace, [&](absl::string_view, absl::string_view v) {
    BranchInfo b;
    if (b.ParseFromString(std::string(v)) && !b.open_commit().empty()) {
      open.emplace_back(b.repo(), b.open_commit());
    }
    return true;
  }));
  for (const auto& [repo, id] : open) {
    ASSIGN_OR_RETURN(auto c, GetCommit(repo, id));
    if (c && (c->automatic() || c->origin() == v1::AUTO)) {
      LOG(INFO) << "dropping automatic commit " << repo << "@" << id
                << " left open by an interrupted upload";
      RETURN_IF_ERROR(DropOpenCommit(repo, id));
    }
  }
  return absl::OkStatus();
}

void PfsImpl::PackerLoop() {
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
      LOG(WARNING) << what << ": " << s << " (retrying every tick; said again after a minute)";
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

absl::Status PfsImpl::PackPending() { return blobs_->PackPending().status(); }

void PfsImpl::DropOrRetry(const std::string& repo, const std::string& id) {
  absl::Status s = DropOpenCommit(repo, id);
  if (s.ok()) return;
  // A commit left open would hold its branch (writers wait for an automatic
  // commit) until a restart: try again in the background until it goes.
  LOG(WARNING) << "dropping automatic commit " << repo << "@" << id << ": " << s
               << "; retrying in the background";
  absl::MutexLock lock(&packer_mu_);
  pending_drops_.emplace_back(repo, id);
}

void PfsImpl::RetryDrops() {
  std::vector<std::pair<std::string, std::string>> drops;
  {
    absl::MutexLock lock(&packer_mu_);
    drops.swap(pending_drops_);
  }
  for (const auto& [repo, id] : drops) {
    absl::Status s = DropOpenCommit(repo, id);
    if (s.ok()) {
      LOG(INFO) << "dropped automatic commit " << repo << "@" << id
                << " (after an earlier failure)";
      continue;
    }
    absl::MutexLock lock(&packer_mu_);
    pending_drops_.emplace_back(repo, id);
  }
}

KeySpace PfsImpl::Space(absl::string_view prefix) {
  bool known = false;
  for (auto space : kComponentSpaces)
    known = known || std::string_view(prefix.data(), prefix.size()) == space;
  CHECK(known) << "Pfs::Space: " << prefix << " is not a component key space (keys.h)";
  return KeySpace(kv_.get(), this, std::string(prefix));
}

std::shared_ptr<absl::Mutex> PfsImpl::CommitLock(const std::string& id) {
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

}  // namespace tusk::pfs
