#include "server/api_service.h"

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/status.h"
#include "common/version.h"
#include "google/protobuf/util/time_util.h"
#include "pfs/refs.h"

namespace tusk::server {
namespace {

using namespace tusk::pfs::v1;  // NOLINT: the request/response types

std::map<std::string, std::string> ToMap(const google::protobuf::Map<std::string, std::string>& m) {
  return std::map<std::string, std::string>(m.begin(), m.end());
}

// A stream write that fails means the client went away.
absl::Status Cancelled() { return absl::CancelledError("client closed the stream"); }

}  // namespace

grpc::Status ApiService::Version(grpc::ServerContext* ctx, const VersionRequest*,
                                 VersionResponse* out) {
  TUSK_AUTHORIZE(auth_->RequireAuthenticated(ctx));
  out->set_version(kTuskVersion);
  out->set_api("tusk.pfs.v1");
  const auto& chunker = pfs_->options().chunker;
  out->set_chunk_min_size(chunker.min_size);
  out->set_chunk_avg_size(chunker.avg_size);
  out->set_chunk_max_size(chunker.max_size);
  return grpc::Status::OK;
}

grpc::Status ApiService::CreateRepo(grpc::ServerContext* ctx, const CreateRepoRequest* req,
                                    RepoInfo* out) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kWrite, req->name()));
  return Fill(pfs_->CreateRepo(req->name(), req->description()), out);
}

grpc::Status ApiService::InspectRepo(grpc::ServerContext* ctx, const InspectRepoRequest* req,
                                     RepoInfo* out) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kRead, req->name()));
  return Fill(pfs_->InspectRepo(req->name()), out);
}

grpc::Status ApiService::ListRepo(grpc::ServerContext* ctx, const ListRepoRequest*,
                                  ListRepoResponse* out) {
  TUSK_AUTHORIZE_AS(Caller caller, auth_->RequireAuthenticated(ctx));
  auto repos = pfs_->ListRepo();
  if (!repos.ok()) return ToGrpcStatus(repos.status());
  for (auto& r : *repos) {
    if (auth_->Can(caller, Access::kRead, r.name())) *out->add_repos() = std::move(r);
  }
  return grpc::Status::OK;
}

absl::Status ApiService::CheckUserWrite(const std::string& repo, const std::string& ref,
                                        bool force) {
  if (jobs_ == nullptr || force) return absl::OkStatus();
  // The branch that `ref` names: itself, or an open or finished commit's.
  std::string branch = ref;
  if (pfs::IsCommitId(ref)) {
    auto c = pfs_->InspectCommit(repo, ref);
    if (c.ok()) branch = c->branch();
  }
  return jobs_->CheckUserWrite(repo, branch);
}

grpc::Status ApiService::DeleteRepo(grpc::ServerContext* ctx, const DeleteRepoRequest* req,
                                    DeleteRepoResponse*) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kWrite, req->name()));
  if (jobs_ != nullptr && !req->force()) {
    if (auto s = jobs_->CheckRepoDelete(req->name()); !s.ok()) return ToGrpcStatus(s);
  }
  return ToGrpcStatus(pfs_->DeleteRepo(req->name(), req->force()));
}

grpc::Status ApiService::CreateBranch(grpc::ServerContext* ctx, const CreateBranchRequest* req,
                                      BranchInfo* out) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kWrite, req->repo()));
  return Fill(pfs_->CreateBranch(req->repo(), req->branch(), req->head()), out);
}

grpc::Status ApiService::InspectBranch(grpc::ServerContext* ctx, const InspectBranchRequest* req,
                                       BranchInfo* out) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kRead, req->repo()));
  return Fill(pfs_->InspectBranch(req->repo(), req->branch()), out);
}

grpc::Status ApiService::ListBranch(grpc::ServerContext* ctx, const ListBranchRequest* req,
                                    ListBranchResponse* out) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kRead, req->repo()));
  auto branches = pfs_->ListBranch(req->repo());
  if (!branches.ok()) return ToGrpcStatus(branches.status());
  for (auto& b : *branches) *out->add_branches() = std::move(b);
  return grpc::Status::OK;
}

