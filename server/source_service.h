#pragma once

// SourceService: the gRPC face of ingest sources (service tusk.ingest.v1.Sources)
// over ingest::Sources, which holds the specs and the members' reports.
//
// Thread-safe. Does not own `sources`.

#include "ingest/sources.h"
#include "proto/ingest.grpc.pb.h"

namespace tusk::server {

class SourceService final : public ingest::v1::Sources::Service {
 public:
  explicit SourceService(ingest::Sources* sources) : sources_(sources) {}

  grpc::Status CreateSource(grpc::ServerContext*, const ingest::v1::CreateSourceRequest*,
                            ingest::v1::SourceInfo*) override;
  grpc::Status InspectSource(grpc::ServerContext*, const ingest::v1::InspectSourceRequest*,
                             ingest::v1::SourceInfo*) override;
  grpc::Status ListSource(grpc::ServerContext*, const ingest::v1::ListSourceRequest*,
                          ingest::v1::ListSourceResponse*) override;
  grpc::Status DeleteSource(grpc::ServerContext*, const ingest::v1::DeleteSourceRequest*,
                            ingest::v1::DeleteSourceResponse*) override;
  grpc::Status ReportSource(grpc::ServerContext*, const ingest::v1::ReportSourceRequest*,
                            ingest::v1::ReportSourceResponse*) override;

 private:
  ingest::Sources* const sources_;
};

}  // namespace tusk::server
