#include "pfs/key_space.h"

#include "absl/strings/match.h"
#include "common/log.h"
#include "pfs/pfs.h"

namespace tusk::pfs {

KeySpace::KeySpace(Kv* kv, Pfs* pfs, std::string prefix)
    : kv_(kv), pfs_(pfs), prefix_(std::move(prefix)) {}

void KeySpace::Own(absl::string_view key) const {
  CHECK(absl::StartsWith(key, prefix_))
      << "key " << absl::CEscape(key) << " is outside key space " << prefix_;
}

absl::StatusOr<std::optional<std::string>> KeySpace::Get(absl::string_view key) const {
  Own(key);
  return kv_->Get(key);
}

absl::Status KeySpace::Put(absl::string_view key, absl::string_view value, bool sync) const {
  Own(key);
  return kv_->Put(key, value, sync);
}

absl::Status KeySpace::Write(KvBatch* batch, bool sync) const { return kv_->Write(batch, sync); }

void KeySpace::Put(KvBatch* batch, absl::string_view key, absl::string_view value) const {
  Own(key);
  batch->Put(key, value);
}

void KeySpace::Delete(KvBatch* batch, absl::string_view key) const {
  Own(key);
  batch->Delete(key);
}

absl::Status KeySpace::DeletePrefix(absl::string_view prefix, KvBatch* batch) const {
  Own(prefix);
  return kv_->DeletePrefix(prefix, batch);
}

absl::Status KeySpace::Scan(
    absl::string_view begin, absl::string_view end,
    const std::function<bool(absl::string_view, absl::string_view)>& fn) const {
  Own(begin);
  // `end` may be the first key past the space (PrefixEnd of a sub-prefix).
  return kv_->Scan(begin, end, fn);
}

absl::Status KeySpace::ScanPrefix(
    absl::string_view prefix,
    const std::function<bool(absl::string_view, absl::string_view)>& fn) const {
  Own(prefix);
  return kv_->ScanPrefix(prefix, fn);
}

absl::Status KeySpace::PutRecord(const std::string& key, const std::string& value) const {
  Own(key);
  return pfs_->PutRecord(key, value);
}

absl::Status KeySpace::DeleteRecord(const std::string& key) const {
  Own(key);
  return pfs_->DeleteRecord(key);
}

}  // namespace tusk::pfs
