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
#include "absl/time/time.h"
#include "proto/pfs.pb.h"

namespace tusk::pfs {

// Request counters of an object store since it opened, as the Stats RPC
// returns them (object_store is left for the caller to fill in).
using ObjectStoreStats = v1::StatsResponse;

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // Stores `data` under `key`, durably and atomically.
  virtual absl::Status Put(const std::string& key, absl::string_view data) = 0;
  // Stores the concatenation of `parts` (saves building one big buffer).
  virtual absl::Status PutParts(const std::string& key,
                                const std::vector<absl::string_view>& parts);
  // The whole object. NotFound if absent. (Default: Size, then GetRange.)
  virtual absl::StatusOr<std::string> Get(const std::string& key);
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
  virtual absl::Status List(
      const std::string& prefix,
      const std::function<void(const std::string& key, uint64_t size)>& fn) = 0;
  // A description for logs and errors, e.g. "local:/var/lib/tusk/objects".
  virtual std::string Describe() const = 0;
  // Counters of the requests this store made to its backend (zero where a
  // store does not count).
  virtual ObjectStoreStats Stats() const { return {}; }
};

// OK if `key` is a valid object key (see the contract above).
absl::Status ValidateObjectKey(const std::string& key);

// Local-directory store. Objects are files under `root`; Put writes a temporary
// file, fsyncs it, renames it into place and fsyncs the directory.
absl::StatusOr<std::unique_ptr<ObjectStore>> OpenLocalObjectStore(const std::string& root);

// S3 (or an S3-compatible server) under s3://bucket/prefix.
struct S3StoreOptions {
  std::string bucket;
  std::string prefix;    // object keys are stored as prefix + key
  std::string endpoint;  // e.g. http://127.0.0.1:4568; empty: AWS
  std::string region = "us-east-1";
  bool virtual_host = false;  // with an endpoint: BUCKET.host instead of host/BUCKET
  // Empty: from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the shared
  // credentials file.
  std::string access_key, secret_key, session_token;
  // Requests in flight at once for one multipart upload or for prefetching.
  int parallelism = 8;
  // Objects larger than this go up in parts of this size (at least 5 MiB).
  size_t part_size = 8 << 20;
  int max_retries = 5;
  absl::Duration base_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration stall_timeout = absl::Seconds(30);
};
// Parses "s3://BUCKET/PREFIX" into `options` (bucket and prefix; a non-empty
// prefix gets a trailing '/').
absl::Status ParseS3StoreUrl(const std::string& url, S3StoreOptions* options);
// Checks that the bucket answers before returning.
absl::StatusOr<std::unique_ptr<ObjectStore>> OpenS3ObjectStore(const S3StoreOptions& options);

// A bounded local disk cache in front of `base`: ranged reads (blobs in
// packs, which never change) are kept in files under `dir` and evicted least
// recently used first once they add up to more than `max_bytes`. A repeated
// read of the same range does not reach `base`. Prefetch fills the cache in
// the background. Everything else passes through. The cache survives restarts
// (its files are found again at open); a damaged entry is a miss.
struct CacheOptions {
  std::string dir;
  uint64_t max_bytes = 1ull << 30;
  int prefetch_threads = 4;
};
absl::StatusOr<std::unique_ptr<ObjectStore>> OpenCachedObjectStore(
    std::unique_ptr<ObjectStore> base, const CacheOptions& options);

// `base`, with every operation counted and timed in the process's metrics
// (tusk_object_store_*; common/metrics.h).
std::unique_ptr<ObjectStore> InstrumentObjectStore(std::unique_ptr<ObjectStore> base);

}  // namespace tusk::pfs
