#pragma once

// Pfs: the versioned file system. Repos hold branches; branches point at
// commits; a commit is an immutable Merkle tree of files plus a record
// (CommitInfo). Writes go into an open commit (one per branch), staged in the
// index; FinishCommit applies them to the parent's tree and moves the branch
// head in one atomic, synced write.
//
// Storage: a RocksDB index (Kv) under <data_dir>/index and an ObjectStore (by
// default a local directory, <data_dir>/objects) holding packs of blobs.
//
// Lifecycle: Open() recovers from whatever a crash left (staged writes of open
// commits are kept; blobs never referenced are harmless). The destructor packs
// pending blobs and closes the index.
//
// Thread safety: every method is thread-safe. Several Uploads may write into
// the same open commit concurrently.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/thread_pool.h"
#include "pfs/blob_store.h"
#include "pfs/chunker.h"
#include "pfs/key_space.h"
#include "pfs/kv.h"
#include "pfs/object_store.h"
#include "pfs/tree.h"
#include "proto/pfs.pb.h"

namespace tusk::pfs {

using v1::BranchInfo;
using v1::CommitInfo;
using v1::FileDiff;
using v1::FileInfo;
using v1::RepoInfo;

// When a change's log pack goes to the object store (see pfs/README.md).
enum class LogMode {
  // Before the index moves: the object store alone can always rebuild the
  // index. One object write per change (the right choice for S3).
  kStrict,
  // In the same synced index write as the change, then shipped to the object
  // store in batches within `ship_interval` (and at shutdown, and before a
  // checkpoint). For a local store on the index's own disk, where the index is
  // as durable as the objects: it saves an object (a file and two fsyncs) per
  // micro-commit.
  kShipped,
};

struct PfsOptions {
  std::string data_dir;
  LogMode log_mode = LogMode::kStrict;
  absl::Duration ship_interval = absl::Milliseconds(100);
  // If set, used instead of a local store under data_dir/objects (not owned).
  ObjectStore* object_store = nullptr;
  size_t node_cache_bytes = 128 << 20;
  BlobStoreOptions blobs;
  ChunkerOptions chunker;
  int worker_threads = 2;  // hashing and compression of large chunks, read-ahead
  // Inline blobs are packed in the background once they add up to this much.
  size_t pack_pending_bytes = 4 << 20;
  // Recreate the index (data_dir/index) from the object store before opening;
  // an existing index is kept aside as data_dir/index.old-<time>.
  bool rebuild_index = false;
  // Reports the rebuild's progress.
  std::function<void(const std::string&)> rebuild_progress;
};

class Pfs;

// How BeginUpload makes an automatic commit (one it starts because the branch
// has no open commit). Everything but `message` must stay at its default when
// the upload joins an open commit.
struct AutoCommitOptions {
  std::string message;
  v1::Origin origin = v1::AUTO;  // AUTO or INGEST
  // Merged into the commit's metadata when it finishes.
  std::map<std::string, std::string> metadata;
  // Checked against the parent commit's metadata when it finishes (absent
  // counts as ""); a mismatch drops the commit with Aborted.
  std::map<std::string, std::string> expect_metadata;
  // How long to wait for another automatic commit on the branch to finish.
  absl::Duration wait = absl::Seconds(30);
  // Choose the commit at Close instead of at BeginUpload (`ref` must be a
  // branch): content streams into the store with no commit open, then Close
  // joins the branch's open commit or makes an automatic one and finishes
  // it. Many such uploads run side by side on one branch, each holding the
  // branch only for the moment it commits (the S3 gateway's PUTs).
  bool bind_at_close = false;
};

// One stream of writes into one commit (a PutFile call). Not thread-safe; use
// one per stream. Nothing it writes is visible until Close(); an Upload
// destroyed without Close() leaves no trace (an automatic commit it started is
// deleted).
class Upload {
 public:
  virtual ~Upload() = default;

