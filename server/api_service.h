#pragma once

// ApiService: the gRPC face of Pfs (service tusk.pfs.v1.API). Converts between
// protobuf requests and Pfs calls and maps absl::Status to grpc::Status once,
// here. Thread-safe (gRPC calls handlers concurrently); owns nothing.

#include "dispatcher/dispatcher.h"
#include "pfs/pfs.h"
#include "proto/pfs.grpc.pb.h"
#include "server/auth.h"
#include "server/stream_watchdog.h"

namespace tusk::server {

class ApiService final : public pfs::v1::API::Service {
 public:
  // Every call is checked by `auth` (not owned).
  ApiService(pfs::Pfs* pfs, const Authorizer* auth) : pfs_(pfs), auth_(auth) {}
  // Where InspectCommitSet --wait learns whether jobs of a commit set are
  // still to run, and is woken when a commit finishes or a job ends (not
  // owned; set before serving).
  // Also what guards pipelines' repos from users' writes (Dispatcher::
  // CheckUserWrite, CheckRepoDelete).
  void SetDispatcher(dispatcher::Dispatcher* jobs) { jobs_ = jobs; }

  grpc::Status Version(grpc::ServerContext*, const pfs::v1::VersionRequest*,
                       pfs::v1::VersionResponse*) override;
  grpc::Status CreateRepo(grpc::ServerContext*, const pfs::v1::CreateRepoRequest*,
                          pfs::v1::RepoInfo*) override;
  grpc::Status InspectRepo(grpc::ServerContext*, const pfs::v1::InspectRepoRequest*,
                           pfs::v1::RepoInfo*) override;
  grpc::Status ListRepo(grpc::ServerContext*, const pfs::v1::ListRepoRequest*,
                        pfs::v1::ListRepoResponse*) override;
  grpc::Status DeleteRepo(grpc::ServerContext*, const pfs::v1::DeleteRepoRequest*,
                          pfs::v1::DeleteRepoResponse*) override;
  grpc::Status CreateBranch(grpc::ServerContext*, const pfs::v1::CreateBranchRequest*,
                            pfs::v1::BranchInfo*) override;
  grpc::Status InspectBranch(grpc::ServerContext*, const pfs::v1::InspectBranchRequest*,
                             pfs::v1::BranchInfo*) override;
  grpc::Status ListBranch(grpc::ServerContext*, const pfs::v1::ListBranchRequest*,
                          pfs::v1::ListBranchResponse*) override;
  grpc::Status DeleteBranch(grpc::ServerContext*, const pfs::v1::DeleteBranchRequest*,
                            pfs::v1::DeleteBranchResponse*) override;
  grpc::Status StartCommit(grpc::ServerContext*, const pfs::v1::StartCommitRequest*,
                           pfs::v1::CommitInfo*) override;
  grpc::Status FinishCommit(grpc::ServerContext*, const pfs::v1::FinishCommitRequest*,
                            pfs::v1::CommitInfo*) override;
  grpc::Status InspectCommit(grpc::ServerContext*, const pfs::v1::InspectCommitRequest*,
                             pfs::v1::CommitInfo*) override;
  grpc::Status InspectCommitSet(grpc::ServerContext*, const pfs::v1::InspectCommitSetRequest*,
                                grpc::ServerWriter<pfs::v1::CommitInfo>*) override;
  grpc::Status ListCommit(grpc::ServerContext*, const pfs::v1::ListCommitRequest*,
                          grpc::ServerWriter<pfs::v1::CommitInfo>*) override;
  grpc::Status PutFile(grpc::ServerContext*, grpc::ServerReader<pfs::v1::PutFileRequest>*,
                       pfs::v1::PutFileResponse*) override;
  grpc::Status GetFile(grpc::ServerContext*, const pfs::v1::GetFileRequest*,
                       grpc::ServerWriter<pfs::v1::GetFileResponse>*) override;
  grpc::Status InspectFile(grpc::ServerContext*, const pfs::v1::InspectFileRequest*,
                           pfs::v1::FileInfo*) override;
  grpc::Status ListFile(grpc::ServerContext*, const pfs::v1::ListFileRequest*,
                        grpc::ServerWriter<pfs::v1::FileInfo>*) override;
  grpc::Status ListStagedFile(grpc::ServerContext*, const pfs::v1::ListStagedFileRequest*,
                              grpc::ServerWriter<pfs::v1::FileInfo>*) override;
  grpc::Status GlobFile(grpc::ServerContext*, const pfs::v1::GlobFileRequest*,
                        grpc::ServerWriter<pfs::v1::FileInfo>*) override;
  grpc::Status DeleteFile(grpc::ServerContext*, const pfs::v1::DeleteFileRequest*,
                          pfs::v1::DeleteFileResponse*) override;
  grpc::Status DiffCommit(grpc::ServerContext*, const pfs::v1::DiffCommitRequest*,
                          grpc::ServerWriter<pfs::v1::FileDiff>*) override;
  grpc::Status Revert(grpc::ServerContext*, const pfs::v1::RevertRequest*,
                      pfs::v1::CommitInfo*) override;
  grpc::Status Fsck(grpc::ServerContext*, const pfs::v1::FsckRequest*,
                    grpc::ServerWriter<pfs::v1::FsckResponse>*) override;
  grpc::Status UpdateRepo(grpc::ServerContext*, const pfs::v1::UpdateRepoRequest*,
                          pfs::v1::RepoInfo*) override;
  grpc::Status DeleteCommit(grpc::ServerContext*, const pfs::v1::DeleteCommitRequest*,
                            pfs::v1::DeleteCommitResponse*) override;
  grpc::Status Gc(grpc::ServerContext*, const pfs::v1::GcRequest*, pfs::v1::GcResponse*) override;
  grpc::Status Stats(grpc::ServerContext*, const pfs::v1::StatsRequest*,
                     pfs::v1::StatsResponse*) override;

  // The GC options a request does not override (tuskd's --gc-grace); set
  // before serving.
  void SetGcDefaults(const pfs::GcOptions& options) { gc_defaults_ = options; }
  // Cancels PutFile streams that send nothing for its idle time (not owned;
  // set before serving). Without one, a stream may stay idle forever.
  void SetPutWatchdog(StreamWatchdog* watchdog) { put_watchdog_ = watchdog; }

 private:
  // Dispatcher::CheckUserWrite for the branch of `ref` unless `force`.
  absl::Status CheckUserWrite(const std::string& repo, const std::string& ref, bool force);

  pfs::GcOptions gc_defaults_;
  StreamWatchdog* put_watchdog_ = nullptr;
  dispatcher::Dispatcher* jobs_ = nullptr;
  pfs::Pfs* const pfs_;
  const Authorizer* const auth_;
};

}  // namespace tusk::server
