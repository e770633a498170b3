// Writing files: UploadImpl, and Pfs::BeginUpload that makes one.

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"
#include "pfs/keys.h"
#include "pfs/pfs_impl.h"
#include "pfs/pfs_metrics.h"
#include "pfs/records.h"
#include "pfs/refs.h"
#include "pfs/staged_tree.h"

namespace tusk::pfs {

using google::protobuf::util::TimeUtil;
using storage::v1::StagedOp;

absl::StatusOr<std::unique_ptr<Upload>> PfsImpl::BeginUpload(const std::string& repo,
                                                             const std::string& ref,
                                                             const AutoCommitOptions& auto_opts) {
  if (auto_opts.origin != v1::AUTO && auto_opts.origin != v1::INGEST) {
    return absl::InvalidArgumentError(
        absl::StrCat("an automatic commit's origin must be AUTO or INGEST, not ",
                     v1::Origin_Name(auto_opts.origin)));
  }
  RETURN_IF_ERROR(ValidateRepoName(repo));
  ASSIGN_OR_RETURN(ParsedRef parsed, ParseRef(ref.empty() ? std::string(kDefaultBranch) : ref));
  if (parsed.ancestors > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot write to '", ref, "': writes need a branch or an open commit, not an ancestor"));
  }
  if (auto_opts.bind_at_close) {
    if (parsed.is_commit_id) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot write to '", ref, "': an upload bound at close needs a branch"));
    }
    RETURN_IF_ERROR(ValidateBranchName(parsed.base));
    ASSIGN_OR_RETURN(auto r, GetRepo(repo));
    if (!r) return absl::NotFoundError(absl::StrCat("repo ", repo, " not found"));
    // The head's tree checks writes early (a file where a directory is);
    // Close checks them again against the commit it chooses.
    Hash head_root;
    ASSIGN_OR_RETURN(auto b, GetBranch(repo, parsed.base));
    if (b && !b->head().empty()) {
      ASSIGN_OR_RETURN(auto head, GetCommit(repo, b->head()));
      if (head) {
        ASSIGN_OR_RETURN(head_root, RootHash(*head));
      }
    }
    auto upload = std::unique_ptr<UploadImpl>(
        new UploadImpl(this, repo, "", head_root, /*auto_commit=*/false));
    upload->late_ = true;
    upload->late_branch_ = parsed.base;
    upload->late_options_ = auto_opts;
    return std::unique_ptr<Upload>(std::move(upload));
  }
  ASSIGN_OR_RETURN(UploadTarget target, ChooseUploadTarget(repo, parsed, auto_opts));
  auto upload = std::unique_ptr<UploadImpl>(
      new UploadImpl(this, repo, target.commit.id(), target.parent_root, target.automatic));
  if (target.automatic) {
    upload->auto_metadata_ = auto_opts.metadata;
    upload->auto_expect_ = auto_opts.expect_metadata;
  }
  return std::unique_ptr<Upload>(std::move(upload));
}