grpc::Status ApiService::DeleteBranch(grpc::ServerContext* ctx, const DeleteBranchRequest* req,
                                      DeleteBranchResponse*) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kWrite, req->repo()));
  return ToGrpcStatus(pfs_->DeleteBranch(req->repo(), req->branch(), req->force()));
}

grpc::Status ApiService::StartCommit(grpc::ServerContext* ctx, const StartCommitRequest* req,
                                     CommitInfo* out) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kWrite, req->repo()));
  if (auto s = CheckUserWrite(req->repo(), req->branch(), req->force()); !s.ok()) {
    return ToGrpcStatus(s);
  }
  return Fill(pfs_->StartCommit(req->repo(), req->branch(), req->message(), req->origin(),
                                ToMap(req->metadata())),
              out);
}

grpc::Status ApiService::FinishCommit(grpc::ServerContext* ctx, const FinishCommitRequest* req,
                                      CommitInfo* out) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kWrite, req->repo()));
  pfs::FinishOptions options;
  options.message = req->message();
  options.metadata = ToMap(req->metadata());
  options.expect_metadata = ToMap(req->expect_metadata());
  return Fill(pfs_->FinishCommit(req->repo(), req->ref(), options), out);
}

grpc::Status ApiService::InspectCommit(grpc::ServerContext* ctx, const InspectCommitRequest* req,
                                       CommitInfo* out) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kRead, req->repo()));
  return Fill(pfs_->InspectCommit(req->repo(), req->ref()), out);
}

grpc::Status ApiService::InspectCommitSet(grpc::ServerContext* ctx,
                                          const pfs::v1::InspectCommitSetRequest* req,
                                          grpc::ServerWriter<CommitInfo>* writer) {
  TUSK_AUTHORIZE_AS(Caller caller, auth_->RequireAuthenticated(ctx));
  if (req->commit_set().empty()) {
    return ToGrpcStatus(absl::InvalidArgumentError("commit set id is empty"));
  }
  std::vector<CommitInfo> commits;
  while (true) {
    // Read before looking, so that a change made meanwhile ends the wait.
    const uint64_t seen = jobs_ != nullptr ? jobs_->Changes() : 0;
    commits.clear();
    bool open = false;
    absl::Status st = pfs_->ListCommitSet(req->commit_set(), [&](const CommitInfo& c) {
      if (c.state() != pfs::v1::FINISHED) open = true;
      commits.push_back(c);
      return absl::OkStatus();
    });
    if (!st.ok()) return ToGrpcStatus(st);
    if (commits.empty()) {
      return ToGrpcStatus(
          absl::NotFoundError(absl::StrCat("commit set ", req->commit_set(), " not found")));
    }
    if (!req->wait()) break;
    bool done = !open;
    if (done && jobs_ != nullptr) {
      auto jobs = jobs_->CommitSetJobsDone(req->commit_set());
      if (!jobs.ok()) return ToGrpcStatus(jobs.status());
      done = *jobs;
      if (done) {
        // Jobs are done only once their commits are: list again to send
        // every commit finished.
        bool again = false;
        std::vector<CommitInfo> now;
        st = pfs_->ListCommitSet(req->commit_set(), [&](const CommitInfo& c) {
          if (c.state() != pfs::v1::FINISHED) again = true;
          now.push_back(c);
          return absl::OkStatus();
        });
        if (!st.ok()) return ToGrpcStatus(st);
        done = !again;
        commits = std::move(now);
      }
    }
    if (done) break;
    if (ctx->IsCancelled()) return grpc::Status::CANCELLED;
    if (jobs_ != nullptr) {
      // Woken by the next finished commit or ended job; a cancelled client
      // is noticed within a second.
      jobs_->AwaitChange(seen, absl::Now() + absl::Seconds(1));
    } else {
      absl::SleepFor(absl::Milliseconds(50));
    }
  }
  std::sort(commits.begin(), commits.end(), [](const CommitInfo& a, const CommitInfo& b) {
    return a.started().seconds() != b.started().seconds()
               ? a.started().seconds() < b.started().seconds()
               : a.started().nanos() < b.started().nanos();
  });
  // A commit set spans repos: the caller sees the commits of those it may read.
  for (const auto& c : commits) {
    if (auth_->Can(caller, Access::kRead, c.repo())) writer->Write(c);
  }
  return grpc::Status::OK;
}

