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

// Metadata keys under this prefix are carried from a commit to its children.
inline constexpr char kCarriedMetadataPrefix[] = "state/";

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
};

// One stream of writes into one commit (a PutFile call). Not thread-safe; use
// one per stream. Nothing it writes is visible until Close(); an Upload
// destroyed without Close() leaves no trace (an automatic commit it started is
// deleted).
class Upload {
 public:
  ~Upload();
  Upload(const Upload&) = delete;
  Upload& operator=(const Upload&) = delete;

  // Begins file `path` (replacing it, or appending to it).
  absl::Status BeginFile(absl::string_view path, bool append);
  // Content of the current file.
  absl::Status Write(absl::string_view data);
  // Ends the current file. `expected_size` is the number of bytes the client
  // sent; a mismatch means a truncated upload (InvalidArgument), and the file is
  // not kept.
  absl::Status EndFile(uint64_t expected_size);
  // Deletes a file or directory (NotFound if neither exists).
  absl::Status Delete(absl::string_view path);
  // Stages a file made of existing chunks (by reference: no data moves).
  absl::Status PutChunks(absl::string_view path, const std::vector<ChunkRef>& chunks);
  // Makes the staged writes part of the commit; finishes an automatic commit.
  absl::StatusOr<CommitInfo> Close();
  // For an upload from BeginTreeUpload: builds a tree of what was written and
  // puts the records that make its blobs findable into `batch` (the caller
  // writes it). Returns the tree's summary (zero hash if nothing was written).
  absl::StatusOr<DirInfo> CloseToTree(KvBatch* batch);

  const std::string& commit_id() const { return commit_id_; }
  // Whether this upload started (and finishes at Close) its own commit.
  bool automatic() const { return auto_commit_; }
  uint64_t files() const { return files_; }
  uint64_t bytes() const { return bytes_; }
  uint64_t new_bytes() const { return writer_->new_bytes(); }

 private:
  friend class Pfs;
  Upload(Pfs* pfs, std::string repo, std::string commit_id, Hash parent_root, bool auto_commit);
  absl::Status SubmitChunk(std::string chunk);
  absl::Status DrainChunks(size_t keep);
  absl::Status CheckPut(const std::string& path);
  // Stages a PUT of the file at `path` made of `chunks`.
  absl::Status StageFile(const std::string& path, const std::vector<ChunkRef>& chunks);
  absl::StatusOr<std::optional<Entry>> CurrentEntry(const std::string& path);
  void Abort();

  Pfs* const pfs_;
  const std::string repo_;
  const std::string commit_id_;
  const Hash parent_root_;
  const bool auto_commit_;
  // For an automatic commit: merged into its metadata and checked at finish.
  std::map<std::string, std::string> auto_metadata_;
  std::map<std::string, std::string> auto_expect_;
  bool closed_ = false;
  std::unique_ptr<BlobWriter> writer_;
  Chunker chunker_;

  // The current file.
  bool in_file_ = false;
  std::string path_;
  std::vector<ChunkRef> chunks_;
  uint64_t file_bytes_ = 0;
  std::string chunk_;  // bytes of the current, unfinished chunk
  std::deque<std::future<PreparedBlob>> in_flight_;

  // Ops staged by this upload, applied in order at Close.
  struct Op {
    std::string path;
    storage::v1::StagedOp op;
  };
  std::vector<Op> ops_;
  std::map<std::string, size_t> op_index_;  // path -> index into ops_ of its latest op
  absl::flat_hash_map<std::string, bool> checked_dirs_;
  uint64_t files_ = 0;
  uint64_t bytes_ = 0;
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
struct FinishOptions {
  std::string message;  // replaces the start message when non-empty
  std::map<std::string, std::string> metadata;
  // Preconditions on the parent's metadata (see AutoCommitOptions); a
  // mismatch is Aborted and leaves the commit open.
  std::map<std::string, std::string> expect_metadata;
  std::string error;  // marks the commit failed (CommitInfo.error)
  // Written in the same atomic write that finishes the commit (not owned).
  KvBatch* extra = nullptr;
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
struct GcStats {
  uint64_t commits_squashed = 0, live_blobs = 0, packs = 0, packs_deleted = 0, packs_rewritten = 0,
           blobs_deleted = 0, bytes_deleted = 0, bytes_live = 0, checkpoint_seq = 0;
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
// BeforeFinish may read kv()) and may add records to the commit's atomic
// write; AfterFinish runs once the write is durable, still under the lock.
class CommitHook {
 public:
  virtual ~CommitHook() = default;
  virtual absl::Status BeforeFinish(const CommitInfo& commit, KvBatch* batch) = 0;
  virtual void AfterFinish(const CommitInfo& commit) = 0;
};

class Pfs {
 public:
  static absl::StatusOr<std::unique_ptr<Pfs>> Open(const PfsOptions& options);
  ~Pfs();
  Pfs(const Pfs&) = delete;
  Pfs& operator=(const Pfs&) = delete;

