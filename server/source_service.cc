#include "server/source_service.h"

#include "common/grpc_status.h"

namespace tusk::server {

using namespace tusk::ingest::v1;  // NOLINT: the request/response types

grpc::Status SourceService::CreateSource(grpc::ServerContext*, const CreateSourceRequest* req,
                                         SourceInfo* out) {
  auto info = sources_->Create(req->spec(), req->update());
  if (!info.ok()) return ToGrpcStatus(info.status());
  *out = *std::move(info);
  return grpc::Status::OK;
}

grpc::Status SourceService::InspectSource(grpc::ServerContext*, const InspectSourceRequest* req,
                                          SourceInfo* out) {
  auto info = sources_->Inspect(req->name());
  if (!info.ok()) return ToGrpcStatus(info.status());
  *out = *std::move(info);
  return grpc::Status::OK;
}

grpc::Status SourceService::ListSource(grpc::ServerContext*, const ListSourceRequest*,
                                       ListSourceResponse* out) {
  auto all = sources_->List();
  if (!all.ok()) return ToGrpcStatus(all.status());
  for (auto& info : *all) *out->add_sources() = std::move(info);
  return grpc::Status::OK;
}

grpc::Status SourceService::DeleteSource(grpc::ServerContext*, const DeleteSourceRequest* req,
                                         DeleteSourceResponse*) {
  return ToGrpcStatus(sources_->Delete(req->name()));
}

grpc::Status SourceService::ReportSource(grpc::ServerContext*, const ReportSourceRequest* req,
                                         ReportSourceResponse* out) {
  auto spec = sources_->Report(*req);
  if (!spec.ok()) return ToGrpcStatus(spec.status());
  *out->mutable_spec() = *std::move(spec);
  return grpc::Status::OK;
}

}  // namespace tusk::server
