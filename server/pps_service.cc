#include "server/pps_service.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "common/status.h"
#include "dispatcher/spec.h"
#include "google/protobuf/util/time_util.h"

namespace tusk::server {

using google::protobuf::util::TimeUtil;

void PpsService::AddWarnings(pps::v1::PipelineInfo* info) const {
  const std::string& image = info->spec().transform().image();
  if (backend_ != nullptr && !backend_->RunsImages() && !image.empty()) {
    info->add_warnings(absl::StrCat(
        "transform.image ", image, " is not used: this tuskd runs pipelines on ", backend_->name(),
        " runners, as processes on its own host (in bubblewrap), so the command must exist "
        "there; tuskd --runners podman or --runners kubernetes runs it in its image"));
  }
}

absl::StatusOr<pps::v1::PipelineInfo> PpsService::WithLastJob(pps::v1::PipelineInfo info) {
  info.set_sandbox(dispatcher_->RunnerSandbox(info.spec().pipeline().name()));
  if (backend_ != nullptr) {
    if (auto status = backend_->Status(info.spec().pipeline().name())) {
      *info.mutable_runners() = *status;
    }
  }
  AddWarnings(&info);
  RETURN_IF_ERROR(
      dispatcher_->ListJobs(info.spec().pipeline().name(), 1, [&](const pps::v1::JobInfo& j) {
        info.set_last_job(j.id());
        info.set_last_job_state(pps::v1::JobState_Name(j.state()));
        return absl::OkStatus();
      }));
  return info;
}

absl::Status PpsService::CheckCreate(const grpc::ServerContext* ctx,
                                     const pps::v1::PipelineSpec& spec) {
  // A pipeline writes its output repo and reads its inputs, with the rights
  // of the one who made it.
  ASSIGN_OR_RETURN(Caller caller, auth_->Require(ctx, Access::kWrite, spec.pipeline().name()));
  for (const pps::v1::PFSInput* in : dispatcher::PfsInputs(spec.input())) {
    RETURN_IF_ERROR(auth_->Check(caller, Access::kRead, in->repo()));
  }
  return absl::OkStatus();
}

grpc::Status PpsService::CreatePipeline(grpc::ServerContext* ctx,
                                        const pps::v1::CreatePipelineRequest* req,
                                        pps::v1::PipelineInfo* out) {
  TUSK_AUTHORIZE(CheckCreate(ctx, req->spec()));
  if (backend_ != nullptr) {
    if (auto st = backend_->CheckSpec(req->spec()); !st.ok()) return ToGrpcStatus(st);
  }
  auto info = dispatcher_->CreatePipeline(req->spec(), req->update(), req->reprocess());
  if (info.ok()) AddWarnings(&*info);
  return Fill(std::move(info), out);
}

grpc::Status PpsService::InspectPipeline(grpc::ServerContext* ctx,
                                         const pps::v1::InspectPipelineRequest* req,
                                         pps::v1::PipelineInfo* out) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kRead, req->name()));
  auto info = pipelines_->Inspect(req->name());
  if (!info.ok()) return ToGrpcStatus(info.status());
  return Fill(WithLastJob(*info), out);
}

grpc::Status PpsService::ListPipeline(grpc::ServerContext* ctx, const pps::v1::ListPipelineRequest*,
                                      pps::v1::ListPipelineResponse* out) {
  TUSK_AUTHORIZE_AS(Caller caller, auth_->RequireAuthenticated(ctx));
  auto list = pipelines_->List();
  if (!list.ok()) return ToGrpcStatus(list.status());
  for (auto& p : *list) {
    if (!auth_->Can(caller, Access::kRead, p.spec().pipeline().name())) continue;
    auto full = WithLastJob(std::move(p));
    if (!full.ok()) return ToGrpcStatus(full.status());
    *out->add_pipelines() = std::move(*full);
  }
  return grpc::Status::OK;
}

grpc::Status PpsService::DeletePipeline(grpc::ServerContext* ctx,
                                        const pps::v1::DeletePipelineRequest* req,
                                        pps::v1::DeletePipelineResponse*) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kWrite, req->name()));
  absl::Status s = dispatcher_->DeletePipeline(req->name(), req->keep_repo());
  if (s.ok() && auth_->tokens() != nullptr) s = auth_->tokens()->RevokeRunnerTokens(req->name());
  return ToGrpcStatus(s);
}