  // Begins file `path` (replacing it, or appending to it).
  virtual absl::Status BeginFile(absl::string_view path, bool append) = 0;
  // Content of the current file.
  virtual absl::Status Write(absl::string_view data) = 0;
  // Ends the current file. `expected_size` is the number of bytes the client
  // sent; a mismatch means a truncated upload (InvalidArgument), and the file is
  // not kept.
  virtual absl::Status EndFile(uint64_t expected_size) = 0;
  // Deletes a file or directory (NotFound if neither exists). An upload
  // bound at close checks at Close instead, against the commit it joins
  // (its parent's tree and what other uploads staged), and drops the delete
  // of a path that exists in neither.
  virtual absl::Status Delete(absl::string_view path) = 0;
  // Stages a file made of existing chunks (by reference: no data moves).
  virtual absl::Status PutChunks(absl::string_view path, const std::vector<ChunkRef>& chunks) = 0;
  // A condition checked by Close once the commit is chosen: nothing exists
  // at `path` (in the parent commit, or staged in the commit). If something
  // does, Close fails with AlreadyExists and nothing is written.
  virtual absl::Status RequireAbsent(absl::string_view path) = 0;
  // Makes the staged writes part of the commit; finishes an automatic commit.
  virtual absl::StatusOr<CommitInfo> Close() = 0;
  // For an upload from BeginTreeUpload: builds a tree of what was written and
  // puts the records that make its blobs findable into `batch` (the caller
  // writes it). Returns the tree's summary (zero hash if nothing was written).
  virtual absl::StatusOr<DirInfo> CloseToTree(KvBatch* batch) = 0;

  virtual const std::string& commit_id() const = 0;
  // The content hash (FileInfo.hash) of the file last ended by EndFile or
  // put by PutChunks; "" before any.
  virtual const std::string& last_file_hash() const = 0;
  // That file's chunks.
  virtual const std::vector<ChunkRef>& last_file_chunks() const = 0;
  // Whether this upload started (and finishes at Close) its own commit.
  virtual bool automatic() const = 0;
  virtual uint64_t files() const = 0;
  virtual uint64_t bytes() const = 0;
  // Bytes of content that was not stored before (after deduplication).
  virtual uint64_t new_bytes() const = 0;
};

// Reads one file of a finished commit, in order, from a byte offset; the
// chunks ahead are fetched and verified on Pfs's workers while the caller
// sends. Not thread-safe; the Pfs must outlive it.
class FileReader {
 public:
  virtual ~FileReader() = default;
  virtual const FileInfo& info() const = 0;
  // The commit the file is read from.
  virtual const CommitInfo& commit() const = 0;
  // The file's chunks (what CopyObject-like writes reference).
  virtual const std::vector<ChunkRef>& chunks() const = 0;
  // Reads bytes [offset, offset + length) only (clipped to the file). Call
  // before the first Next.
  virtual void Limit(uint64_t offset, uint64_t length) = 0;
  // The next piece of content, in order; empty at the end.
  virtual absl::StatusOr<std::string> Next() = 0;
};

// A change staged in an open commit by an upload that closed.
struct StagedChange {
  std::string path;      // absolute
  bool deleted = false;  // a delete: of a file, or of a directory and all beneath
  FileInfo file;         // a put (deleted false): the file staged
};

// Extra properties of a commit made by StartCommit.
struct CommitOptions {
  // The commits this one is computed from (a pipeline's input commits).
  std::vector<v1::CommitRef> provenance;
  // Empty: a commit set of its own (its id).
  std::string commit_set;
  // Empty: a new random id. Otherwise 32 hex characters, not in use.
  std::string id;
  // How long to wait for an automatic commit (or one that an upload owns,
  // see kUploadOwnerMetadataKey) open on the branch to end.
  absl::Duration wait = absl::Seconds(30);
};

// How FinishCommit finishes a commit.
// Changes to other components' durable records (see Pfs::PutRecord), made
// in one logged, atomic write. Keys are whole index keys in a component space.
struct RecordChanges {
  std::map<std::string, std::string> put;
  std::vector<std::string> deleted;
  // Every durable record whose key starts with one of these.
  std::vector<std::string> deleted_prefixes;
  bool empty() const { return put.empty() && deleted.empty() && deleted_prefixes.empty(); }
};

struct FinishOptions {
  std::string message;  // replaces the start message when non-empty
  std::map<std::string, std::string> metadata;
  // Preconditions on the parent's metadata (see AutoCommitOptions); a
  // mismatch is Aborted and leaves the commit open.
  std::map<std::string, std::string> expect_metadata;
  std::string error;  // marks the commit failed (CommitInfo.error)
  // Written in the same atomic write that finishes the commit (not owned).
  KvBatch* extra = nullptr;
  // Durable records changed in that write, logged with the commit (not owned).
  const RecordChanges* records = nullptr;
};

// What Pfs::Gc keeps and what it did.
struct GcOptions {
  // Packs younger than this are never collected: an upload may still be
  // writing their index records.
  absl::Duration grace = absl::Hours(1);
  // Packs whose live bytes are below this fraction of their size are
  // rewritten with only their live blobs (0: never). Small packs (a log pack
  // per commit) are merged into packs of the usual size either way.
  double rewrite_below = 0.5;
};

// Marks what another component keeps alive (a pipeline's datum outputs),
// for Pfs::Gc.
class GcMarker {
 public:
  virtual ~GcMarker() = default;
  // A directory tree and everything beneath it.
  virtual absl::Status Tree(const Hash& root) = 0;
  // A file's chunks.
  virtual void Chunks(const ChunkList& chunks) = 0;
};

// Observes finished commits. BeforeFinish runs inside the finishing critical
// section (Pfs's metadata lock is held: neither may call back into Pfs, but
// BeforeFinish may read its KeySpace) and may add records to the commit's atomic
// write; AfterFinish runs once the write is durable, still under the lock.
class CommitHook {
 public:
  virtual ~CommitHook() = default;
  virtual absl::Status BeforeFinish(const CommitInfo& commit, KvBatch* batch) = 0;
  virtual void AfterFinish(const CommitInfo& commit) = 0;
};

class Pfs {
 public:
  // Opens (creating if needed) the file system in options.data_dir.
  static absl::StatusOr<std::unique_ptr<Pfs>> Open(const PfsOptions& options);
  // Packs pending blobs, ships pending logs and closes the index.
  virtual ~Pfs() = default;

