#pragma once

// BlobStore: content-addressed blobs (chunks, tree nodes, chunk lists) kept in
// pack objects in an ObjectStore and indexed in RocksDB (Kv).
//
// Writing: a BlobWriter (one per upload stream) gathers new blobs into a pack
// buffer. A full pack (~16 MiB) is written to the object store (atomically,
// durably) before its index records are written, so the index never points at
// a missing object. At Finish, a small tail is not worth its own object: its
// blobs go inline into the index records of the caller's KvBatch, to be moved
// into a pack later by PackPending() (run in the background by the Pfs). This
// keeps a micro-commit at one RocksDB sync and a bulk upload at one PUT per pack.
//
// Reading: Read() looks the blob up, reads its bytes (from the pack, or inline),
// decompresses, and verifies the SHA-256; a mismatch is DataLoss naming the blob
// and the object it came from.
//
// Thread safety: BlobStore is thread-safe. A BlobWriter is used by one thread.

#include <atomic>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/hash.h"
#include "common/thread_pool.h"
#include "pfs/kv.h"
#include "pfs/object_store.h"
#include "proto/storage.pb.h"

namespace tusk::pfs {

struct BlobStoreOptions {
  size_t pack_size = 16 << 20;       // write a pack when the buffer reaches this
  size_t inline_tail_max = 1 << 20;  // a writer's tail up to this goes inline
  // Pack writes in flight per writer (and threads writing them): more hide
  // the latency of a remote object store.
  int packs_in_flight = 2;
};

// A blob ready to store: hashed and (where it helps) compressed. Preparing is
// the expensive part and may run on any thread.
struct PreparedBlob {
  Hash hash;
  uint32_t raw_size = 0;
  uint32_t codec = 0;       // 0 raw, 1 snappy
  std::string stored;       // the bytes to store
  bool was_inline = false;  // read from the index's inline records
};
PreparedBlob PrepareBlob(absl::string_view raw);
// Same, taking ownership of `raw` (no copy when it is stored uncompressed).
PreparedBlob PrepareOwnedBlob(std::string raw);
// Same, when the caller already knows the hash.
PreparedBlob PrepareBlobWithHash(const Hash& hash, absl::string_view raw);
PreparedBlob PrepareOwnedBlobWithHash(const Hash& hash, std::string raw);

// Object-store key of a pack, and the pack id in such a key (empty if it is
// not one).
std::string PackKey(absl::string_view pack_id);
std::string PackIdFromKey(absl::string_view key);
inline constexpr char kPackPrefix[] = "packs/";

// When the pack was made (from its id).
absl::Time PackTime(absl::string_view pack_id);

// The index record (key, value) that locates a footer item of pack `pack_id`.
std::pair<std::string, std::string> BlobIndexRecord(absl::string_view pack_id,
                                                    const storage::v1::PackFooter::Item& item);

// The footer of the pack `key` of `size` bytes (as listed). DataLoss names the
// pack if it is truncated or damaged (a footer that does not match its
// checksum, or lists a blob outside the pack). With `whole`, reads the whole
// pack in the same request and leaves it there. With `damaged`, a footer that
// parses but is damaged is returned anyway and `damaged` says what is wrong
// (it stays empty for a sound footer).
absl::StatusOr<storage::v1::PackFooter> ReadPackFooter(ObjectStore* store, const std::string& key,
                                                       uint64_t size, std::string* whole = nullptr,
                                                       std::string* damaged = nullptr);

// The footer of a pack, recovered as far as the pack's blobs allow: for a
// sound footer, the footer; for a damaged one (`problem` says how), the items
// whose bytes still decode, each listed under the hash of its content (a
// damaged hash is thus corrected, a damaged offset yields a blob nothing
// references), and no logs. DataLoss if nothing can be read.
absl::StatusOr<storage::v1::PackFooter> RecoverPackFooter(ObjectStore* store,
                                                          const std::string& key, uint64_t size,
                                                          std::string* problem);

class BlobWriter;

class BlobStore {
 public:
  static absl::StatusOr<std::unique_ptr<BlobStore>> Open(Kv* kv, ObjectStore* store,
                                                         BlobStoreOptions options = {});
  BlobStore(const BlobStore&) = delete;
  BlobStore& operator=(const BlobStore&) = delete;

  // Whether the index knows the blob.
  absl::StatusOr<bool> Contains(const Hash& hash);
  // Where the blob lives. NotFound if the index does not know it.
  absl::StatusOr<storage::v1::BlobLocation> Locate(const Hash& hash);
  // The blob's raw bytes, verified against `hash`.
  absl::StatusOr<std::string> Read(const Hash& hash);

  // A hint that the blob will be read soon (see ObjectStore::Prefetch).
  void Prefetch(const Hash& hash);

  std::unique_ptr<BlobWriter> NewWriter();

  // Moves blobs kept inline in the index into pack objects. Returns how many
  // blobs it moved. Safe to call concurrently with anything; serialized inside.
  absl::StatusOr<size_t> PackPending();
  // Bytes of blobs currently inline in the index (approximate).
  uint64_t pending_bytes() const { return pending_bytes_.load(); }

  ObjectStore* object_store() const { return store_; }
  Kv* kv() const { return kv_; }
  const BlobStoreOptions& options() const { return options_; }

