#pragma once

// The implementation of Pfs and Upload (pfs.h). Internal to pfs: other
// components use pfs.h only.
//
// PfsImpl's methods are spread over files by concern, like RocksDB's
// db_impl_*.cc:
//   pfs_open.cc     Open, recovery, shutdown, the packer thread, commit locks
//   pfs_log.cc      the metadata log (sequence numbers, log packs, shipping)
//                   and other components' durable records
//   pfs_repos.cc    index records, repos, branches
//   pfs_commits.cc  starting, finishing, listing, deleting and reverting commits
//   pfs_files.cc    reading files, diffs, globs
//   upload.cc       writing files (UploadImpl, BeginUpload)
//   fsck.cc, retention.cc, checkpoint.cc, gc.cc
//
// Locks, in the order they are taken: gc_mu_, meta_mu_, ship_mu_; a commit's
// lock (CommitLock) before meta_mu_; packer_mu_ and locks_mu_ alone.

#include <deque>
#include <future>

#include "absl/container/flat_hash_set.h"
#include "pfs/pfs.h"
#include "pfs/refs.h"
#include "pfs/staged_tree.h"
#include "proto/storage.pb.h"

namespace tusk::pfs {

class PfsImpl;
class FsckRun;

class UploadImpl final : public Upload {
 public:
  ~UploadImpl() override;
  UploadImpl(const UploadImpl&) = delete;
  UploadImpl& operator=(const UploadImpl&) = delete;

  absl::Status BeginFile(absl::string_view path, bool append) override;
  absl::Status Write(absl::string_view data) override;
  absl::Status EndFile(uint64_t expected_size) override;
  absl::Status Delete(absl::string_view path) override;
  absl::Status PutChunks(absl::string_view path, const std::vector<ChunkRef>& chunks) override;
  absl::Status RequireAbsent(absl::string_view path) override;
  absl::StatusOr<CommitInfo> Close() override;
  absl::StatusOr<DirInfo> CloseToTree(KvBatch* batch) override;

  const std::string& commit_id() const override { return commit_id_; }
  const std::string& last_file_hash() const override { return last_file_hash_; }
  const std::vector<ChunkRef>& last_file_chunks() const override { return last_file_chunks_; }
  bool automatic() const override { return auto_commit_; }
  uint64_t files() const override { return files_; }
  uint64_t bytes() const override { return bytes_; }
  uint64_t new_bytes() const override { return writer_->new_bytes(); }

 private:
  friend class PfsImpl;
  class FsckRun;
  UploadImpl(PfsImpl* pfs, std::string repo, std::string commit_id, Hash parent_root,
             bool auto_commit);
  absl::Status SubmitChunk(std::string chunk);
  absl::Status DrainChunks(size_t keep);
  absl::Status CheckPut(const std::string& path);
  // Stages a PUT of the file at `path` made of `chunks`.
  absl::Status StageFile(const std::string& path, const std::vector<ChunkRef>& chunks);
  absl::StatusOr<std::optional<Entry>> CurrentEntry(const std::string& path);
  // A late upload's Close: chooses the commit (as BeginUpload does), then
  // checks the staged puts and RequireAbsent paths against it.
  absl::Status BindCommit();
  // Drops what this upload made after a failed Close.
  void FailClose();
  void Abort();

  PfsImpl* const pfs_;
  const std::string repo_;
  // Set at construction, or for a late upload (bind_at_close) by BindCommit.
  std::string commit_id_;
  Hash parent_root_;
  bool auto_commit_;
  // A late upload: the branch and options BindCommit opens the commit with.
  bool late_ = false;
  std::string late_branch_;
  AutoCommitOptions late_options_;
  std::vector<std::string> require_absent_;
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
  std::string last_file_hash_;
  std::vector<ChunkRef> last_file_chunks_;
};

class PfsImpl final : public Pfs {
 public:
  ~PfsImpl() override;
  PfsImpl(const PfsImpl&) = delete;
  PfsImpl& operator=(const PfsImpl&) = delete;

