#pragma once

// PpsService: the gRPC face of pipelines and jobs (service tusk.pps.v1.Pps),
// and WorkerService: the runner protocol (service tusk.pps.v1.Worker), both
// over dispatcher::Dispatcher. Thread-safe. Do not own what they are given.

#include "dispatcher/dispatcher.h"
#include "pfs/pfs.h"
#include "proto/pps.grpc.pb.h"
#include "server/auth.h"

namespace tusk::server {

class PpsService final : public pps::v1::Pps::Service {
 public:
  PpsService(dispatcher::Pipelines* pipelines, dispatcher::Dispatcher* dispatcher,
             const Authorizer* auth)
      : pipelines_(pipelines), dispatcher_(dispatcher), auth_(auth) {}

  // The backend that runs pipelines' runners (not owned; null: runners are
  // started elsewhere). It checks specs at create time, says whether
  // transform.image is used (PipelineInfo.warnings when not) and how the
  // runners are doing (PipelineInfo.runners). Set before serving.
  void SetRunnerBackend(dispatcher::RunnerBackend* backend) { backend_ = backend; }

  grpc::Status CreatePipeline(grpc::ServerContext*, const pps::v1::CreatePipelineRequest*,
                              pps::v1::PipelineInfo*) override;
  grpc::Status InspectPipeline(grpc::ServerContext*, const pps::v1::InspectPipelineRequest*,
                               pps::v1::PipelineInfo*) override;
  grpc::Status ListPipeline(grpc::ServerContext*, const pps::v1::ListPipelineRequest*,
                            pps::v1::ListPipelineResponse*) override;
  grpc::Status DeletePipeline(grpc::ServerContext*, const pps::v1::DeletePipelineRequest*,
                              pps::v1::DeletePipelineResponse*) override;
  grpc::Status StartPipeline(grpc::ServerContext*, const pps::v1::StartPipelineRequest*,
                             pps::v1::PipelineInfo*) override;
  grpc::Status StopPipeline(grpc::ServerContext*, const pps::v1::StopPipelineRequest*,
                            pps::v1::PipelineInfo*) override;
  grpc::Status ListJob(grpc::ServerContext*, const pps::v1::ListJobRequest*,
                       grpc::ServerWriter<pps::v1::JobInfo>*) override;
  grpc::Status InspectJob(grpc::ServerContext*, const pps::v1::InspectJobRequest*,
                          grpc::ServerWriter<pps::v1::JobInfo>*) override;
  grpc::Status ListDatum(grpc::ServerContext*, const pps::v1::ListDatumRequest*,
                         grpc::ServerWriter<pps::v1::DatumInfo>*) override;
  grpc::Status InspectDatum(grpc::ServerContext*, const pps::v1::InspectDatumRequest*,
                            pps::v1::DatumInfo*) override;
  grpc::Status GetLogs(grpc::ServerContext*, const pps::v1::GetLogsRequest*,
                       grpc::ServerWriter<pps::v1::LogMessage>*) override;
  grpc::Status StopJob(grpc::ServerContext*, const pps::v1::StopJobRequest*,
                       pps::v1::JobInfo*) override;
  grpc::Status DeleteJob(grpc::ServerContext*, const pps::v1::DeleteJobRequest*,
                         pps::v1::DeleteJobResponse*) override;
  grpc::Status RestartDatum(grpc::ServerContext*, const pps::v1::RestartDatumRequest*,
                            pps::v1::JobInfo*) override;
  grpc::Status RerunPipeline(grpc::ServerContext*, const pps::v1::RerunPipelineRequest*,
                             pps::v1::JobInfo*) override;

 private:
  // Whether the caller may create or update the pipeline `spec` describes.
  absl::Status CheckCreate(const grpc::ServerContext* ctx, const pps::v1::PipelineSpec& spec);
  // The warnings of a pipeline as this tuskd runs it.
  void AddWarnings(pps::v1::PipelineInfo* info) const;
  // The pipeline's record with its last job filled in.
  absl::StatusOr<pps::v1::PipelineInfo> WithLastJob(pps::v1::PipelineInfo info);

  dispatcher::Pipelines* const pipelines_;
  dispatcher::Dispatcher* const dispatcher_;
  const Authorizer* const auth_;
  dispatcher::RunnerBackend* backend_ = nullptr;
};

class WorkerService final : public pps::v1::Worker::Service {
 public:
  // Only a pipeline's runner token may lease, renew or finish its datums.
  WorkerService(dispatcher::Dispatcher* dispatcher, const Authorizer* auth)
      : dispatcher_(dispatcher), auth_(auth) {}

  grpc::Status Lease(grpc::ServerContext*, const pps::v1::LeaseRequest*,
                     pps::v1::LeaseResponse*) override;
  grpc::Status Heartbeat(grpc::ServerContext*, const pps::v1::HeartbeatRequest*,
                         pps::v1::HeartbeatResponse*) override;
  grpc::Status FinishDatum(grpc::ServerContext*, grpc::ServerReader<pps::v1::FinishDatumRequest>*,
                           pps::v1::FinishDatumResponse*) override;

 private:
  dispatcher::Dispatcher* const dispatcher_;
  const Authorizer* const auth_;
};

}  // namespace tusk::server
