#pragma once

// Kv: the RocksDB index, behind a small interface so that RocksDB stays private
// to this file's implementation.
//
// Keys are byte strings; the first byte names the record kind (keys.h).
// Thread-safe. Writes of one KvBatch are atomic; `sync` writes are durable when
// Write returns (RocksDB's WAL is fsynced, covering every earlier write too).

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rocksdb {
class DB;
class Status;
class WriteBatch;
}  // namespace rocksdb

namespace tusk::pfs {

class KvBatch {
 public:
  KvBatch();
  ~KvBatch();
  KvBatch(const KvBatch&) = delete;
  KvBatch& operator=(const KvBatch&) = delete;

  void Put(absl::string_view key, absl::string_view value);
  void Delete(absl::string_view key);
  // Drops every operation added so far.
  void Clear();
  // Adds every operation of `other` (which is left as it is), in order.
  void Append(const KvBatch& other);
  size_t Count() const;
  size_t ByteSize() const;

 private:
  friend class Kv;
  std::unique_ptr<rocksdb::WriteBatch> batch_;
};

class Kv {
 public:
  // Opens (creating if needed) the RocksDB database in directory `path`.
  static absl::StatusOr<std::unique_ptr<Kv>> Open(const std::string& path);
  ~Kv();

  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key);
  absl::Status Put(absl::string_view key, absl::string_view value, bool sync);
  absl::Status Write(KvBatch* batch, bool sync);

  // Calls fn(key, value) for keys in [begin, end) in order while it returns true.
  absl::Status Scan(absl::string_view begin, absl::string_view end,
                    const std::function<bool(absl::string_view, absl::string_view)>& fn);
  // Scan over every key starting with `prefix`.
  absl::Status ScanPrefix(absl::string_view prefix,
                          const std::function<bool(absl::string_view, absl::string_view)>& fn);
  // Adds the deletes of every key starting with `prefix` to `batch`.
  absl::Status DeletePrefix(absl::string_view prefix, KvBatch* batch);
  // Flushes memtables and syncs; used at shutdown.
  absl::Status Flush();

 private:
  explicit Kv(rocksdb::DB* db);
  // Runs `write`; after an I/O error (a full disk), resumes the database
  // (RocksDB stops writing after one) and, if that works, tries once more.
  absl::Status WriteWithResume(const std::function<rocksdb::Status()>& write,
                               absl::string_view what);
  std::unique_ptr<rocksdb::DB> db_;
};

// The smallest key greater than every key starting with `prefix`.
std::string PrefixEnd(absl::string_view prefix);

}  // namespace tusk::pfs