  // Repos.
  virtual absl::StatusOr<RepoInfo> CreateRepo(const std::string& name,
                                              const std::string& description) = 0;
  virtual absl::StatusOr<RepoInfo> InspectRepo(const std::string& name) = 0;
  virtual absl::StatusOr<std::vector<RepoInfo>> ListRepo() = 0;
  virtual absl::Status DeleteRepo(const std::string& name, bool force) = 0;
  // Changes a repo's description and/or retention (nullopt: unchanged).
  virtual absl::StatusOr<RepoInfo> UpdateRepo(const std::string& name,
                                              const std::optional<std::string>& description,
                                              const std::optional<v1::Retention>& retention) = 0;

  // Branches. CreateBranch with a head ref creates the branch or moves it.
  virtual absl::StatusOr<BranchInfo> CreateBranch(const std::string& repo,
                                                  const std::string& branch,
                                                  const std::string& head_ref) = 0;
  // The branch with its subvenance (the branches whose provenance names it).
  virtual absl::StatusOr<BranchInfo> InspectBranch(const std::string& repo,
                                                   const std::string& branch) = 0;
  // Records which branches `repo@branch` is computed from (a pipeline's
  // inputs), creating the branch (without a head) if it does not exist.
  virtual absl::StatusOr<BranchInfo> SetBranchProvenance(
      const std::string& repo, const std::string& branch,
      const std::vector<v1::BranchRef>& provenance) = 0;
  virtual absl::StatusOr<std::vector<BranchInfo>> ListBranch(const std::string& repo) = 0;
  virtual absl::Status DeleteBranch(const std::string& repo, const std::string& branch,
                                    bool force) = 0;