absl::StatusOr<PfsImpl::UploadTarget> PfsImpl::ChooseUploadTarget(
    const std::string& repo, const ParsedRef& parsed, const AutoCommitOptions& auto_opts) {
  bool auto_only = auto_opts.origin != v1::AUTO || !auto_opts.metadata.empty() ||
                   !auto_opts.expect_metadata.empty();
  CommitInfo c;
  bool auto_commit = false;
  if (parsed.is_commit_id) {
    ASSIGN_OR_RETURN(auto r, GetRepo(repo));
    if (!r) return absl::NotFoundError(absl::StrCat("repo ", repo, " not found"));
    ASSIGN_OR_RETURN(auto found, GetCommit(repo, parsed.base));
    if (!found)
      return absl::NotFoundError(absl::StrCat("commit ", parsed.base, " not found in repo ", repo));
    c = *found;
  } else {
    absl::MutexLock lock(&meta_mu_);
    ASSIGN_OR_RETURN(auto r, GetRepo(repo));
    if (!r) return absl::NotFoundError(absl::StrCat("repo ", repo, " not found"));
    RETURN_IF_ERROR(ValidateBranchName(parsed.base));
    absl::Time deadline = absl::Now() + auto_opts.wait;
    while (true) {
      ASSIGN_OR_RETURN(auto b, GetBranch(repo, parsed.base));
      if (!b || b->open_commit().empty()) {
        ASSIGN_OR_RETURN(c, StartCommitLocked(repo, parsed.base, auto_opts.message,
                                              auto_opts.origin, {}, /*automatic=*/true));
        auto_commit = true;
        break;
      }
      ASSIGN_OR_RETURN(auto found, GetCommit(repo, b->open_commit()));
      if (!found)
        return absl::DataLossError(absl::StrCat("open commit ", b->open_commit(), " is missing"));
      if (!WaitsForIt(*found)) {
        c = *found;  // an explicitly started commit: write into it
        break;
      }
      // Another stream's automatic commit ends with that stream; an upload's
      // own commit ends with that upload. Neither is joined.
      if (auto_commit_done_.WaitWithDeadline(&meta_mu_, deadline)) {
        return absl::DeadlineExceededError(BusyMessage(*found, auto_opts.wait));
      }
    }
  }
  auto drop = [&](absl::Status st) {
    if (auto_commit) DropOrRetry(repo, c.id());
    return st;
  };
  if (!auto_commit && auto_only) {
    return absl::InvalidArgumentError(absl::StrCat(
        "origin, metadata and preconditions apply to an automatic commit, but the write goes into "
        "open commit ",
        repo, "@", c.id(), "; pass them to finish commit instead"));
  }
  if (c.state() != v1::OPEN) {
    return absl::FailedPreconditionError(absl::StrCat(
        "commit ", repo, "@", c.id(), " is finished; writes need an open commit or a branch"));
  }
  UploadTarget target;
  if (!c.parent().empty()) {
    auto p = GetCommit(repo, c.parent());
    if (!p.ok()) return drop(p.status());
    if (!*p) {
      return drop(absl::DataLossError(absl::StrCat("parent commit ", c.parent(), " is missing")));
    }
    auto root = RootHash(**p);
    if (!root.ok()) return drop(root.status());
    target.parent_root = *root;
  }
  target.commit = std::move(c);
  target.automatic = auto_commit;
  return target;
}

std::unique_ptr<Upload> PfsImpl::BeginTreeUpload() {
  return std::unique_ptr<Upload>(new UploadImpl(this, "", "", Hash{}, false));
}

UploadImpl::UploadImpl(PfsImpl* pfs, std::string repo, std::string commit_id, Hash parent_root,
                       bool auto_commit)
    : pfs_(pfs),
      repo_(std::move(repo)),
      commit_id_(std::move(commit_id)),
      parent_root_(parent_root),
      auto_commit_(auto_commit),
      writer_(pfs->blobs()->NewWriter()),
      chunker_(pfs->options().chunker) {}

UploadImpl::~UploadImpl() {
  if (!closed_) Abort();
}

void UploadImpl::Abort() {
  closed_ = true;
  for (auto& f : in_flight_) f.wait();
  in_flight_.clear();
  writer_->Abandon();
  if (auto_commit_) pfs_->DropOrRetry(repo_, commit_id_);
}

absl::Status UploadImpl::BeginFile(absl::string_view path, bool append) {
  if (closed_) return absl::FailedPreconditionError("upload is closed");
  if (in_file_) {
    return absl::InvalidArgumentError(
        absl::StrCat("file ", path_, " was not ended before file ", path, " began"));
  }
  ASSIGN_OR_RETURN(std::string p, NormalizePath(path));
  if (p == "/") return absl::InvalidArgumentError("cannot write a file at the root path '/'");
  RETURN_IF_ERROR(CheckPut(p));
  path_ = p;
  in_file_ = true;
  chunks_.clear();
  file_bytes_ = 0;
  chunk_.clear();
  chunker_.Reset();
  if (append) {
    ASSIGN_OR_RETURN(auto existing, CurrentEntry(p));
    if (existing && existing->type() == Entry::FILE) {
      ASSIGN_OR_RETURN(ChunkList list, pfs_->nodes()->GetChunks(*existing));
      for (const auto& c : list.chunks()) chunks_.push_back(c);
    }
  }
  return absl::OkStatus();
}

