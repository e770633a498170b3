#include "server/pps_service.h"

#include "common/grpc_status.h"

namespace tusk::server {

grpc::Status PpsService::CreatePipeline(grpc::ServerContext*,
                                        const pps::v1::CreatePipelineRequest* req,
                                        pps::v1::PipelineInfo* out) {
  return Fill(pipelines_->Create(req->spec(), req->update()), out);
}

grpc::Status PpsService::InspectPipeline(grpc::ServerContext*,
                                         const pps::v1::InspectPipelineRequest* req,
                                         pps::v1::PipelineInfo* out) {
  return Fill(pipelines_->Inspect(req->name()), out);
}

grpc::Status PpsService::ListPipeline(grpc::ServerContext*, const pps::v1::ListPipelineRequest*,
                                      pps::v1::ListPipelineResponse* out) {
  auto list = pipelines_->List();
  if (!list.ok()) return ToGrpcStatus(list.status());
  for (auto& p : *list) *out->add_pipelines() = std::move(p);
  return grpc::Status::OK;
}

grpc::Status PpsService::DeletePipeline(grpc::ServerContext*,
                                        const pps::v1::DeletePipelineRequest* req,
                                        pps::v1::DeletePipelineResponse*) {
  return ToGrpcStatus(pipelines_->Delete(req->name(), req->keep_repo()));
}

grpc::Status PpsService::StartPipeline(grpc::ServerContext*,
                                       const pps::v1::StartPipelineRequest* req,
                                       pps::v1::PipelineInfo* out) {
  return Fill(pipelines_->SetState(req->name(), pps::v1::RUNNING), out);
}

grpc::Status PpsService::StopPipeline(grpc::ServerContext*, const pps::v1::StopPipelineRequest* req,
                                      pps::v1::PipelineInfo* out) {
  return Fill(pipelines_->SetState(req->name(), pps::v1::PAUSED), out);
}

}  // namespace tusk::server