  // Commits. StartCommit opens a commit on `branch`; FailedPrecondition if
  // one is open there already, except that an automatic commit or one that
  // an upload owns is waited for (up to `options.wait`, then
  // DeadlineExceeded).
  virtual absl::StatusOr<CommitInfo> StartCommit(const std::string& repo, const std::string& branch,
                                                 const std::string& message, v1::Origin origin,
                                                 const std::map<std::string, std::string>& metadata,
                                                 const CommitOptions& options = {}) = 0;
  // Finishes the open commit `ref` (its id, or a branch with one) as
  // `options` say: applies its staged writes to the parent's tree and moves
  // the branch head, in one atomic, synced write. Aborted (the commit stays
  // open) if options.expect_metadata does not hold.
  virtual absl::StatusOr<CommitInfo> FinishCommit(const std::string& repo, const std::string& ref,
                                                  const FinishOptions& options) = 0;
  // The commits of a commit set, in no particular order.
  virtual absl::Status ListCommitSet(const std::string& commit_set,
                                     const std::function<absl::Status(const CommitInfo&)>& fn) = 0;
  // Commits whose provenance names repo@id.
  virtual absl::StatusOr<std::vector<v1::CommitRef>> Subvenance(const std::string& repo,
                                                                const std::string& id) = 0;
  // Installs the hook called for every finished commit (not owned; set once,
  // before serving).
  virtual void SetCommitHook(CommitHook* hook) = 0;
  // Resolves a ref (branch: its head; id; with ^ and ~N) to a commit.
  virtual absl::StatusOr<CommitInfo> InspectCommit(const std::string& repo,
                                                   const std::string& ref) = 0;
  // Commits newest first: the ancestry of `ref`, or (empty ref) all of the repo's.
  virtual absl::Status ListCommit(const std::string& repo, const std::string& ref, uint64_t limit,
                                  const std::function<absl::Status(const CommitInfo&)>& fn) = 0;

  // Files.
  // Opens an upload into `ref`: an open commit's id, or a branch (its open
  // commit, or else a new automatic commit finished at Close). While another
  // upload's automatic commit, or a commit that a resumable upload owns
  // (kUploadOwnerMetadataKey), is open on the branch, waits for it to end
  // (up to `auto_commit.wait`, then DeadlineExceeded) rather than joining it.
  virtual absl::StatusOr<std::unique_ptr<Upload>> BeginUpload(
      const std::string& repo, const std::string& ref,
      const AutoCommitOptions& auto_commit = {}) = 0;
  // An upload that belongs to no commit: CloseToTree makes a tree of it (a
  // pipeline datum's output).
  virtual std::unique_ptr<Upload> BeginTreeUpload() = 0;
  virtual absl::StatusOr<FileInfo> InspectFile(const std::string& repo, const std::string& ref,
                                               const std::string& path) = 0;
  virtual absl::Status ListFile(const std::string& repo, const std::string& ref,
                                const std::string& path,
                                const std::function<absl::Status(const FileInfo&)>& fn) = 0;
  // Files staged in an open commit (`ref`: its id, or a branch with one) by
  // uploads that closed, in path order. FailedPrecondition if the commit is
  // finished.
  virtual absl::Status ListStagedFile(const std::string& repo, const std::string& ref,
                                      const std::function<absl::Status(const FileInfo&)>& fn) = 0;
  // The changes staged in open commit `id` at or beneath directory `path`
  // ("/": all), in path order; a put that replaced a delete comes as the put.
  virtual absl::Status ListStagedChanges(
      const std::string& repo, const std::string& id, const std::string& path,
      const std::function<absl::Status(const StagedChange&)>& fn) = 0;
  // What open commit `id` has staged for `path`: a put or delete there, or
  // the delete of a directory above it; nullopt if nothing.
  virtual absl::StatusOr<std::optional<StagedChange>> StagedChangeAt(const std::string& repo,
                                                                     const std::string& id,
                                                                     const std::string& path) = 0;
  // Opens the file staged at `path` in open commit `id` (NotFound if none).
  virtual absl::StatusOr<std::unique_ptr<FileReader>> OpenStagedFile(const std::string& repo,
                                                                     const std::string& id,
                                                                     const std::string& path) = 0;
  virtual absl::Status GlobFile(const std::string& repo, const std::string& ref,
                                const std::string& pattern,
                                const std::function<absl::Status(const FileInfo&)>& fn) = 0;
  // Streams the file at `path`, or every file beneath a directory: on_file for
  // each file, then on_data for its content in order.
  virtual absl::Status GetFile(const std::string& repo, const std::string& ref,
                               const std::string& path,
                               const std::function<absl::Status(const FileInfo&)>& on_file,
                               const std::function<absl::Status(std::string data)>& on_data) = 0;
  // Opens the file at `path` for reading (NotFound if there is none,
  // FailedPrecondition if it is a directory).
  virtual absl::StatusOr<std::unique_ptr<FileReader>> OpenFile(const std::string& repo,
                                                               const std::string& ref,
                                                               const std::string& path) = 0;
  virtual absl::StatusOr<CommitInfo> DeleteFile(const std::string& repo, const std::string& ref,
                                                const std::string& path) = 0;
  // Files that differ between two commits; `old_ref` empty: new's parent.
  virtual absl::Status DiffCommit(const std::string& repo, const std::string& new_ref,
                                  const std::string& old_ref,
                                  const std::function<absl::Status(const FileDiff&)>& fn) = 0;
  // A new commit on `branch` whose tree equals `to`'s.
  virtual absl::StatusOr<CommitInfo> Revert(const std::string& repo, const std::string& branch,
                                            const std::string& to, const std::string& message) = 0;