absl::Status UploadImpl::Write(absl::string_view data) {
  if (!in_file_) return absl::InvalidArgumentError("data sent before a file path");
  file_bytes_ += data.size();
  Metrics().written_bytes->Inc(static_cast<double>(data.size()));
  while (!data.empty()) {
    Chunker::Result r = chunker_.FindBoundary(data);
    chunk_.append(data.data(), r.consumed);
    data.remove_prefix(r.consumed);
    if (r.boundary) {
      std::string chunk;
      chunk.swap(chunk_);
      RETURN_IF_ERROR(SubmitChunk(std::move(chunk)));
    }
  }
  return absl::OkStatus();
}

absl::Status UploadImpl::SubmitChunk(std::string chunk) {
  ChunkRef ref;
  ref.set_size(static_cast<uint32_t>(chunk.size()));
  chunks_.push_back(ref);  // hash filled in when the chunk is drained
  if (chunk.size() < (64 << 10)) {
    // Small: hashing it here is cheaper than a trip through the pool.
    std::promise<PreparedBlob> p;
    p.set_value(PrepareBlob(chunk));
    in_flight_.push_back(p.get_future());
  } else {
    auto shared = std::make_shared<std::string>(std::move(chunk));
    in_flight_.push_back(
        pfs_->workers()->Submit([shared] { return PrepareOwnedBlob(std::move(*shared)); }));
  }
  return DrainChunks(/*keep=*/4);
}

absl::Status UploadImpl::DrainChunks(size_t keep) {
  while (in_flight_.size() > keep) {
    PreparedBlob blob = in_flight_.front().get();
    in_flight_.pop_front();
    // The oldest in-flight chunk is the (size - 1 - in_flight)-th of chunks_.
    size_t index = chunks_.size() - 1 - in_flight_.size();
    chunks_[index].set_hash(blob.hash.Raw());
    const uint64_t size = blob.raw_size;
    ASSIGN_OR_RETURN(bool added, writer_->Add(std::move(blob)));
    if (added) Metrics().new_chunk_bytes->Inc(static_cast<double>(size));
  }
  return absl::OkStatus();
}

absl::Status UploadImpl::EndFile(uint64_t expected_size) {
  if (!in_file_) return absl::InvalidArgumentError("end of file sent before a file path");
  if (!chunk_.empty()) {
    std::string chunk;
    chunk.swap(chunk_);
    RETURN_IF_ERROR(SubmitChunk(std::move(chunk)));
  }
  RETURN_IF_ERROR(DrainChunks(0));
  in_file_ = false;
  if (expected_size != file_bytes_) {
    return absl::InvalidArgumentError(absl::StrCat("truncated upload of ", path_, ": received ",
                                                   file_bytes_, " bytes, the client sent ",
                                                   expected_size));
  }
  RETURN_IF_ERROR(StageFile(path_, chunks_));
  bytes_ += file_bytes_;
  chunks_.clear();
  return absl::OkStatus();
}

absl::Status UploadImpl::StageFile(const std::string& path, const std::vector<ChunkRef>& chunks) {
  ASSIGN_OR_RETURN(Entry e, MakeFileEntry(path.substr(path.rfind('/') + 1), chunks, writer_.get()));
  ASSIGN_OR_RETURN(Hash file_hash, Hash::FromRaw(e.hash()));
  last_file_hash_ = file_hash.Hex();
  last_file_chunks_ = chunks;
  storage::v1::StagedOp op;
  op.set_kind(storage::v1::StagedOp::PUT);
  *op.mutable_entry() = std::move(e);
  auto prev = op_index_.find(path);
  if (prev != op_index_.end() && ops_[prev->second].op.kind() == storage::v1::StagedOp::DELETE) {
    op.set_cleared(true);
  }
  op_index_[path] = ops_.size();
  ops_.push_back({path, std::move(op)});
  files_++;
  return absl::OkStatus();
}