grpc::Status PpsService::StartPipeline(grpc::ServerContext* ctx,
                                       const pps::v1::StartPipelineRequest* req,
                                       pps::v1::PipelineInfo* out) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kWrite, req->name()));
  return Fill(dispatcher_->SetPipelineState(req->name(), pps::v1::RUNNING), out);
}

grpc::Status PpsService::StopPipeline(grpc::ServerContext* ctx,
                                      const pps::v1::StopPipelineRequest* req,
                                      pps::v1::PipelineInfo* out) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kWrite, req->name()));
  return Fill(dispatcher_->SetPipelineState(req->name(), pps::v1::PAUSED), out);
}

grpc::Status PpsService::ListJob(grpc::ServerContext* ctx, const pps::v1::ListJobRequest* req,
                                 grpc::ServerWriter<pps::v1::JobInfo>* writer) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kRead, req->pipeline()));
  return ToGrpcStatus(
      dispatcher_->ListJobs(req->pipeline(), req->limit(), [&](const pps::v1::JobInfo& j) {
        if (!writer->Write(j)) return absl::CancelledError("client went away");
        return absl::OkStatus();
      }));
}

grpc::Status PpsService::InspectJob(grpc::ServerContext* ctx, const pps::v1::InspectJobRequest* req,
                                    grpc::ServerWriter<pps::v1::JobInfo>* writer) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kRead, req->pipeline()));
  if (!req->wait()) {
    auto j = dispatcher_->InspectJob(req->pipeline(), req->job());
    if (!j.ok()) return ToGrpcStatus(j.status());
    writer->Write(*j);
    return grpc::Status::OK;
  }
  return ToGrpcStatus(dispatcher_->WaitJob(
      req->pipeline(), req->job(), [ctx] { return ctx->IsCancelled(); },
      [&](const pps::v1::JobInfo& j) {
        if (!writer->Write(j)) return absl::CancelledError("client went away");
        return absl::OkStatus();
      }));
}

grpc::Status PpsService::ListDatum(grpc::ServerContext* ctx, const pps::v1::ListDatumRequest* req,
                                   grpc::ServerWriter<pps::v1::DatumInfo>* writer) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kRead, req->pipeline()));
  return ToGrpcStatus(
      dispatcher_->ListDatums(req->pipeline(), req->job(), [&](const pps::v1::DatumInfo& d) {
        if (!writer->Write(d)) return absl::CancelledError("client went away");
        return absl::OkStatus();
      }));
}

grpc::Status PpsService::InspectDatum(grpc::ServerContext* ctx,
                                      const pps::v1::InspectDatumRequest* req,
                                      pps::v1::DatumInfo* out) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kRead, req->pipeline()));
  return Fill(dispatcher_->InspectDatum(req->pipeline(), req->job(), req->datum()), out);
}

grpc::Status PpsService::GetLogs(grpc::ServerContext* ctx, const pps::v1::GetLogsRequest* req,
                                 grpc::ServerWriter<pps::v1::LogMessage>* writer) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kRead, req->pipeline()));
  return ToGrpcStatus(dispatcher_->GetLogs(
      req->pipeline(), req->job(), req->datum(), req->follow(),
      [ctx] { return ctx->IsCancelled(); },
      [&](const pps::v1::LogMessage& m) {
        if (!writer->Write(m)) return absl::CancelledError("client went away");
        return absl::OkStatus();
      }));
}

grpc::Status PpsService::StopJob(grpc::ServerContext* ctx, const pps::v1::StopJobRequest* req,
                                 pps::v1::JobInfo* out) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kWrite, req->pipeline()));
  return Fill(dispatcher_->StopJob(req->pipeline(), req->job(), req->reason()), out);
}

grpc::Status PpsService::DeleteJob(grpc::ServerContext* ctx, const pps::v1::DeleteJobRequest* req,
                                   pps::v1::DeleteJobResponse*) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kWrite, req->pipeline()));
  return ToGrpcStatus(dispatcher_->DeleteJob(req->pipeline(), req->job()));
}

