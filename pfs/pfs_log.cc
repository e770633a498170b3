// The metadata log: sequence numbers, log packs (strict) or pending logs
// shipped in batches, and the durable records of other components.

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

absl::StatusOr<uint64_t> PfsImpl::NextSeq() {
  constexpr uint64_t kBlock = 4096;
  if (next_seq_ > reserved_seq_) {
    uint64_t reserve = next_seq_ + kBlock - 1;
    RETURN_IF_ERROR(kv_->Put(kSeqKey, absl::StrCat(reserve), /*sync=*/true));
    reserved_seq_ = reserve;
  }
  return next_seq_++;
}

absl::Status PfsImpl::WriteLogged(std::vector<storage::v1::MetaEvent> events, KvBatch* batch,
                                  const std::vector<PreparedBlob>& blobs,
                                  const std::vector<Hash>& shipped_blobs) {
  ASSIGN_OR_RETURN(uint64_t seq, LogEvents(std::move(events), batch, blobs, shipped_blobs));
  absl::Status written = kv_->Write(batch, /*sync=*/true);
  if (!written.ok() && options_.log_mode == LogMode::kStrict) {
    // The log pack is in the object store but the change is not in the
    // index: void its number, so that a rebuild does not make it.
    absl::Status voided = store_->Put(VoidKey(seq, seq), "");
    if (!voided.ok()) {
      LOG(WARNING) << "log " << seq << " was written but not applied, and recording that failed ("
                   << voided << "); the next start voids it";
    }
  }
  return written;
}

absl::StatusOr<uint64_t> PfsImpl::LogEvents(std::vector<storage::v1::MetaEvent> events,
                                            KvBatch* batch, const std::vector<PreparedBlob>& blobs,
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

absl::StatusOr<size_t> PfsImpl::ShipLogs() {
  absl::MutexLock lock(&ship_mu_);
  size_t shipped = 0;
  for (;;) {
    std::vector<storage::v1::MetaLog> logs;
    std::vector<Hash> hashes;
    std::vector<std::string> keys;
    absl::Status parse;
    // From the first number not yet shipped: the shipped ones before it are
    // deletions that a scan from "l" would wade through on every call.
    RETURN_IF_ERROR(kv_->Scan(PendingLogKey(shipped_below_), PrefixEnd(kPendingLogSpace),
                              [&](absl::string_view k, absl::string_view v) {
                                storage::v1::PendingLog p;
                                if (!p.ParseFromString(std::string(v))) {
                                  parse = absl::DataLossError(
                                      absl::StrCat("pending log ", k.substr(1), " is corrupt"));
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

absl::Status PfsImpl::PutRecord(const std::string& key, const std::string& value) {
  RecordChanges c;
  c.put[key] = value;
  return WriteRecords(c, nullptr);
}

absl::Status PfsImpl::DeleteRecord(const std::string& key) {
  RecordChanges c;
  c.deleted.push_back(key);
  return WriteRecords(c, nullptr);
}

absl::Status PfsImpl::WriteRecords(const RecordChanges& changes, KvBatch* extra) {
  absl::MutexLock lock(&meta_mu_);
  std::vector<storage::v1::MetaEvent> events;
  KvBatch batch;
  RETURN_IF_ERROR(AddRecordChanges(changes, &events, &batch));
  if (extra != nullptr) batch.Append(*extra);
  return WriteLogged(std::move(events), &batch);
}

absl::Status PfsImpl::AddRecordChanges(const RecordChanges& changes,
                                       std::vector<storage::v1::MetaEvent>* events,
                                       KvBatch* batch) {
  // Prefixes first: a record put in the same change outlives them.
  for (const auto& prefix : changes.deleted_prefixes) {
    storage::v1::MetaEvent e;
    e.set_deleted_record_prefix(prefix);
    events->push_back(std::move(e));
    RETURN_IF_ERROR(
        kv_->ScanPrefix(RecordMarkerKey(prefix), [&](absl::string_view marker, absl::string_view) {
          batch->Delete(marker);
          batch->Delete(marker.substr(1));
          return true;
        }));
  }
  for (const auto& key : changes.deleted) {
    storage::v1::MetaEvent e;
    e.set_deleted_record_key(key);
    events->push_back(std::move(e));
    batch->Delete(key);
    batch->Delete(RecordMarkerKey(key));
  }
  for (const auto& [key, value] : changes.put) {
    storage::v1::MetaEvent e;
    e.mutable_record()->set_key(key);
    e.mutable_record()->set_value(value);
    events->push_back(std::move(e));
    batch->Put(key, value);
    batch->Put(RecordMarkerKey(key), "");
  }
  return absl::OkStatus();
}

}  // namespace tusk::pfs