  // Deletes a finished commit that nothing depends on: FailedPrecondition if
  // it has a child commit or commits computed from it. A branch whose head it
  // is moves back to its parent (returned). Its data becomes garbage for Gc.
  virtual absl::StatusOr<std::vector<BranchInfo>> DeleteCommit(const std::string& repo,
                                                               const std::string& ref) = 0;
  // Applies every repo's retention (see v1::Retention) at time `now`;
  // returns how many commits were squashed.
  virtual absl::StatusOr<uint64_t> ApplyRetention(absl::Time now) = 0;
  // Writes a checkpoint of every repo, branch and commit to the object store
  // (so that older log packs are needed for their blobs only), then deletes
  // unreferenced blobs from the index and packs from the object store, and
  // rewrites packs that are mostly garbage. Live: every commit's tree, open
  // commits' staged files, what the GcMarker sources mark, and every blob an
  // upload in progress has written or reused. One GC at a time.
  virtual absl::StatusOr<v1::GcResponse> Gc(const GcOptions& options) = 0;
  // Adds a source of live data for Gc (set before serving).
  virtual void AddGcSource(std::function<absl::Status(GcMarker*)> source) = 0;

  // Another component's index record that must survive an index rebuild (a
  // pipeline spec): logged to the object store like a commit, then written.
  // `key` is in a component space (see Space); KeySpace::PutRecord calls it.
  virtual absl::Status PutRecord(const std::string& key, const std::string& value) = 0;
  virtual absl::Status DeleteRecord(const std::string& key) = 0;
  // Several changes at once, in one log entry, with `extra` (not owned; may
  // be null: other index writes of the component) in the same atomic write.
  virtual absl::Status WriteRecords(const RecordChanges& changes, KvBatch* extra) = 0;

  // Verifies every reachable commit, tree node, chunk list and chunk, and
  // every pack's footer (against its checksum). Calls on_problem for each
  // problem found; returns the summary (problem empty).
  virtual absl::StatusOr<v1::FsckResponse> Fsck(
      const std::function<void(const std::string&)>& on_problem) = 0;

  // Deletes an open commit and its staged writes (an automatic commit whose
  // stream went away or idle). OK if it is finished or gone already.
  virtual absl::Status DropOpenCommit(const std::string& repo, const std::string& id) = 0;

  // Moves inline blobs into packs now (normally done in the background).
  virtual absl::Status PackPending() = 0;
  // Ships pending logs (log mode kShipped) to the object store now. Returns
  // how many it shipped.
  virtual absl::StatusOr<size_t> ShipLogs() = 0;

  // Another component's records in the index: the key space `prefix`, one
  // of keys.h's component spaces (kJobSpace, kPipelineSpace, kSourceSpace).
  virtual KeySpace Space(absl::string_view prefix) = 0;

  virtual NodeStore* nodes() = 0;
  virtual BlobStore* blobs() = 0;
  virtual ThreadPool* workers() = 0;
  virtual const PfsOptions& options() const = 0;
};

}  // namespace tusk::pfs
