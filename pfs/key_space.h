#pragma once

// KeySpace: one component's records in the index (the dispatcher's jobs, the
// pipeline and source specs). Every key it reads or writes starts with its
// prefix, one of the component spaces registered in keys.h; a key outside it
// is a programmer error (CHECK). Keys passed in and out are whole index keys,
// made by keys.h's functions.
//
// A KeySpace is a cheap value handed out by Pfs::Space; it does not own the
// index and must not outlive the Pfs that made it. Thread-safe as the index
// is: a KvBatch's writes are atomic, `sync` writes durable when they return.

#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/proto_util.h"
#include "pfs/kv.h"

namespace tusk::pfs {

class Pfs;

class KeySpace {
 public:
  const std::string& prefix() const { return prefix_; }

  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key) const;
  // Get, parsed as message T; DataLoss (naming the key) if it does not parse.
  template <typename T>
  absl::StatusOr<std::optional<T>> GetProto(absl::string_view key) const {
    auto v = Get(key);
    if (!v.ok()) return v.status();
    if (!*v) return std::optional<T>();
    auto msg = ParseProto<T>(**v, absl::StrCat("index record ", absl::CEscape(key)));
    if (!msg.ok()) return msg.status();
    return std::optional<T>(*std::move(msg));
  }
  absl::Status Put(absl::string_view key, absl::string_view value, bool sync) const;
  // Writes `batch`, whose keys must be in this space (see Put/Delete below).
  absl::Status Write(KvBatch* batch, bool sync) const;
  // Adds a write of this space to `batch`.
  void Put(KvBatch* batch, absl::string_view key, absl::string_view value) const;
  void Delete(KvBatch* batch, absl::string_view key) const;
  // Adds the deletes of every key that starts with `prefix` to `batch`.
  absl::Status DeletePrefix(absl::string_view prefix, KvBatch* batch) const;

  // Calls fn(key, value) for keys in [begin, end) in order while it returns true.
  absl::Status Scan(absl::string_view begin, absl::string_view end,
                    const std::function<bool(absl::string_view, absl::string_view)>& fn) const;
  absl::Status ScanPrefix(
      absl::string_view prefix,
      const std::function<bool(absl::string_view, absl::string_view)>& fn) const;

  // A record that must survive an index rebuild (a pipeline or source spec):
  // logged to the object store like a commit, then written (Pfs::PutRecord).
  absl::Status PutRecord(const std::string& key, const std::string& value) const;
  absl::Status DeleteRecord(const std::string& key) const;

 private:
  friend class PfsImpl;
  KeySpace(Kv* kv, Pfs* pfs, std::string prefix);
  // CHECK-fails unless `key` starts with the prefix.
  void Own(absl::string_view key) const;

  Kv* kv_;
  Pfs* pfs_;
  std::string prefix_;
};

}  // namespace tusk::pfs
