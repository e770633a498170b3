// Checkpoints: every repo, branch, commit and durable record in one object, so
// that older logs are needed only for their blobs.

#include <algorithm>

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

absl::StatusOr<uint64_t> PfsImpl::WriteCheckpoint() {
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
    RETURN_IF_ERROR(scan(kRepoSpace, [&](absl::string_view v) {
      return cp.add_repos()->ParseFromString(std::string(v));
    }));
    RETURN_IF_ERROR(scan(kBranchSpace, [&](absl::string_view v) {
      v1::BranchInfo* b = cp.add_branches();
      if (!b->ParseFromString(std::string(v))) return false;
      b->clear_open_commit();
      return true;
    }));
    RETURN_IF_ERROR(scan(kCommitSpace, [&](absl::string_view v) {
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
      if (!s.ok()) LOG(WARNING) << "deleting void range " << k << ": " << s;
    }
  }
  // Keep the two newest.
  std::vector<std::string> keys;
  RETURN_IF_ERROR(
      store_->List(kCheckpointPrefix, [&](const std::string& k, uint64_t) { keys.push_back(k); }));
  std::sort(keys.begin(), keys.end());
  for (size_t i = 0; i + 2 < keys.size(); ++i) {
    absl::Status s = store_->Delete(keys[i]);
    if (!s.ok()) LOG(WARNING) << "deleting old checkpoint " << keys[i] << ": " << s;
  }
  return cp.seq();
}

}  // namespace tusk::pfs