  // Repos.
  absl::StatusOr<RepoInfo> CreateRepo(const std::string& name, const std::string& description);
  absl::StatusOr<RepoInfo> InspectRepo(const std::string& name);
  absl::StatusOr<std::vector<RepoInfo>> ListRepo();
  absl::Status DeleteRepo(const std::string& name, bool force);
  // Changes a repo's description and/or retention (nullopt: unchanged).
  absl::StatusOr<RepoInfo> UpdateRepo(const std::string& name,
                                      const std::optional<std::string>& description,
                                      const std::optional<v1::Retention>& retention);

  // Branches. CreateBranch with a head ref creates the branch or moves it.
  absl::StatusOr<BranchInfo> CreateBranch(const std::string& repo, const std::string& branch,
                                          const std::string& head_ref);
  // The branch with its subvenance (the branches whose provenance names it).
  absl::StatusOr<BranchInfo> InspectBranch(const std::string& repo, const std::string& branch);
  // Records which branches `repo@branch` is computed from (a pipeline's
  // inputs), creating the branch (without a head) if it does not exist.
  absl::StatusOr<BranchInfo> SetBranchProvenance(const std::string& repo, const std::string& branch,
                                                 const std::vector<v1::BranchRef>& provenance);
  absl::StatusOr<std::vector<BranchInfo>> ListBranch(const std::string& repo);
  absl::Status DeleteBranch(const std::string& repo, const std::string& branch, bool force);

  // Commits. StartCommit opens a commit on `branch`; FailedPrecondition if
  // one is open there already, except that an automatic commit or one that
  // an upload owns is waited for (up to `options.wait`, then
  // DeadlineExceeded).
  absl::StatusOr<CommitInfo> StartCommit(const std::string& repo, const std::string& branch,
                                         const std::string& message, v1::Origin origin,
                                         const std::map<std::string, std::string>& metadata,
                                         const CommitOptions& options = {});
  // `expect_metadata`: preconditions on the parent's metadata (see
  // AutoCommitOptions); a mismatch is Aborted and leaves the commit open.
  absl::StatusOr<CommitInfo> FinishCommit(
      const std::string& repo, const std::string& ref, const std::string& message,
      const std::map<std::string, std::string>& metadata,
      const std::map<std::string, std::string>& expect_metadata = {});
  absl::StatusOr<CommitInfo> FinishCommit(const std::string& repo, const std::string& ref,
                                          const FinishOptions& options);
  // The commits of a commit set, in no particular order.
  absl::Status ListCommitSet(const std::string& commit_set,
                             const std::function<absl::Status(const CommitInfo&)>& fn);
  // Commits whose provenance names repo@id.
  absl::StatusOr<std::vector<v1::CommitRef>> Subvenance(const std::string& repo,
                                                        const std::string& id);
  // Installs the hook called for every finished commit (not owned; set once,
  // before serving).
  void SetCommitHook(CommitHook* hook) { hook_ = hook; }
  // Resolves a ref (branch: its head; id; with ^ and ~N) to a commit.
  absl::StatusOr<CommitInfo> InspectCommit(const std::string& repo, const std::string& ref);
  // Commits newest first: the ancestry of `ref`, or (empty ref) all of the repo's.
  absl::Status ListCommit(const std::string& repo, const std::string& ref, uint64_t limit,
                          const std::function<absl::Status(const CommitInfo&)>& fn);

