#pragma once

// The job planner: which datums a job must run. Given a pipeline's spec, the
// job's resolved inputs and what the pipeline's records say (its current
// datums, the datum hashes that succeeded, what the job did before a
// restart), it lists the datums the job touches:
//   - changed or new datums: PENDING, or SKIPPED with an earlier output when
//     their hash succeeded before, or as they were if the job finished them
//     before a restart;
//   - vanished datums: REMOVED (their output goes);
//   - unchanged datums are not touched.
// With a single pfs input and a base from the previous job, only the
// difference of the input trees is walked (work proportional to the
// change); otherwise every datum is listed and compared by hash.
//
// Pure apart from its reads of the node store and the job store: it writes
// nothing. Thread-compatible.

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "dispatcher/datums.h"
#include "dispatcher/job_store.h"
#include "pfs/tree.h"
#include "proto/pps.pb.h"

namespace tusk::dispatcher {

struct JobPlan {
  // Every datum the job touches, by datum key.
  std::map<std::string, DatumInfo> touched;
  // The output root of each touched datum in the pipeline's current state
  // ("" if it had none or failed): what the merge replaces.
  std::map<std::string, std::string> old_roots;
  uint64_t total = 0;    // datums of the job's inputs
  uint64_t removed = 0;  // datums that vanished
  bool incremental = false;
};

// Plans job `job` of `pipeline` over `inputs`; `rt` is the pipeline's
// runtime (the salt and the base of an incremental plan).
absl::StatusOr<JobPlan> PlanJob(pfs::NodeStore* nodes, const JobStore& store,
                                const std::string& pipeline, const pps::v1::PipelineSpec& spec,
                                const std::string& job, const ResolvedInputs& inputs,
                                const PipelineRuntime& rt);

}  // namespace tusk::dispatcher