absl::StatusOr<std::optional<Entry>> UploadImpl::CurrentEntry(const std::string& path) {
  // This upload's own writes first, then the parent commit's tree. (Writes
  // staged by other uploads to the same commit are reconciled at finish.)
  auto it = op_index_.find(path);
  if (it != op_index_.end()) {
    const auto& op = ops_[it->second].op;
    if (op.kind() == storage::v1::StagedOp::PUT) return std::optional<Entry>(op.entry());
  }
  auto below = op_index_.lower_bound(path + "/");
  for (; below != op_index_.end() && below->first.compare(0, path.size() + 1, path + "/") == 0;
       ++below) {
    if (ops_[below->second].op.kind() == storage::v1::StagedOp::PUT) {
      Entry dir;
      dir.set_type(Entry::DIR);
      return std::optional<Entry>(dir);
    }
  }
  if (it != op_index_.end()) return std::optional<Entry>();  // deleted here
  // A deleted ancestor hides the parent's content.
  std::string p = path;
  while (true) {
    size_t slash = p.rfind('/');
    if (slash == 0 || slash == std::string::npos) break;
    p.resize(slash);
    auto a = op_index_.find(p);
    if (a != op_index_.end() && ops_[a->second].op.kind() == storage::v1::StagedOp::DELETE) {
      return std::optional<Entry>();
    }
  }
  auto root = op_index_.find("/");
  if (root != op_index_.end()) return std::optional<Entry>();
  return LookupPath(pfs_->nodes(), parent_root_, path);
}

absl::Status UploadImpl::CheckPut(const std::string& path) {
  std::vector<std::string> parts = SplitPath(path);
  std::string prefix;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    prefix += "/" + parts[i];
    if (checked_dirs_.contains(prefix)) continue;
    ASSIGN_OR_RETURN(auto e, CurrentEntry(prefix));
    if (e && e->type() == Entry::FILE) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot write ", path, ": ", prefix, " is a file"));
    }
    checked_dirs_[prefix] = true;
  }
  ASSIGN_OR_RETURN(auto e, CurrentEntry(path));
  if (e && e->type() == Entry::DIR) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write file ", path, ": it is a directory"));
  }
  return absl::OkStatus();
}

absl::Status UploadImpl::Delete(absl::string_view path) {
  if (closed_) return absl::FailedPreconditionError("upload is closed");
  if (in_file_) return absl::InvalidArgumentError("delete sent in the middle of a file");
  ASSIGN_OR_RETURN(std::string p, NormalizePath(path));
  if (p != "/" && !late_) {
    ASSIGN_OR_RETURN(auto e, CurrentEntry(p));
    if (!e) {
      return absl::NotFoundError(absl::StrCat(
          "cannot delete ", p, ": no such file or directory in ", repo_, "@", commit_id_));
    }
  }
  // Forget this upload's earlier writes at and beneath the path.
  std::string below = p == "/" ? "/" : p + "/";
  for (auto it = op_index_.lower_bound(below);
       it != op_index_.end() && it->first.compare(0, below.size(), below) == 0;) {
    it = op_index_.erase(it);
  }
  for (auto it = checked_dirs_.begin(); it != checked_dirs_.end();) {
    if (it->first == p || it->first.compare(0, below.size(), below) == 0) {
      checked_dirs_.erase(it++);
    } else {
      ++it;
    }
  }
  storage::v1::StagedOp op;
  op.set_kind(storage::v1::StagedOp::DELETE);
  op.set_cleared(true);
  op_index_[p] = ops_.size();
  ops_.push_back({p, std::move(op)});
  return absl::OkStatus();
}