  // Files.
  // Opens an upload into `ref`: an open commit's id, or a branch (its open
  // commit, or else a new automatic commit finished at Close). While another
  // upload's automatic commit, or a commit that a resumable upload owns
  // (kUploadOwnerMetadataKey), is open on the branch, waits for it to end
  // (up to `auto_commit.wait`, then DeadlineExceeded) rather than joining it.
  absl::StatusOr<std::unique_ptr<Upload>> BeginUpload(const std::string& repo,
                                                      const std::string& ref,
                                                      const AutoCommitOptions& auto_commit = {});
  // An upload that belongs to no commit: CloseToTree makes a tree of it (a
  // pipeline datum's output).
  std::unique_ptr<Upload> BeginTreeUpload();
  absl::StatusOr<FileInfo> InspectFile(const std::string& repo, const std::string& ref,
                                       const std::string& path);
  absl::Status ListFile(const std::string& repo, const std::string& ref, const std::string& path,
                        const std::function<absl::Status(const FileInfo&)>& fn);
  // Files staged in an open commit (`ref`: its id, or a branch with one) by
  // uploads that closed, in path order. FailedPrecondition if the commit is
  // finished.
  absl::Status ListStagedFile(const std::string& repo, const std::string& ref,
                              const std::function<absl::Status(const FileInfo&)>& fn);
  absl::Status GlobFile(const std::string& repo, const std::string& ref, const std::string& pattern,
                        const std::function<absl::Status(const FileInfo&)>& fn);
  // Streams the file at `path`, or every file beneath a directory: on_file for
  // each file, then on_data for its content in order.
  absl::Status GetFile(const std::string& repo, const std::string& ref, const std::string& path,
                       const std::function<absl::Status(const FileInfo&)>& on_file,
                       const std::function<absl::Status(std::string data)>& on_data);
  absl::StatusOr<CommitInfo> DeleteFile(const std::string& repo, const std::string& ref,
                                        const std::string& path);
  // Files that differ between two commits; `old_ref` empty: new's parent.
  absl::Status DiffCommit(const std::string& repo, const std::string& new_ref,
                          const std::string& old_ref,
                          const std::function<absl::Status(const FileDiff&)>& fn);
  // A new commit on `branch` whose tree equals `to`'s.
  absl::StatusOr<CommitInfo> Revert(const std::string& repo, const std::string& branch,
                                    const std::string& to, const std::string& message);

  // Deletes a finished commit that nothing depends on: FailedPrecondition if
  // it has a child commit or commits computed from it. A branch whose head it
  // is moves back to its parent (returned). Its data becomes garbage for Gc.
  absl::StatusOr<std::vector<BranchInfo>> DeleteCommit(const std::string& repo,
                                                       const std::string& ref);
  // Applies every repo's retention (see v1::Retention) at time `now`;
  // returns how many commits were squashed.
  absl::StatusOr<uint64_t> ApplyRetention(absl::Time now);
  // Writes a checkpoint of every repo, branch and commit to the object store
  // (so that older log packs are needed for their blobs only), then deletes
  // unreferenced blobs from the index and packs from the object store, and
  // rewrites packs that are mostly garbage. Live: every commit's tree, open
  // commits' staged files, what the GcMarker sources mark, and every blob an
  // upload in progress has written or reused. One GC at a time.
  absl::StatusOr<GcStats> Gc(const GcOptions& options);
  // Adds a source of live data for Gc (set before serving).
  void AddGcSource(std::function<absl::Status(GcMarker*)> source);

  // Another component's index record that must survive an index rebuild (a
  // pipeline spec): logged to the object store like a commit, then written.
  absl::Status PutRecord(const std::string& key, const std::string& value);
  absl::Status DeleteRecord(const std::string& key);

  // Verifies every reachable commit, tree node, chunk list and chunk, and
  // every pack's footer (against its checksum). Calls on_problem for each
  // problem found.
  struct FsckStats {
    uint64_t commits = 0, nodes = 0, chunks = 0, bytes = 0, problems = 0, packs = 0;
  };
  absl::StatusOr<FsckStats> Fsck(const std::function<void(const std::string&)>& on_problem);

  // Deletes an open commit and its staged writes (an automatic commit whose
  // stream went away or idle). OK if it is finished or gone already.
  absl::Status DropOpenCommit(const std::string& repo, const std::string& id);

  // Moves inline blobs into packs now (normally done in the background).
  absl::Status PackPending();
  // Ships pending logs (log mode kShipped) to the object store now. Returns
  // how many it shipped.
  absl::StatusOr<size_t> ShipLogs();

  NodeStore* nodes() { return nodes_.get(); }
  BlobStore* blobs() { return blobs_.get(); }
  Kv* kv() { return kv_.get(); }
  ThreadPool* workers() { return workers_.get(); }
  const PfsOptions& options() const { return options_; }

 private:
  friend class Upload;
  explicit Pfs(const PfsOptions& options) : options_(options) {}

