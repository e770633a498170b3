// Reading files: inspect, list, glob, get, diff; deleting a file.

#include <algorithm>
#include <deque>
#include <future>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"
#include "pfs/keys.h"
#include "pfs/pfs_impl.h"
#include "pfs/records.h"
#include "pfs/refs.h"

namespace tusk::pfs {

using google::protobuf::util::TimeUtil;
using storage::v1::StagedOp;

namespace {

// A file's chunks read in order, a few ahead on the workers (reading and
// verifying overlap with sending) and further ahead prefetched from the
// object store (on a local disk the kernel reads while the workers verify).
// Optionally only bytes [offset, end) of the file.
class ChunkStream {
 public:
  ChunkStream(BlobStore* blobs, ThreadPool* workers, std::string path, std::vector<ChunkRef> chunks)
      : blobs_(blobs), workers_(workers), path_(std::move(path)), chunks_(std::move(chunks)) {
    for (const auto& c : chunks_) end_ += c.size();
    stop_ = chunks_.size();
  }
  ~ChunkStream() {
    for (auto& f : ahead_) f.wait();  // the tasks refer to nothing here, but finish them first
  }
  ChunkStream(const ChunkStream&) = delete;
  ChunkStream& operator=(const ChunkStream&) = delete;

  const std::vector<ChunkRef>& chunks() const { return chunks_; }

  // Reads [offset, offset + length) only; before the first Next.
  void Limit(uint64_t offset, uint64_t length) {
    uint64_t size = end_;
    offset = std::min(offset, size);
    end_ = offset + std::min(length, size - offset);
    // Skip the chunks wholly before the offset.
    while (next_ < chunks_.size() && pos_ + chunks_[next_].size() <= offset) {
      pos_ += chunks_[next_].size();
      ++next_;
    }
    prefetched_ = next_;
    skip_ = offset - pos_;
    // Nothing past the range is read or prefetched.
    uint64_t at = pos_;
    stop_ = next_;
    while (stop_ < chunks_.size() && at < end_) at += chunks_[stop_++].size();
  }

  absl::StatusOr<std::string> Next() {
    while (true) {
      if (pos_ >= end_) return std::string();
      while (next_ < stop_ && ahead_.size() < kReadAhead) RETURN_IF_ERROR(Submit());
      if (ahead_.empty()) return std::string();
      auto data = ahead_.front().get();
      ahead_.pop_front();
      if (!data.ok()) return Annotate(data.status(), absl::StrCat("reading ", path_));
      std::string piece = std::move(*data);
      pos_ += piece.size();
      if (skip_ > 0) {
        piece.erase(0, std::min<uint64_t>(skip_, piece.size()));
        skip_ = 0;
      }
      if (pos_ > end_) piece.resize(piece.size() - (pos_ - end_));
      if (!piece.empty()) return piece;
    }
  }

 private:
  static constexpr size_t kReadAhead = 4;
  static constexpr size_t kPrefetchAhead = 16;

  absl::Status Submit() {
    for (; prefetched_ < stop_ && prefetched_ < next_ + kPrefetchAhead; ++prefetched_) {
      if (prefetched_ < next_ + kReadAhead) continue;  // read right away anyway
      auto ph = Hash::FromRaw(chunks_[prefetched_].hash());
      if (ph.ok()) blobs_->Prefetch(*ph);
    }
    ASSIGN_OR_RETURN(Hash h, Hash::FromRaw(chunks_[next_].hash()));
    const bool small = chunks_[next_].size() < (64 << 10);
    ++next_;
    BlobStore* blobs = blobs_;
    if (small) {
      // A trip through the pool costs more than reading a small blob here.
      std::promise<absl::StatusOr<std::string>> done;
      done.set_value(blobs->Read(h));
      ahead_.push_back(done.get_future());
    } else {
      ahead_.push_back(workers_->Submit([blobs, h] { return blobs->Read(h); }));
    }
    return absl::OkStatus();
  }

