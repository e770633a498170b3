#pragma once

// PpsService: the gRPC face of pipelines (service tusk.pps.v1.Pps), over
// dispatcher::Pipelines. Thread-safe. Does not own `pipelines`.

#include "dispatcher/pipelines.h"
#include "proto/pps.grpc.pb.h"

namespace tusk::server {

class PpsService final : public pps::v1::Pps::Service {
 public:
  explicit PpsService(dispatcher::Pipelines* pipelines) : pipelines_(pipelines) {}

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

 private:
  dispatcher::Pipelines* const pipelines_;
};

}  // namespace tusk::server