absl::Status UploadImpl::PutChunks(absl::string_view path, const std::vector<ChunkRef>& chunks) {
  if (closed_) return absl::FailedPreconditionError("upload is closed");
  if (in_file_) return absl::InvalidArgumentError("file put in the middle of another file");
  ASSIGN_OR_RETURN(std::string p, NormalizePath(path));
  if (p == "/") return absl::InvalidArgumentError("cannot write a file at the root path '/'");
  RETURN_IF_ERROR(CheckPut(p));
  RETURN_IF_ERROR(StageFile(p, chunks));
  for (const auto& c : chunks) bytes_ += c.size();
  return absl::OkStatus();
}

absl::Status UploadImpl::RequireAbsent(absl::string_view path) {
  if (closed_) return absl::FailedPreconditionError("upload is closed");
  ASSIGN_OR_RETURN(std::string p, NormalizePath(path));
  require_absent_.push_back(std::move(p));
  return absl::OkStatus();
}

absl::Status UploadImpl::BindCommit() {
  ASSIGN_OR_RETURN(ParsedRef parsed, ParseRef(late_branch_));
  ASSIGN_OR_RETURN(PfsImpl::UploadTarget target,
                   pfs_->ChooseUploadTarget(repo_, parsed, late_options_));
  commit_id_ = target.commit.id();
  auto_commit_ = target.automatic;
  parent_root_ = target.parent_root;
  if (auto_commit_) {
    auto_metadata_ = late_options_.metadata;
    auto_expect_ = late_options_.expect_metadata;
  }
  // A delete of what exists neither in the parent nor staged in the commit
  // is dropped (S3 deletes of absent keys succeed).
  for (auto it = op_index_.begin(); it != op_index_.end();) {
    const StagedOp& op = ops_[it->second].op;
    if (op.kind() == StagedOp::PUT || it->first == "/") {
      ++it;
      continue;
    }
    ASSIGN_OR_RETURN(auto e, LookupPath(pfs_->nodes(), parent_root_, it->first));
    bool exists = e.has_value();
    if (!exists) {
      ASSIGN_OR_RETURN(auto staged, pfs_->StagedChangeAt(repo_, commit_id_, it->first));
      exists = staged && !staged->deleted;
      if (!exists) {
        // A directory that only staged files make.
        absl::Status beneath =
            pfs_->ListStagedChanges(repo_, commit_id_, it->first, [&](const StagedChange& c) {
              if (!c.deleted) exists = true;
              return absl::OkStatus();
            });
        RETURN_IF_ERROR(beneath);
      }
    }
    if (exists) {
      ++it;
    } else {
      it = op_index_.erase(it);
    }
  }
  // The branch may have moved since the writes were staged: check them
  // against the commit they go into.
  checked_dirs_.clear();
  for (const auto& [path, index] : op_index_) {
    if (ops_[index].op.kind() != StagedOp::PUT) continue;
    RETURN_IF_ERROR(CheckPut(path));
  }
  for (const std::string& path : require_absent_) {
    // Not this upload's own write: the parent's tree, and what other
    // uploads staged into the same open commit.
    ASSIGN_OR_RETURN(auto e, LookupPath(pfs_->nodes(), parent_root_, path));
    bool exists = e.has_value();
    ASSIGN_OR_RETURN(auto staged, pfs_->kv_->Get(StageKey(commit_id_, path)));
    if (staged) {
      StagedOp op;
      if (!op.ParseFromString(*staged)) {
        return absl::DataLossError(
            absl::StrCat("staged write ", path, " of commit ", commit_id_, " is corrupt"));
      }
      exists = op.kind() == StagedOp::PUT;
    }
    if (exists) {
      return absl::AlreadyExistsError(absl::StrCat(path, " exists in ", repo_, "@", late_branch_));
    }
  }
  return absl::OkStatus();
}