grpc::Status ApiService::ListCommit(grpc::ServerContext* ctx, const ListCommitRequest* req,
                                    grpc::ServerWriter<CommitInfo>* writer) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kRead, req->repo()));
  return ToGrpcStatus(pfs_->ListCommit(req->repo(), req->ref(), req->limit(),
                                       [&](const CommitInfo& c) -> absl::Status {
                                         return writer->Write(c) ? absl::OkStatus() : Cancelled();
                                       }));
}

grpc::Status ApiService::PutFile(grpc::ServerContext* ctx,
                                 grpc::ServerReader<PutFileRequest>* reader, PutFileResponse* out) {
  // Fail before reading data from a caller that may write nothing.
  TUSK_AUTHORIZE(auth_->RequireAuthenticated(ctx));
  PutFileRequest req;
  std::unique_ptr<pfs::Upload> upload;
  bool closed = false;
  auto fail = [&](const absl::Status& s) {
    // Destroying the upload discards everything it staged.
    LOG(INFO) << "put file" << (upload ? " into commit " + upload->commit_id() : "")
              << " failed: " << s;
    upload.reset();
    return ToGrpcStatus(s);
  };
  // Only a stream that holds an automatic commit (and with it the branch)
  // is watched for idleness.
  std::unique_ptr<StreamWatchdog::Watch> watch;
  auto idle_error = [&] {
    return fail(absl::DeadlineExceededError(
        absl::StrCat("put file stream into ", req.repo(), "@", req.ref(), " sent nothing for ",
                     absl::FormatDuration(put_watchdog_->idle()),
                     "; its automatic commit was dropped and nothing it sent was kept (tuskd "
                     "--put-idle-timeout)")));
  };
  while (reader->Read(&req)) {
    if (watch) {
      if (watch->expired()) return idle_error();
      watch->Touch();
    }
    if (!upload) {
      auto allowed = auth_->Require(ctx, Access::kWrite, req.repo());
      if (!allowed.ok()) return ToGrpcStatus(allowed.status());
      if (auto s = CheckUserWrite(req.repo(), req.ref(), req.force()); !s.ok()) return fail(s);
      pfs::AutoCommitOptions opts;
      opts.message = req.message();
      if (req.origin() != ORIGIN_UNSPECIFIED) opts.origin = req.origin();
      opts.metadata = ToMap(req.metadata());
      opts.expect_metadata = ToMap(req.expect_metadata());
      auto u = pfs_->BeginUpload(req.repo(), req.ref(), opts);
      if (!u.ok()) return fail(u.status());
      upload = std::move(*u);
      if (put_watchdog_ != nullptr && upload->automatic()) {
        watch = put_watchdog_->Start(ctx);
        watch->OnIdle([pfs = pfs_, repo = req.repo(), id = upload->commit_id()] {
          LOG(WARNING) << "put file stream into automatic commit " << repo << "@" << id
                       << " went idle; dropping the commit";
          absl::Status s = pfs->DropOpenCommit(repo, id);
          if (!s.ok()) LOG(WARNING) << "dropping idle commit " << repo << "@" << id << ": " << s;
        });
      }
    }
    absl::Status s;
    if (!req.delete_path().empty()) s = upload->Delete(req.delete_path());
    if (s.ok() && !req.path().empty()) s = upload->BeginFile(req.path(), req.append());
    if (s.ok() && !req.data().empty()) s = upload->Write(req.data());
    if (s.ok() && req.eof()) s = upload->EndFile(req.size());
    if (!s.ok()) return fail(s);
    if (req.close()) {
      closed = true;
      break;
    }
  }
  if (watch && watch->expired()) return idle_error();
  if (!upload) return fail(absl::InvalidArgumentError("put file stream carried no request"));
  if (!closed) {
    return fail(absl::AbortedError(
        absl::StrCat("put file stream into ", req.repo(), " ended before it was closed",
                     ctx->IsCancelled() ? " (client went away)" : "", "; nothing was written")));
  }
  auto commit = upload->Close();
  if (!commit.ok() && watch && watch->expired()) return idle_error();
  if (!commit.ok()) return fail(commit.status());
  *out->mutable_commit() = *commit;
  out->set_files(upload->files());
  out->set_bytes(upload->bytes());
  out->set_new_bytes(upload->new_bytes());
  return grpc::Status::OK;
}