  // Writes a pack holding `blobs` (and `log` in its footer, if given) and
  // returns the index records for them (the caller writes them). Used by
  // BlobWriter and the packer.
  absl::Status WritePack(const std::vector<PreparedBlob>& blobs, KvBatch* index_records,
                         const std::vector<storage::v1::MetaLog>* logs = nullptr,
                         std::string* pack_id = nullptr);
  // Appends to `out` every blob of `hashes` that is still only inline in
  // the index (and not in `out` already): what a log pack must carry so that
  // the object store alone holds what a commit references.
  // A blob the index does not know is NotFound, or with `skip_missing` (for
  // logs of changes already made) a warning.
  absl::Status CollectInline(const std::vector<Hash>& hashes, std::vector<PreparedBlob>* out,
                             bool skip_missing = false);
  // Writes a log pack: `logs` in its footer, with `blobs`. Adds to `batch`
  // the records that point the blobs at the pack (and drop their inline
  // copies). Durable when it returns.
  absl::Status WriteLogPack(const std::vector<storage::v1::MetaLog>& logs,
                            const std::vector<PreparedBlob>& blobs, KvBatch* batch,
                            std::string* pack_id = nullptr);
  // Returns `index_write`; if it failed, first deletes the pack `pack_id`
  // (if any) whose index records it carried: nothing can point at it.
  absl::Status DropPackIfUnindexed(absl::Status index_write, const std::string& pack_id);
  // Adds the index record of an inline blob (and its pending marker) to `batch`.
  void AddInline(const PreparedBlob& blob, KvBatch* batch);
  // Threads for pack writes, so that an upload goes on while a pack is synced.
  ThreadPool* io() { return &io_; }

  // Garbage collection. BeginGcMark starts remembering every blob a writer
  // finds already stored (a dedup hit on a blob the mark may not have seen);
  // AddInFlight adds every blob the live writers have touched (a writer may
  // not have written the index records of its packs yet); SweepIndex then,
  // atomically with respect to dedup lookups, adds to `live` every blob
  // reused since BeginGcMark and deletes the index record of every blob not
  // in `live` for which `dead` says so. `dead` is called for every indexed
  // blob, after `live` is complete.
  // Packs of a failed upload: nothing but that upload wrote into them, so
  // GC need not wait out the grace period for them (it still keeps any blob
  // in them that something has come to reference since).
  void AbandonPacks(const std::vector<std::string>& pack_ids);
  bool IsAbandoned(const std::string& pack_id);
  void ForgetAbandoned(const std::string& pack_id);

  void BeginGcMark();
  void AddInFlight(absl::flat_hash_set<Hash>* live);
  absl::Status SweepIndex(
      absl::flat_hash_set<Hash>* live,
      const std::function<bool(const Hash&, const storage::v1::BlobLocation&, bool live)>& dead);

 private:
  BlobStore(Kv* kv, ObjectStore* store, BlobStoreOptions options)
      : kv_(kv), store_(store), options_(options), io_(std::max(2, options.packs_in_flight)) {}

  Kv* const kv_;
  ObjectStore* const store_;
  const BlobStoreOptions options_;
  std::atomic<uint64_t> pending_bytes_{0};
  absl::Mutex pack_mu_;  // serializes PackPending
  friend class BlobWriter;
  void NoteReuse(const Hash& hash);
  // Held shared by a writer's dedup lookup, exclusively by GC's sweep.
  absl::Mutex gc_mu_;
  absl::Mutex reuse_mu_;
  bool tracking_reuse_ ABSL_GUARDED_BY(reuse_mu_) = false;
  absl::flat_hash_set<Hash> reused_ ABSL_GUARDED_BY(reuse_mu_);
  absl::Mutex abandoned_mu_;
  absl::flat_hash_set<std::string> abandoned_ ABSL_GUARDED_BY(abandoned_mu_);
  absl::Mutex writers_mu_;
  absl::flat_hash_set<BlobWriter*> writers_ ABSL_GUARDED_BY(writers_mu_);
  ThreadPool io_;
};

class BlobWriter {
 public:
  explicit BlobWriter(BlobStore* store);
  // Waits for pack writes still in flight.
  ~BlobWriter();

  // Adds a blob unless it is already stored (or already added to this writer).
  // Returns true if it was new. May write a full pack (and its index records).
  absl::StatusOr<bool> Add(PreparedBlob blob);
  // Puts the remaining buffered blobs in a pack or inline into `batch`. The
  // caller must write `batch` for those blobs to be found. With `tail`, a
  // small remainder goes there instead of inline (the caller stores it).
  absl::Status Finish(KvBatch* batch, std::vector<PreparedBlob>* tail = nullptr);

  uint64_t new_bytes() const { return new_bytes_; }
  uint64_t new_blobs() const { return new_blobs_; }
  // Every blob passed to Add, new or already stored (once each).
  std::vector<Hash> Touched() const;
  // The writes failed: the packs written so far are garbage (see
  // BlobStore::AbandonPacks). Waits for pack writes in flight.
  void Abandon();

 private:
  // Writes the buffer as a pack in the background; keeps at most
  // kMaxPacksInFlight pack writes outstanding.
  absl::Status FlushPack();
  absl::Status WaitPacks(size_t keep);

  BlobStore* const store_;
  std::vector<PreparedBlob> buffer_;
  std::deque<std::future<absl::Status>> packs_in_flight_;
  size_t buffer_bytes_ = 0;
  friend class BlobStore;
  mutable absl::Mutex mu_;  // guards added_ (read by GC from another thread)
  absl::flat_hash_set<Hash> added_ ABSL_GUARDED_BY(mu_);  // every blob passed to Add
  std::vector<std::string> packs_ ABSL_GUARDED_BY(mu_);   // ids of the packs written
  uint64_t new_bytes_ = 0;
  uint64_t new_blobs_ = 0;
};

}  // namespace tusk::pfs
