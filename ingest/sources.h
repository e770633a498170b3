#pragma once

// Sources: the Kafka sources a tuskd knows, the way Pipelines holds pipelines.
// A source's spec is checked and completed with defaults (NormalizeSourceSpec),
// checked against the other sources (two sources must not feed one topic into
// one branch: they would fight over its offsets), and stored as a durable
// record (kSourceSpace, see pfs/keys.h) that survives an index rebuild.
//
// Live status is put together on each read: committed offsets from the branch
// head's carried metadata (the truth for exactly-once ingest), high
// watermarks and rates from the members' periodic reports (Report), kept in
// memory only and forgotten 30 s after a member's last report.
//
// Thread-safe: one mutex serializes spec changes and guards the reports.
// Does not own `pfs`.

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pfs/key_space.h"
#include "pfs/keys.h"
#include "pfs/pfs.h"
#include "proto/ingest.pb.h"

namespace tusk::ingest {

// Checks a spec (InvalidArgument naming the field) and fills in defaults.
absl::Status NormalizeSourceSpec(v1::SourceSpec* spec);

class Sources {
 public:
  explicit Sources(pfs::Pfs* pfs) : pfs_(pfs), space_(pfs->Space(pfs::kSourceSpace)) {}

  // Stores a new source (AlreadyExists if there is one by that name, unless
  // `update`), creating its repo if needed. InvalidArgument: the spec;
  // AlreadyExists: another source ingests one of its topics into the same
  // branch.
  absl::StatusOr<v1::SourceInfo> Create(v1::SourceSpec spec, bool update);
  // The source with its live status; NotFound if there is none.
  absl::StatusOr<v1::SourceInfo> Inspect(const std::string& name);
  absl::StatusOr<std::vector<v1::SourceInfo>> List();
  // Deletes the source; its repo and commits stay.
  absl::Status Delete(const std::string& name);
  // Records a member's report; returns the source's spec (NotFound if the
  // source was deleted: the member stops).
  absl::StatusOr<v1::SourceSpec> Report(const v1::ReportSourceRequest& report);

 private:
  struct MemberReport {
    v1::ReportSourceRequest report;
    absl::Time at;
  };

  // The stored record of a source (its spec and creation time).
  absl::StatusOr<std::optional<v1::SourceInfo>> GetStored(const std::string& name);
  // The same, NotFound if there is no such source.
  absl::StatusOr<v1::SourceInfo> GetExisting(const std::string& name);
  // `stored` completed with live status: offsets, gaps, members.
  absl::StatusOr<v1::SourceInfo> Info(v1::SourceInfo stored);
  // Validates against other sources, creates the repo if needed, stores the
  // spec; returns the stored record.
  absl::StatusOr<v1::SourceInfo> StoreSpec(const v1::SourceSpec& spec, bool update);

  pfs::Pfs* const pfs_;
  const pfs::KeySpace space_;  // kSourceSpace
  absl::Mutex mu_;             // serializes spec changes; guards reports_
  std::map<std::string, std::map<std::string, MemberReport>> reports_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tusk::ingest