  absl::StatusOr<RepoInfo> CreateRepo(const std::string& name,
                                      const std::string& description) override;
  absl::StatusOr<RepoInfo> InspectRepo(const std::string& name) override;
  absl::StatusOr<std::vector<RepoInfo>> ListRepo() override;
  absl::Status DeleteRepo(const std::string& name, bool force) override;
  absl::StatusOr<RepoInfo> UpdateRepo(const std::string& name,
                                      const std::optional<std::string>& description,
                                      const std::optional<v1::Retention>& retention) override;
  absl::StatusOr<BranchInfo> CreateBranch(const std::string& repo, const std::string& branch,
                                          const std::string& head_ref) override;
  absl::StatusOr<BranchInfo> InspectBranch(const std::string& repo,
                                           const std::string& branch) override;
  absl::StatusOr<BranchInfo> SetBranchProvenance(
      const std::string& repo, const std::string& branch,
      const std::vector<v1::BranchRef>& provenance) override;
  absl::StatusOr<std::vector<BranchInfo>> ListBranch(const std::string& repo) override;
  absl::Status DeleteBranch(const std::string& repo, const std::string& branch,
                            bool force) override;
  absl::StatusOr<CommitInfo> StartCommit(const std::string& repo, const std::string& branch,
                                         const std::string& message, v1::Origin origin,
                                         const std::map<std::string, std::string>& metadata,
                                         const CommitOptions& options = {}) override;
  absl::StatusOr<CommitInfo> FinishCommit(const std::string& repo, const std::string& ref,
                                          const FinishOptions& options) override;
  absl::Status ListCommitSet(const std::string& commit_set,
                             const std::function<absl::Status(const CommitInfo&)>& fn) override;
  absl::StatusOr<std::vector<v1::CommitRef>> Subvenance(const std::string& repo,
                                                        const std::string& id) override;
  void SetCommitHook(CommitHook* hook) override { hook_ = hook; }
  absl::StatusOr<CommitInfo> InspectCommit(const std::string& repo,
                                           const std::string& ref) override;
  absl::Status ListCommit(const std::string& repo, const std::string& ref, uint64_t limit,
                          const std::function<absl::Status(const CommitInfo&)>& fn) override;
  absl::StatusOr<std::unique_ptr<Upload>> BeginUpload(
      const std::string& repo, const std::string& ref,
      const AutoCommitOptions& auto_commit = {}) override;
  std::unique_ptr<Upload> BeginTreeUpload() override;
  absl::StatusOr<FileInfo> InspectFile(const std::string& repo, const std::string& ref,
                                       const std::string& path) override;
  absl::Status ListFile(const std::string& repo, const std::string& ref, const std::string& path,
                        const std::function<absl::Status(const FileInfo&)>& fn) override;
  absl::Status ListStagedFile(const std::string& repo, const std::string& ref,
                              const std::function<absl::Status(const FileInfo&)>& fn) override;
  absl::Status GlobFile(const std::string& repo, const std::string& ref, const std::string& pattern,
                        const std::function<absl::Status(const FileInfo&)>& fn) override;
  absl::Status GetFile(const std::string& repo, const std::string& ref, const std::string& path,
                       const std::function<absl::Status(const FileInfo&)>& on_file,
                       const std::function<absl::Status(std::string data)>& on_data) override;
  absl::Status ListStagedChanges(
      const std::string& repo, const std::string& id, const std::string& path,
      const std::function<absl::Status(const StagedChange&)>& fn) override;
  absl::StatusOr<std::optional<StagedChange>> StagedChangeAt(const std::string& repo,
                                                             const std::string& id,
                                                             const std::string& path) override;
  absl::StatusOr<std::unique_ptr<FileReader>> OpenStagedFile(const std::string& repo,
                                                             const std::string& id,
                                                             const std::string& path) override;
  absl::StatusOr<std::unique_ptr<FileReader>> OpenFile(const std::string& repo,
                                                       const std::string& ref,
                                                       const std::string& path) override;
  absl::StatusOr<CommitInfo> DeleteFile(const std::string& repo, const std::string& ref,
                                        const std::string& path) override;
  absl::Status DiffCommit(const std::string& repo, const std::string& new_ref,
                          const std::string& old_ref,
                          const std::function<absl::Status(const FileDiff&)>& fn) override;
  absl::StatusOr<CommitInfo> Revert(const std::string& repo, const std::string& branch,
                                    const std::string& to, const std::string& message) override;
  absl::StatusOr<std::vector<BranchInfo>> DeleteCommit(const std::string& repo,
                                                       const std::string& ref) override;
  absl::StatusOr<uint64_t> ApplyRetention(absl::Time now) override;
  absl::StatusOr<v1::GcResponse> Gc(const GcOptions& options) override;
  void AddGcSource(std::function<absl::Status(GcMarker*)> source) override;
  absl::Status PutRecord(const std::string& key, const std::string& value) override;
  absl::Status DeleteRecord(const std::string& key) override;
  absl::Status WriteRecords(const RecordChanges& changes, KvBatch* extra) override;
  // The events and index writes of `changes` (under meta_mu_).
  absl::Status AddRecordChanges(const RecordChanges& changes,
                                std::vector<storage::v1::MetaEvent>* events, KvBatch* batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(meta_mu_);
  absl::StatusOr<v1::FsckResponse> Fsck(
      const std::function<void(const std::string&)>& on_problem) override;
  absl::Status DropOpenCommit(const std::string& repo, const std::string& id) override;
  absl::Status PackPending() override;
  absl::StatusOr<size_t> ShipLogs() override;
  KeySpace Space(absl::string_view prefix) override;
  NodeStore* nodes() override { return nodes_.get(); }
  BlobStore* blobs() override { return blobs_.get(); }
  ThreadPool* workers() override { return workers_.get(); }
  const PfsOptions& options() const override { return options_; }

 private:
  friend class Pfs;  // Open
  friend class UploadImpl;
  explicit PfsImpl(const PfsOptions& options) : options_(options) {}

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
  // The commit an upload into `ref` writes to: a commit id's (open) commit,
  // the branch's open commit, or a new automatic commit (waiting for another
  // upload's automatic commit to end first).
  struct UploadTarget {
    CommitInfo commit;
    bool automatic = false;
    Hash parent_root;
  };
  absl::StatusOr<UploadTarget> ChooseUploadTarget(const std::string& repo, const ParsedRef& parsed,
                                                  const AutoCommitOptions& auto_opts);
  absl::StatusOr<CommitInfo> StartCommitLocked(const std::string& repo, const std::string& branch,
                                               const std::string& message, v1::Origin origin,
                                               const std::map<std::string, std::string>& metadata,
                                               bool automatic = false,
                                               const CommitOptions& options = {})
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(meta_mu_);
  // The parent's carried ("state/") metadata, copied into `c`.
  absl::Status CarryMetadata(const std::string& repo, const std::string& parent, CommitInfo* c);
  // What FinishCommit applies: the staged writes of an open commit.
  struct Staged {
    StagedTree tree;
    std::vector<std::string> keys;  // index keys of the staged ops
    std::vector<Entry> files;       // the files put
  };
  absl::StatusOr<Staged> ReadStaged(const std::string& id);
  // Adds the chunk lists and chunks of `files` to `blobs` (once each).
  absl::Status AddFileBlobs(const std::vector<Entry>& files, std::vector<Hash>* blobs);
  // Aborted unless the parent of `c` has the metadata `expect` names.
  absl::Status CheckParentMetadata(const std::string& repo, const CommitInfo& c,
                                   const std::map<std::string, std::string>& expect)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(meta_mu_);
  absl::StatusOr<CommitInfo> FinishCommitById(const std::string& repo, const std::string& id,
                                              const FinishOptions& options);
  std::shared_ptr<absl::Mutex> CommitLock(const std::string& id);
  absl::StatusOr<FileInfo> MakeFileInfo(const std::string& path, const Entry& e,
                                        const std::string& commit);
  // The entry at `path` (normalized) of finished commit `ref`: NotFound if
  // there is none.
  struct Found {
    std::string path;
    CommitInfo commit;
    Entry entry;
  };
  absl::StatusOr<Found> Lookup(const std::string& repo, const std::string& ref,
                               const std::string& path);
  // A reader of file entry `e` at `path` of commit `c`.
  absl::StatusOr<std::unique_ptr<FileReader>> ReaderOf(const std::string& path, const Entry& e,
                                                       CommitInfo c);
  // Open commit `id` of `repo` (FailedPrecondition if it is finished).
  absl::StatusOr<CommitInfo> OpenCommit(const std::string& repo, const std::string& id);
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
  // Fsck's parts.
  absl::Status FsckCommits(FsckRun* run);
  absl::Status FsckPacks(FsckRun* run);
  absl::Status FsckBranches(FsckRun* run);
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