grpc::Status ApiService::GetFile(grpc::ServerContext* ctx, const GetFileRequest* req,
                                 grpc::ServerWriter<GetFileResponse>* writer) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kRead, req->repo()));
  GetFileResponse msg;
  return ToGrpcStatus(pfs_->GetFile(
      req->repo(), req->ref(), req->path(),
      [&](const FileInfo& info) -> absl::Status {
        msg.Clear();
        *msg.mutable_file() = info;
        return writer->Write(msg) ? absl::OkStatus() : Cancelled();
      },
      [&](std::string data) -> absl::Status {
        msg.Clear();
        msg.set_data(std::move(data));
        return writer->Write(msg) ? absl::OkStatus() : Cancelled();
      }));
}

grpc::Status ApiService::InspectFile(grpc::ServerContext* ctx, const InspectFileRequest* req,
                                     FileInfo* out) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kRead, req->repo()));
  return Fill(pfs_->InspectFile(req->repo(), req->ref(), req->path()), out);
}

grpc::Status ApiService::ListFile(grpc::ServerContext* ctx, const ListFileRequest* req,
                                  grpc::ServerWriter<FileInfo>* writer) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kRead, req->repo()));
  return ToGrpcStatus(
      pfs_->ListFile(req->repo(), req->ref(), req->path(), [&](const FileInfo& f) -> absl::Status {
        return writer->Write(f) ? absl::OkStatus() : Cancelled();
      }));
}

grpc::Status ApiService::ListStagedFile(grpc::ServerContext* ctx, const ListStagedFileRequest* req,
                                        grpc::ServerWriter<FileInfo>* writer) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kRead, req->repo()));
  return ToGrpcStatus(
      pfs_->ListStagedFile(req->repo(), req->ref(), [&](const FileInfo& f) -> absl::Status {
        return writer->Write(f) ? absl::OkStatus() : Cancelled();
      }));
}

grpc::Status ApiService::GlobFile(grpc::ServerContext* ctx, const GlobFileRequest* req,
                                  grpc::ServerWriter<FileInfo>* writer) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kRead, req->repo()));
  return ToGrpcStatus(pfs_->GlobFile(req->repo(), req->ref(), req->pattern(),
                                     [&](const FileInfo& f) -> absl::Status {
                                       return writer->Write(f) ? absl::OkStatus() : Cancelled();
                                     }));
}

grpc::Status ApiService::DeleteFile(grpc::ServerContext* ctx, const DeleteFileRequest* req,
                                    DeleteFileResponse* out) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kWrite, req->repo()));
  if (auto s = CheckUserWrite(req->repo(), req->ref(), req->force()); !s.ok()) {
    return ToGrpcStatus(s);
  }
  auto c = pfs_->DeleteFile(req->repo(), req->ref(), req->path());
  if (!c.ok()) return ToGrpcStatus(c.status());
  *out->mutable_commit() = *c;
  return grpc::Status::OK;
}

