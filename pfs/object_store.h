#pragma once

// ObjectStore: a flat namespace of immutable objects, the interface that every
// storage backend (local directory, S3) implements.
//
// Contract:
//  - Put is atomic: after it returns OK the whole object is durable and visible
//    under `key`; if it fails or the process dies, no partial object is visible.
//  - Objects are never modified in place; a Put to an existing key replaces it
//    atomically (tusk only does that with identical content).
//  - Keys are relative paths of [A-Za-z0-9._/-] characters.
// Implementations are thread-safe.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tusk::pfs {

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // Stores `data` under `key`, durably and atomically.
  virtual absl::Status Put(const std::string& key, absl::string_view data) = 0;
  // Stores the concatenation of `parts` (saves building one big buffer).
  virtual absl::Status PutParts(const std::string& key, const std::vector<absl::string_view>& parts);
  // The whole object. NotFound if absent.
  virtual absl::StatusOr<std::string> Get(const std::string& key) = 0;
  // `length` bytes at `offset`. OutOfRange if the object is shorter (a
  // truncated object); NotFound if absent.
  virtual absl::StatusOr<std::string> GetRange(const std::string& key, uint64_t offset,
                                               uint64_t length) = 0;
  // A hint that `length` bytes at `offset` will be read soon; implementations
  // may start fetching them. Never fails (a bad hint is ignored).
  virtual void Prefetch(const std::string& key, uint64_t offset, uint64_t length) {
    (void)key, (void)offset, (void)length;
  }
  // Size of the object. NotFound if absent.
  virtual absl::StatusOr<uint64_t> Size(const std::string& key) = 0;
  // Removes the object; OK if it was already absent.
  virtual absl::Status Delete(const std::string& key) = 0;
  // Calls `fn` for each key starting with `prefix`, in lexicographic order.
  virtual absl::Status List(const std::string& prefix,
                            const std::function<void(const std::string& key, uint64_t size)>& fn) = 0;
  // A description for logs and errors, e.g. "local:/var/lib/tusk/objects".
  virtual std::string Describe() const = 0;
};

// Local-directory store. Objects are files under `root`; Put writes a temporary
// file, fsyncs it, renames it into place and fsyncs the directory.
absl::StatusOr<std::unique_ptr<ObjectStore>> OpenLocalObjectStore(const std::string& root);

}  // namespace tusk::pfs