  BlobStore* const blobs_;
  ThreadPool* const workers_;
  const std::string path_;
  const std::vector<ChunkRef> chunks_;
  size_t next_ = 0;        // the next chunk to submit
  size_t prefetched_ = 0;  // chunks below this were prefetched or submitted
  size_t stop_ = 0;        // chunks from here on are past the range
  uint64_t pos_ = 0;       // file offset of the next chunk returned
  uint64_t skip_ = 0;      // bytes to drop from the front of that chunk
  uint64_t end_ = 0;       // stop here
  std::deque<std::future<absl::StatusOr<std::string>>> ahead_;
};

class FileReaderImpl final : public FileReader {
 public:
  FileReaderImpl(FileInfo info, CommitInfo commit, std::unique_ptr<ChunkStream> stream)
      : info_(std::move(info)), commit_(std::move(commit)), stream_(std::move(stream)) {}
  const FileInfo& info() const override { return info_; }
  const CommitInfo& commit() const override { return commit_; }
  const std::vector<ChunkRef>& chunks() const override { return stream_->chunks(); }
  void Limit(uint64_t offset, uint64_t length) override { stream_->Limit(offset, length); }
  absl::StatusOr<std::string> Next() override { return stream_->Next(); }

 private:
  const FileInfo info_;
  const CommitInfo commit_;
  const std::unique_ptr<ChunkStream> stream_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<FileReader>> PfsImpl::OpenFile(const std::string& repo,
                                                              const std::string& ref,
                                                              const std::string& path) {
  ASSIGN_OR_RETURN(Found f, Lookup(repo, ref, path));
  if (f.entry.type() != Entry::FILE) {
    return absl::FailedPreconditionError(
        absl::StrCat(f.path, " in ", repo, "@", f.commit.id(), " is a directory, not a file"));
  }
  return ReaderOf(f.path, f.entry, std::move(f.commit));
}

absl::StatusOr<std::unique_ptr<FileReader>> PfsImpl::ReaderOf(const std::string& path,
                                                              const Entry& e, CommitInfo c) {
  ASSIGN_OR_RETURN(FileInfo info, MakeFileInfo(path, e, c.id()));
  ASSIGN_OR_RETURN(ChunkList list, nodes_->GetChunks(e));
  auto stream = std::make_unique<ChunkStream>(
      blobs_.get(), workers_.get(), path,
      std::vector<ChunkRef>(list.chunks().begin(), list.chunks().end()));
  return std::unique_ptr<FileReader>(
      new FileReaderImpl(std::move(info), std::move(c), std::move(stream)));
}

absl::StatusOr<CommitInfo> PfsImpl::OpenCommit(const std::string& repo, const std::string& id) {
  ASSIGN_OR_RETURN(auto c, GetCommit(repo, id));
  if (!c) return absl::NotFoundError(absl::StrCat("commit ", id, " not found in repo ", repo));
  if (c->state() != v1::OPEN) {
    return absl::FailedPreconditionError(absl::StrCat("commit ", repo, "@", id, " is finished"));
  }
  return *c;
}

absl::Status PfsImpl::ListStagedChanges(
    const std::string& repo, const std::string& id, const std::string& path,
    const std::function<absl::Status(const StagedChange&)>& fn) {
  ASSIGN_OR_RETURN(std::string p, NormalizePath(path));
  ASSIGN_OR_RETURN(CommitInfo c, OpenCommit(repo, id));
  const std::string prefix = StagePrefix(id);
  const std::string below = p == "/" ? "/" : p + "/";
  absl::Status status;
  auto visit = [&](absl::string_view k, absl::string_view v) {
    std::string staged_path(k.substr(prefix.size()));
    if (staged_path != p && staged_path.compare(0, below.size(), below) != 0) return true;
    StagedOp op;
    if (!op.ParseFromString(std::string(v))) {
      status = absl::DataLossError(
          absl::StrCat("staged write ", staged_path, " of commit ", id, " is corrupt"));
      return false;
    }
    StagedChange change;
    change.path = staged_path;
    change.deleted = op.kind() != StagedOp::PUT;
    if (!change.deleted) {
      auto info = MakeFileInfo(staged_path, op.entry(), c.id());
      if (!info.ok()) {
        status = info.status();
        return false;
      }
      change.file = std::move(*info);
    }
    status = fn(change);
    return status.ok();
  };
  // The path itself, then everything beneath it.
  RETURN_IF_ERROR(kv_->ScanPrefix(StageKey(id, p), visit));
  return status;
}

absl::StatusOr<std::optional<StagedChange>> PfsImpl::StagedChangeAt(const std::string& repo,
                                                                    const std::string& id,
                                                                    const std::string& path) {
  ASSIGN_OR_RETURN(std::string p, NormalizePath(path));
  ASSIGN_OR_RETURN(CommitInfo c, OpenCommit(repo, id));
  // The path, then each directory above it (a delete there covers it).
  for (std::string at = p;;) {
    ASSIGN_OR_RETURN(auto v, kv_->Get(StageKey(id, at)));
    if (v) {
      StagedOp op;
      if (!op.ParseFromString(*v)) {
        return absl::DataLossError(
            absl::StrCat("staged write ", at, " of commit ", id, " is corrupt"));
      }
      StagedChange change;
      change.path = at;
      change.deleted = op.kind() != StagedOp::PUT;
      if (at != p && !change.deleted)
        return std::optional<StagedChange>();  // a file above: none here
      if (!change.deleted) {
        ASSIGN_OR_RETURN(change.file, MakeFileInfo(at, op.entry(), c.id()));
      }
      return std::optional<StagedChange>(std::move(change));
    }
    if (at == "/") break;
    size_t slash = at.rfind('/');
    at = slash == 0 ? "/" : at.substr(0, slash);
  }
  return std::optional<StagedChange>();
}

absl::StatusOr<std::unique_ptr<FileReader>> PfsImpl::OpenStagedFile(const std::string& repo,
                                                                    const std::string& id,
                                                                    const std::string& path) {
  ASSIGN_OR_RETURN(std::string p, NormalizePath(path));
  ASSIGN_OR_RETURN(CommitInfo c, OpenCommit(repo, id));
  ASSIGN_OR_RETURN(auto v, kv_->Get(StageKey(id, p)));
  StagedOp op;
  if (v && !op.ParseFromString(*v)) {
    return absl::DataLossError(absl::StrCat("staged write ", p, " of commit ", id, " is corrupt"));
  }
  if (!v || op.kind() != StagedOp::PUT) {
    return absl::NotFoundError(absl::StrCat("no file ", p, " is staged in ", repo, "@", id));
  }
  return ReaderOf(p, op.entry(), std::move(c));
}

absl::StatusOr<FileInfo> PfsImpl::MakeFileInfo(const std::string& path, const Entry& e,
                                               const std::string& commit) {
  FileInfo info;
  info.set_path(path);
  info.set_type(e.type() == Entry::DIR ? v1::DIR : v1::FILE);
  info.set_size_bytes(e.size());
  if (!e.hash().empty()) {
    ASSIGN_OR_RETURN(Hash h, Hash::FromRaw(e.hash()));
    if (!h.IsZero()) info.set_hash(h.Hex());
  }
  info.set_commit(commit);
  if (e.type() == Entry::DIR) {
    info.set_file_count(e.file_count());
  } else {
    info.set_file_count(1);
    if (e.chunk_list_blob()) {
      ASSIGN_OR_RETURN(ChunkList list, nodes_->GetChunks(e));
      info.set_chunk_count(static_cast<uint32_t>(list.chunks_size()));
    } else {
      info.set_chunk_count(static_cast<uint32_t>(e.chunks_size()));
    }
  }
  return info;
}

absl::StatusOr<FileInfo> PfsImpl::InspectFile(const std::string& repo, const std::string& ref,
                                              const std::string& path) {
  ASSIGN_OR_RETURN(Found f, Lookup(repo, ref, path));
  return MakeFileInfo(f.path, f.entry, f.commit.id());
}

absl::StatusOr<PfsImpl::Found> PfsImpl::Lookup(const std::string& repo, const std::string& ref,
                                               const std::string& path) {
  Found f;
  ASSIGN_OR_RETURN(f.path, NormalizePath(path));
  ASSIGN_OR_RETURN(f.commit, ResolveForRead(repo, ref));
  ASSIGN_OR_RETURN(Hash root, RootHash(f.commit));
  ASSIGN_OR_RETURN(auto e, LookupPath(nodes_.get(), root, f.path));
  if (!e) {
    return absl::NotFoundError(
        absl::StrCat("file ", f.path, " not found in ", repo, "@", f.commit.id()));
  }
  f.entry = std::move(*e);
  return f;
}

absl::Status PfsImpl::ListStagedFile(const std::string& repo, const std::string& ref,
                                     const std::function<absl::Status(const FileInfo&)>& fn) {
  ASSIGN_OR_RETURN(std::string id, OpenCommitId(repo, ref, "list staged files"));
  ASSIGN_OR_RETURN(auto c, GetCommit(repo, id));
  if (!c) return absl::NotFoundError(absl::StrCat("commit ", id, " not found in repo ", repo));
  if (c->state() != v1::OPEN) {
    return absl::FailedPreconditionError(
        absl::StrCat("commit ", repo, "@", id, " is finished; 'list file' shows its files"));
  }
  std::string prefix = StagePrefix(id);
  absl::Status status;
  RETURN_IF_ERROR(kv_->ScanPrefix(prefix, [&](absl::string_view k, absl::string_view v) {
    StagedOp op;
    if (!op.ParseFromString(std::string(v))) {
      status = absl::DataLossError(
          absl::StrCat("staged write ", k.substr(prefix.size()), " of commit ", id, " is corrupt"));
      return false;
    }
    if (op.kind() != StagedOp::PUT) return true;
    auto info = MakeFileInfo(std::string(k.substr(prefix.size())), op.entry(), id);
    if (info.ok())
      status = fn(*info);
    else
      status = info.status();
    return status.ok();
  }));
  return status;
}

absl::Status PfsImpl::ListFile(const std::string& repo, const std::string& ref,
                               const std::string& path,
                               const std::function<absl::Status(const FileInfo&)>& fn) {
  ASSIGN_OR_RETURN(std::string p, NormalizePath(path));
  ASSIGN_OR_RETURN(CommitInfo c, ResolveForRead(repo, ref));
  ASSIGN_OR_RETURN(Hash root, RootHash(c));
  ASSIGN_OR_RETURN(auto e, LookupPath(nodes_.get(), root, p));
  if (!e) return absl::NotFoundError(absl::StrCat("path ", p, " not found in ", repo, "@", c.id()));
  if (e->type() == Entry::FILE) {
    ASSIGN_OR_RETURN(FileInfo info, MakeFileInfo(p, *e, c.id()));
    return fn(info);
  }
  ASSIGN_OR_RETURN(Hash dir, Hash::FromRaw(e->hash()));
  return ForEachEntry(nodes_.get(), dir, [&](const Entry& child) -> absl::Status {
    ASSIGN_OR_RETURN(FileInfo info, MakeFileInfo(JoinPath(p, child.name()), child, c.id()));
    return fn(info);
  });
}

absl::Status PfsImpl::GlobFile(const std::string& repo, const std::string& ref,
                               const std::string& pattern,
                               const std::function<absl::Status(const FileInfo&)>& fn) {
  ASSIGN_OR_RETURN(CommitInfo c, ResolveForRead(repo, ref));
  ASSIGN_OR_RETURN(Hash root, RootHash(c));
  return Glob(nodes_.get(), root, pattern,
              [&](const std::string& path, const Entry& e) -> absl::Status {
                ASSIGN_OR_RETURN(FileInfo info, MakeFileInfo(path, e, c.id()));
                return fn(info);
              });
}

absl::Status PfsImpl::GetFile(const std::string& repo, const std::string& ref,
                              const std::string& path,
                              const std::function<absl::Status(const FileInfo&)>& on_file,
                              const std::function<absl::Status(std::string data)>& on_data) {
  ASSIGN_OR_RETURN(std::string p, NormalizePath(path));
  ASSIGN_OR_RETURN(CommitInfo c, ResolveForRead(repo, ref));
  ASSIGN_OR_RETURN(Hash root, RootHash(c));
  ASSIGN_OR_RETURN(auto e, LookupPath(nodes_.get(), root, p));
  if (!e) return absl::NotFoundError(absl::StrCat("path ", p, " not found in ", repo, "@", c.id()));
  auto send_file = [&](const std::string& file_path, const Entry& file) -> absl::Status {
    ASSIGN_OR_RETURN(FileInfo info, MakeFileInfo(file_path, file, c.id()));
    RETURN_IF_ERROR(on_file(info));
    ASSIGN_OR_RETURN(ChunkList list, nodes_->GetChunks(file));
    ChunkStream stream(blobs_.get(), workers_.get(), file_path,
                       {list.chunks().begin(), list.chunks().end()});
    while (true) {
      ASSIGN_OR_RETURN(std::string data, stream.Next());
      if (data.empty()) return absl::OkStatus();
      RETURN_IF_ERROR(on_data(std::move(data)));
    }
  };
  if (e->type() == Entry::FILE) return send_file(p, *e);
  ASSIGN_OR_RETURN(Hash dir, Hash::FromRaw(e->hash()));
  return WalkFiles(nodes_.get(), dir, p, send_file);
}

absl::StatusOr<CommitInfo> PfsImpl::DeleteFile(const std::string& repo, const std::string& ref,
                                               const std::string& path) {
  ASSIGN_OR_RETURN(auto upload, BeginUpload(repo, ref));
  RETURN_IF_ERROR(upload->Delete(path));
  return upload->Close();
}

absl::Status PfsImpl::DiffCommit(const std::string& repo, const std::string& new_ref,
                                 const std::string& old_ref,
                                 const std::function<absl::Status(const FileDiff&)>& fn) {
  ASSIGN_OR_RETURN(CommitInfo n, ResolveForRead(repo, new_ref));
  Hash old_root;
  if (!old_ref.empty()) {
    ASSIGN_OR_RETURN(CommitInfo o, ResolveForRead(repo, old_ref));
    ASSIGN_OR_RETURN(old_root, RootHash(o));
  } else if (!n.parent().empty()) {
    ASSIGN_OR_RETURN(auto o, GetCommit(repo, n.parent()));
    if (!o) return absl::DataLossError(absl::StrCat("parent commit ", n.parent(), " is missing"));
    ASSIGN_OR_RETURN(old_root, RootHash(*o));
  }
  ASSIGN_OR_RETURN(Hash new_root, RootHash(n));
  return DiffTrees(nodes_.get(), old_root, new_root, "/", [&](const PathDiff& d) -> absl::Status {
    FileDiff out;
    out.set_path(d.path);
    out.set_change(d.kind == PathDiff::kAdded     ? FileDiff::ADDED
                   : d.kind == PathDiff::kDeleted ? FileDiff::DELETED
                                                  : FileDiff::MODIFIED);
    if (d.old_entry) {
      out.set_old_size(d.old_entry->size());
      ASSIGN_OR_RETURN(Hash h, Hash::FromRaw(d.old_entry->hash()));
      out.set_old_hash(h.Hex());
    }
    if (d.new_entry) {
      out.set_new_size(d.new_entry->size());
      ASSIGN_OR_RETURN(Hash h, Hash::FromRaw(d.new_entry->hash()));
      out.set_new_hash(h.Hex());
    }
    return fn(out);
  });
}

}  // namespace tusk::pfs