grpc::Status ApiService::DiffCommit(grpc::ServerContext* ctx, const DiffCommitRequest* req,
                                    grpc::ServerWriter<FileDiff>* writer) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kRead, req->repo()));
  return ToGrpcStatus(pfs_->DiffCommit(req->repo(), req->new_ref(), req->old_ref(),
                                       [&](const FileDiff& d) -> absl::Status {
                                         return writer->Write(d) ? absl::OkStatus() : Cancelled();
                                       }));
}

grpc::Status ApiService::Revert(grpc::ServerContext* ctx, const RevertRequest* req,
                                CommitInfo* out) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kWrite, req->repo()));
  if (auto s = CheckUserWrite(req->repo(), req->branch(), req->force()); !s.ok()) {
    return ToGrpcStatus(s);
  }
  return Fill(pfs_->Revert(req->repo(), req->branch(), req->to(), req->message()), out);
}

grpc::Status ApiService::UpdateRepo(grpc::ServerContext* ctx, const UpdateRepoRequest* req,
                                    RepoInfo* out) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kWrite, req->name()));
  std::optional<std::string> description;
  if (req->has_description()) description = req->description();
  std::optional<pfs::v1::Retention> retention;
  if (req->has_retention()) retention = req->retention();
  return Fill(pfs_->UpdateRepo(req->name(), description, retention), out);
}

grpc::Status ApiService::DeleteCommit(grpc::ServerContext* ctx, const DeleteCommitRequest* req,
                                      DeleteCommitResponse* out) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kWrite, req->repo()));
  auto moved = pfs_->DeleteCommit(req->repo(), req->ref());
  if (!moved.ok()) return ToGrpcStatus(moved.status());
  for (auto& b : *moved) *out->add_moved() = std::move(b);
  return grpc::Status::OK;
}

grpc::Status ApiService::Gc(grpc::ServerContext* ctx, const GcRequest* req, GcResponse* out) {
  TUSK_AUTHORIZE(auth_->RequireAdmin(ctx));
  pfs::GcOptions options = gc_defaults_;
  if (req->has_grace()) {
    int64_t ns = google::protobuf::util::TimeUtil::DurationToNanoseconds(req->grace());
    if (ns < 0) return ToGrpcStatus(absl::InvalidArgumentError("gc grace must not be negative"));
    options.grace = absl::Nanoseconds(ns);
  }
  if (req->has_rewrite_below()) {
    if (req->rewrite_below() < 0 || req->rewrite_below() > 1) {
      return ToGrpcStatus(absl::InvalidArgumentError("rewrite_below must be from 0 to 1"));
    }
    options.rewrite_below = req->rewrite_below();
  }
  LOG(INFO) << "gc started (grace " << absl::FormatDuration(options.grace) << ")";
  auto stats = pfs_->Gc(options);
  if (!stats.ok()) return ToGrpcStatus(stats.status());
  *out = *std::move(stats);
  return grpc::Status::OK;
}

grpc::Status ApiService::Stats(grpc::ServerContext* ctx, const StatsRequest*, StatsResponse* out) {
  TUSK_AUTHORIZE(auth_->RequireAdmin(ctx));
  pfs::ObjectStore* store = pfs_->blobs()->object_store();
  *out = store->Stats();
  out->set_object_store(store->Describe());
  return grpc::Status::OK;
}

grpc::Status ApiService::Fsck(grpc::ServerContext* ctx, const FsckRequest*,
                              grpc::ServerWriter<FsckResponse>* writer) {
  TUSK_AUTHORIZE(auth_->RequireAdmin(ctx));
  LOG(INFO) << "fsck started";
  auto stats = pfs_->Fsck([&](const std::string& problem) {
    LOG(WARNING) << "fsck: " << problem;
    FsckResponse r;
    r.set_problem(problem);
    writer->Write(r);  // A client that went away misses the rest; fsck still completes.
  });
  if (!stats.ok()) return ToGrpcStatus(stats.status());
  writer->Write(*stats);
  LOG(INFO) << "fsck done: " << stats->commits() << " commits, " << stats->problems()
            << " problems";
  return grpc::Status::OK;
}

}  // namespace tusk::server
