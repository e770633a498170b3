#pragma once

// SourceService: the gRPC face of ingest sources (service tusk.ingest.v1.Sources).
// Specs are stored in tuskd's index; live status (Kafka high watermarks, member
// rates) comes from the members' periodic reports and is kept in memory only;
// committed offsets come from the branch head's carried metadata, which is the
// truth for exactly-once ingest.
//
// Thread-safe. Does not own `pfs`.

#include <map>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pfs/pfs.h"
#include "proto/ingest.grpc.pb.h"

namespace tusk::server {

class SourceService final : public ingest::v1::Sources::Service {
 public:
  explicit SourceService(pfs::Pfs* pfs) : pfs_(pfs) {}

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
  struct MemberReport {
    ingest::v1::ReportSourceRequest report;
    absl::Time at;
  };

  // The stored record of a source (its spec and creation time).
  absl::StatusOr<std::optional<ingest::v1::SourceInfo>> GetStored(const std::string& name);
  // The same, NotFound if there is no such source.
  absl::StatusOr<ingest::v1::SourceInfo> GetExisting(const std::string& name);
  // `stored` completed with live status: offsets, gaps, members.
  absl::StatusOr<ingest::v1::SourceInfo> Info(ingest::v1::SourceInfo stored);
  // Validates against other sources, creates the repo if needed, stores the
  // spec; returns the stored record.
  absl::StatusOr<ingest::v1::SourceInfo> StoreSpec(const ingest::v1::SourceSpec& spec, bool update);

  pfs::Pfs* const pfs_;
  absl::Mutex mu_;  // serializes spec changes; guards reports_
  std::map<std::string, std::map<std::string, MemberReport>> reports_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tusk::server
