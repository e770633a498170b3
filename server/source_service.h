#pragma once

// SourceService: the gRPC face of ingest sources (service tusk.ingest.v1.Sources)
// over ingest::Sources, which holds the specs and the members' reports.
// Secrets among a source's Kafka properties are shown as "[hidden]" (and a
// spec updated with "[hidden]" keeps the value it had); only ReportSource,
// which members call, returns them.
//
// Thread-safe. Does not own `sources`.

#include "ingest/sources.h"
#include "proto/ingest.grpc.pb.h"
#include "server/auth.h"

namespace tusk::server {

class SourceService final : public ingest::v1::Sources::Service {
 public:
  SourceService(ingest::Sources* sources, const Authorizer* auth)
      : sources_(sources), auth_(auth) {}

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
  // The source `name`, if the caller may have `access` to its repo.
  absl::StatusOr<ingest::v1::SourceInfo> Authorized(const grpc::ServerContext* ctx,
                                                    const std::string& name, Access access);

  ingest::Sources* const sources_;
  const Authorizer* const auth_;
};

}  // namespace tusk::server