void UploadImpl::FailClose() {
  closed_ = true;
  writer_->Abandon();
  if (auto_commit_) pfs_->DropOrRetry(repo_, commit_id_);
}

absl::StatusOr<DirInfo> UploadImpl::CloseToTree(KvBatch* batch) {
  if (closed_) return absl::FailedPreconditionError("upload is closed");
  if (!commit_id_.empty() || late_) {
    return absl::FailedPreconditionError("CloseToTree is for uploads from BeginTreeUpload");
  }
  if (in_file_) {
    return absl::InvalidArgumentError(absl::StrCat("file ", path_, " was not ended"));
  }
  closed_ = true;
  StagedTree tree;
  for (size_t i = 0; i < ops_.size(); ++i) {
    const Op& op = ops_[i];
    auto live = op_index_.find(op.path);
    if (live == op_index_.end() || live->second != i) continue;
    if (op.op.kind() != storage::v1::StagedOp::PUT) continue;  // nothing to delete in a new tree
    tree.Add(op.path, op.op);
  }
  ASSIGN_OR_RETURN(DirInfo root, tree.Apply(pfs_->nodes(), writer_.get(), Hash{}));
  RETURN_IF_ERROR(writer_->Finish(batch));
  return root;
}

absl::StatusOr<CommitInfo> UploadImpl::Close() {
  if (closed_) return absl::FailedPreconditionError("upload is closed");
  if (commit_id_.empty() && !late_)
    return absl::FailedPreconditionError("a tree upload ends with CloseToTree");
  if (in_file_) {
    return absl::InvalidArgumentError(absl::StrCat("file ", path_, " was not ended"));
  }
  if (late_) {
    absl::Status bound = BindCommit();
    if (!bound.ok()) {
      FailClose();
      return bound;
    }
  } else if (!require_absent_.empty()) {
    return absl::FailedPreconditionError("RequireAbsent is for uploads bound at close");
  }
  KvBatch batch;
  RETURN_IF_ERROR(writer_->Finish(&batch));
  for (size_t i = 0; i < ops_.size(); ++i) {
    const Op& op = ops_[i];
    // Only the latest op of a path counts, and none beneath a later delete.
    auto live = op_index_.find(op.path);
    if (live == op_index_.end() || live->second != i) continue;
    if (op.op.cleared()) {
      // Writes staged by earlier uploads beneath a deleted path go too.
      std::string below = StageKey(commit_id_, op.path == "/" ? "/" : op.path + "/");
      RETURN_IF_ERROR(pfs_->kv_->DeletePrefix(below, &batch));
    }
    batch.Put(StageKey(commit_id_, op.path), op.op.SerializeAsString());
  }
  {
    auto lock = pfs_->CommitLock(commit_id_);
    absl::ReaderMutexLock reader(lock.get());
    ASSIGN_OR_RETURN(auto c, pfs_->GetCommit(repo_, commit_id_));
    if (!c || c->state() != v1::OPEN) {
      return absl::FailedPreconditionError(absl::StrCat(
          "commit ", repo_, "@", commit_id_, " was finished or deleted during the upload"));
    }
    RETURN_IF_ERROR(pfs_->kv_.get()->Write(&batch, /*sync=*/false));
  }
  closed_ = true;
  if (auto_commit_) {
    FinishOptions finish;
    finish.metadata = auto_metadata_;
    finish.expect_metadata = auto_expect_;
    auto finished = pfs_->FinishCommitById(repo_, commit_id_, finish);
    if (!finished.ok()) {
      // Leave nothing half-done: the automatic commit goes away with its writes.
      writer_->Abandon();
      pfs_->DropOrRetry(repo_, commit_id_);
      return finished.status();
    }
    return finished;
  }
  ASSIGN_OR_RETURN(auto c, pfs_->GetCommit(repo_, commit_id_));
  if (!c) return absl::NotFoundError(absl::StrCat("commit ", commit_id_, " disappeared"));
  return *c;
}

}  // namespace tusk::pfs