  absl::StatusOr<std::optional<RepoInfo>> GetRepo(const std::string& name);
  absl::StatusOr<std::optional<BranchInfo>> GetBranch(const std::string& repo,
                                                      const std::string& branch);
  absl::StatusOr<std::optional<CommitInfo>> GetCommit(const std::string& repo,
                                                      const std::string& id);
  absl::StatusOr<CommitInfo> ResolveCommit(const std::string& repo, const std::string& ref);
  // The id in `ref` (a commit id, or a branch's open commit; FailedPrecondition
  // if the branch has none). `what` names the operation in errors.
  absl::StatusOr<std::string> OpenCommitId(const std::string& repo, const std::string& ref,
                                           const std::string& what);
  // A finished commit, for reading files.
  absl::StatusOr<CommitInfo> ResolveForRead(const std::string& repo, const std::string& ref);
  absl::StatusOr<CommitInfo> StartCommitLocked(const std::string& repo, const std::string& branch,
                                               const std::string& message, v1::Origin origin,
                                               const std::map<std::string, std::string>& metadata,
                                               bool automatic = false,
                                               const CommitOptions& options = {})
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(meta_mu_);
  // The parent's carried ("state/") metadata, copied into `c`.
  absl::Status CarryMetadata(const std::string& repo, const std::string& parent, CommitInfo* c);
  absl::StatusOr<CommitInfo> FinishCommitById(const std::string& repo, const std::string& id,
                                              const FinishOptions& options);
  std::shared_ptr<absl::Mutex> CommitLock(const std::string& id);
  absl::StatusOr<FileInfo> MakeFileInfo(const std::string& path, const Entry& e,
                                        const std::string& commit);
  // Cleans up after a crash; called by Open.
  absl::Status Recover();
  // The next log sequence number; reserves a block of them durably first.
  absl::StatusOr<uint64_t> NextSeq() ABSL_EXCLUSIVE_LOCKS_REQUIRED(meta_mu_);
  // Strict log mode: writes `events` to the object store as one log pack,
  // together with `blobs` (see BlobStore::CollectInline), before the caller
  // writes `batch` (to which it adds what points at the pack): what the index
  // is about to say is in the object store first. Shipped mode: adds the
  // events and `shipped_blobs` (hashes) to `batch` as a pending log.
  // Returns the log's number.
  absl::StatusOr<uint64_t> LogEvents(std::vector<storage::v1::MetaEvent> events, KvBatch* batch,
                                     const std::vector<PreparedBlob>& blobs = {},
                                     const std::vector<Hash>& shipped_blobs = {})
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(meta_mu_);
  // LogEvents, then the synced write of `batch`: the one way a change to
  // repos, branches, commits or durable records is made. If the index write
  // fails after a strict log pack was written, the log's number is voided.
  absl::Status WriteLogged(std::vector<storage::v1::MetaEvent> events, KvBatch* batch,
                           const std::vector<PreparedBlob>& blobs = {},
                           const std::vector<Hash>& shipped_blobs = {})
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(meta_mu_);
  void PackerLoop();
  // DropOpenCommit, or (if that fails: a full disk) again from the packer
  // thread until it works.
  void DropOrRetry(const std::string& repo, const std::string& id);
  void RetryDrops();
  // Gc's parts.
  absl::StatusOr<uint64_t> WriteCheckpoint();
  absl::Status Mark(absl::flat_hash_set<Hash>* live);
  absl::StatusOr<uint64_t> SquashBranch(const RepoInfo& repo, const BranchInfo& branch,
                                        absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(meta_mu_);

  const PfsOptions options_;
  std::unique_ptr<Kv> kv_;
  std::unique_ptr<ObjectStore> owned_store_;
  ObjectStore* store_ = nullptr;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<NodeStore> nodes_;
  std::unique_ptr<ThreadPool> workers_;
  CommitHook* hook_ = nullptr;

  // Serializes changes to repos, branches and commit records.
  absl::Mutex meta_mu_;
  uint64_t next_seq_ ABSL_GUARDED_BY(meta_mu_) = 1;
  uint64_t reserved_seq_ ABSL_GUARDED_BY(meta_mu_) = 0;
  // Signalled when an open commit ends (finished or dropped).
  absl::CondVar auto_commit_done_;
  // Whether a writer to `open`'s branch waits for it to end instead of
  // joining it: an automatic commit, or one an upload owns.
  static bool WaitsForIt(const CommitInfo& open);
  // Why such a writer gave up after `waited`.
  static std::string BusyMessage(const CommitInfo& open, absl::Duration waited);
  // Per open commit: uploads hold it shared while writing their staged ops;
  // FinishCommit holds it exclusively.
  absl::Mutex locks_mu_;
  absl::flat_hash_map<std::string, std::weak_ptr<absl::Mutex>> commit_locks_
      ABSL_GUARDED_BY(locks_mu_);
  size_t sweep_at_ ABSL_GUARDED_BY(locks_mu_) = 1024;

  absl::Mutex gc_mu_;    // one GC at a time
  absl::Mutex ship_mu_;  // one ShipLogs at a time; taken after meta_mu_ if both
  uint64_t shipped_below_ ABSL_GUARDED_BY(ship_mu_) = 0;  // where ShipLogs' scan starts
  std::vector<std::function<absl::Status(GcMarker*)>> gc_sources_;

  absl::Mutex packer_mu_;
  bool stopping_ ABSL_GUARDED_BY(packer_mu_) = false;
  std::vector<std::pair<std::string, std::string>> pending_drops_ ABSL_GUARDED_BY(packer_mu_);
  std::thread packer_;
};

}  // namespace tusk::pfs
