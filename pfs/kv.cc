#include "pfs/kv.h"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"

namespace tusk::pfs {
namespace {

rocksdb::Slice ToSlice(absl::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

// RocksDB statuses are converted here, once.
absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat("rocksdb ", what, ": ", s.ToString());
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsIOError()) {
    if (s.IsNoSpace()) return absl::ResourceExhaustedError(msg);
    return absl::UnavailableError(msg);
  }
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(msg);
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) return absl::UnavailableError(msg);
  return absl::InternalError(msg);
}

}  // namespace

KvBatch::KvBatch() : batch_(std::make_unique<rocksdb::WriteBatch>()) {}
KvBatch::~KvBatch() = default;
void KvBatch::Put(absl::string_view key, absl::string_view value) {
  // WriteBatch only fails on size overflow (> 4 GiB), a programmer bug here.
  batch_->Put(ToSlice(key), ToSlice(value)).PermitUncheckedError();
}
void KvBatch::Delete(absl::string_view key) { batch_->Delete(ToSlice(key)).PermitUncheckedError(); }
namespace {
// Replays a batch's operations into another batch.
class AppendHandler : public rocksdb::WriteBatch::Handler {
 public:
  explicit AppendHandler(rocksdb::WriteBatch* to) : to_(to) {}
  void Put(const rocksdb::Slice& key, const rocksdb::Slice& value) override {
    to_->Put(key, value).PermitUncheckedError();
  }
  void Delete(const rocksdb::Slice& key) override { to_->Delete(key).PermitUncheckedError(); }

 private:
  rocksdb::WriteBatch* to_;
};
}  // namespace

void KvBatch::Append(const KvBatch& other) {
  AppendHandler handler(batch_.get());
  // Iterate fails only on a corrupt batch, which a KvBatch built through Put
  // and Delete cannot be.
  other.batch_->Iterate(&handler).PermitUncheckedError();
}
void KvBatch::Clear() { batch_->Clear(); }
size_t KvBatch::Count() const { return batch_->Count(); }
size_t KvBatch::ByteSize() const { return batch_->GetDataSize(); }
Kv::Kv(rocksdb::DB* db) : db_(db) {}
Kv::~Kv() {
  if (db_) {
    db_->Close().PermitUncheckedError();  // Nothing to do about a failed close at exit.
  }
}

absl::StatusOr<std::unique_ptr<Kv>> Kv::Open(const std::string& path) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.IncreaseParallelism(2);
  options.OptimizeLevelStyleCompaction(64 << 20);
  options.max_open_files = 512;
  // Reuse WAL files: a synced write into a recycled (already allocated) file
  // need not also commit a file-size change to the filesystem journal.
  options.recycle_log_file_num = 4;
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.block_cache = rocksdb::NewLRUCache(64 << 20);
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* db = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(options, path, &db), absl::StrCat("open ", path)));
  return std::unique_ptr<Kv>(new Kv(db));
}

absl::StatusOr<std::optional<std::string>> Kv::Get(absl::string_view key) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), ToSlice(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  RETURN_IF_ERROR(FromRocks(s, "get"));
  return std::optional<std::string>(std::move(value));
}

absl::Status Kv::Put(absl::string_view key, absl::string_view value, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return WriteWithResume([&] { return db_->Put(wo, ToSlice(key), ToSlice(value)); }, "put");
}

absl::Status Kv::Write(KvBatch* batch, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return WriteWithResume([&] { return db_->Write(wo, batch->batch_.get()); }, "write");
}

absl::Status Kv::WriteWithResume(const std::function<rocksdb::Status()>& write,
                                 absl::string_view what) {
  rocksdb::Status s = write();
  if (!s.IsIOError()) return FromRocks(s, what);
  // A failed write (a full disk) leaves RocksDB refusing every later write
  // with the same error until it is told to resume; once space is back,
  // resuming lets this write, and every later one, through. A failed write
  // was not applied, so writing it again applies it once.
  rocksdb::Status resumed = db_->Resume();
  if (!resumed.ok()) return FromRocks(s, what);
  LOG(INFO) << "the index resumed writing after: " << s.ToString();
  return FromRocks(write(), what);
}

absl::Status Kv::Scan(absl::string_view begin, absl::string_view end,
                      const std::function<bool(absl::string_view, absl::string_view)>& fn) {
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper = ToSlice(end);
  if (!end.empty()) ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  for (it->Seek(ToSlice(begin)); it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key(), v = it->value();
    if (!fn(absl::string_view(k.data(), k.size()), absl::string_view(v.data(), v.size()))) break;
  }
  return FromRocks(it->status(), "scan");
}

absl::Status Kv::ScanPrefix(absl::string_view prefix,
                            const std::function<bool(absl::string_view, absl::string_view)>& fn) {
  std::string end = PrefixEnd(prefix);
  return Scan(prefix, end, fn);
}

absl::Status Kv::DeletePrefix(absl::string_view prefix, KvBatch* batch) {
  return ScanPrefix(prefix, [&](absl::string_view k, absl::string_view) {
    batch->Delete(k);
    return true;
  });
}

absl::Status Kv::Flush() {
  RETURN_IF_ERROR(FromRocks(db_->Flush(rocksdb::FlushOptions()), "flush"));
  return FromRocks(db_->SyncWAL(), "sync wal");
}

std::string PrefixEnd(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    unsigned char c = static_cast<unsigned char>(end.back());
    if (c != 0xff) {
      end.back() = static_cast<char>(c + 1);
      return end;
    }
    end.pop_back();
  }
  return end;  // empty: no upper bound
}

}  // namespace tusk::pfs