grpc::Status PpsService::RestartDatum(grpc::ServerContext* ctx,
                                      const pps::v1::RestartDatumRequest* req,
                                      pps::v1::JobInfo* out) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kWrite, req->pipeline()));
  std::vector<std::string> datums(req->datums().begin(), req->datums().end());
  return Fill(dispatcher_->RestartDatums(req->pipeline(), req->job(), datums), out);
}

grpc::Status PpsService::RerunPipeline(grpc::ServerContext* ctx,
                                       const pps::v1::RerunPipelineRequest* req,
                                       pps::v1::JobInfo* out) {
  TUSK_AUTHORIZE(auth_->Require(ctx, Access::kWrite, req->name()));
  return Fill(dispatcher_->RerunPipeline(req->name(), req->reprocess()), out);
}

// ---------------------------------------------------------------------------

grpc::Status WorkerService::Lease(grpc::ServerContext* ctx, const pps::v1::LeaseRequest* req,
                                  pps::v1::LeaseResponse* out) {
  TUSK_AUTHORIZE(auth_->RequireRunner(ctx, req->pipeline()));
  return Fill(dispatcher_->Lease(*req), out);
}

grpc::Status WorkerService::Heartbeat(grpc::ServerContext* ctx,
                                      const pps::v1::HeartbeatRequest* req,
                                      pps::v1::HeartbeatResponse* out) {
  TUSK_AUTHORIZE_AS(Caller caller, auth_->RequireAuthenticated(ctx));
  pps::v1::HeartbeatRequest mine = *req;
  if (!caller.everyone) {
    // A runner renews only its own pipeline's leases; any other is lost to it.
    mine.clear_leases();
    for (const auto& lease : req->leases()) {
      auto pipeline = dispatcher_->LeasePipeline(lease);
      if (pipeline.ok() && auth_->CheckRunner(caller, *pipeline).ok()) {
        mine.add_leases(lease);
      } else {
        out->add_lost(lease);
      }
    }
  }
  pps::v1::HeartbeatResponse renewed = dispatcher_->Heartbeat(mine);
  for (const auto& lost : renewed.lost()) out->add_lost(lost);
  return grpc::Status::OK;
}

grpc::Status WorkerService::FinishDatum(grpc::ServerContext* ctx,
                                        grpc::ServerReader<pps::v1::FinishDatumRequest>* reader,
                                        pps::v1::FinishDatumResponse* out) {
  TUSK_AUTHORIZE_AS(Caller caller, auth_->RequireAuthenticated(ctx));
  pps::v1::FinishDatumRequest first;
  if (!reader->Read(&first)) {
    return ToGrpcStatus(absl::InvalidArgumentError("FinishDatum stream is empty"));
  }
  if (!caller.everyone) {
    auto pipeline = dispatcher_->LeasePipeline(first.lease());
    if (!pipeline.ok()) return ToGrpcStatus(pipeline.status());
    TUSK_AUTHORIZE(auth_->CheckRunner(caller, *pipeline));
  }
  auto output = dispatcher_->BeginDatumOutput(first.lease());
  if (!output.ok()) return ToGrpcStatus(output.status());
  dispatcher::DatumResult result;
  result.success = first.success();
  result.recovered = !first.success() && first.recovered();
  result.error = first.error();
  result.log = first.log();
  result.log_truncated = first.log_truncated();
  result.stats = first.stats();
  absl::Status up;
  if (result.success) {
    pps::v1::FinishDatumRequest msg;
    bool closed = false;
    auto handle = [&](const pps::v1::FinishDatumRequest& m) -> absl::Status {
      if (!m.path().empty()) RETURN_IF_ERROR((*output)->BeginFile(m.path()));
      if (!m.data().empty()) RETURN_IF_ERROR((*output)->Write(m.data()));
      if (m.eof()) RETURN_IF_ERROR((*output)->EndFile(m.size()));
      if (m.close()) closed = true;
      return absl::OkStatus();
    };
    up = handle(first);
    while (up.ok() && !closed && reader->Read(&msg)) up = handle(msg);
    if (up.ok() && !closed) {
      // The runner went away mid-upload: its lease runs out and the datum
      // is leased again; nothing of this attempt is kept.
      return ToGrpcStatus(absl::CancelledError("datum output stream ended before close"));
    }
    out->set_files((*output)->files());
    out->set_bytes((*output)->bytes());
  }
  return ToGrpcStatus((*output)->Finish(std::move(result), up));
}

}  // namespace tusk::server
