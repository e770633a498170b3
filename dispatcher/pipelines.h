#pragma once

// Pipelines: the stored pipeline specs of a tuskd, and the rules that hold
// between them and the repos: every input repo exists, pipelines form no
// cycle, and each pipeline owns an output repo of its own name.
//
// Records live in the PFS index in kPipelineSpace (PipelineInfo; see
// pfs/keys.h), logged to the object store (they survive an index rebuild).
//
// Thread-safe: changes are serialized by one mutex; reads go to the index.
// Does not own `pfs`.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "pfs/keys.h"
#include "pfs/pfs.h"
#include "proto/pps.pb.h"

namespace tusk::dispatcher {

using pps::v1::PipelineInfo;
using pps::v1::PipelineSpec;

class Pipelines {
 public:
  explicit Pipelines(pfs::Pfs* pfs) : pfs_(pfs), space_(pfs->Space(pfs::kPipelineSpace)) {}

  // Validates and stores a new pipeline (AlreadyExists if there is one by
  // that name, unless `update`), creating its output repo. Errors:
  // InvalidArgument (the spec; a cycle), NotFound (an input repo),
  // AlreadyExists (the name, or a repo of that name that is not a
  // pipeline's output).
  absl::StatusOr<PipelineInfo> Create(PipelineSpec spec, bool update);
  absl::StatusOr<PipelineInfo> Inspect(const std::string& name);
  absl::StatusOr<std::vector<PipelineInfo>> List();
  // Deletes the pipeline; its output repo too unless `keep_repo`.
  // FailedPrecondition if another pipeline reads its output.
  absl::Status Delete(const std::string& name, bool keep_repo);
  absl::StatusOr<PipelineInfo> SetState(const std::string& name, pps::v1::PipelineState state);

 private:
  absl::StatusOr<std::optional<PipelineInfo>> Get(const std::string& name);
  absl::Status Put(const PipelineInfo& info);
  // InvalidArgument naming the loop if `spec` would close a cycle.
  absl::Status CheckNoCycle(const PipelineSpec& spec);

  pfs::Pfs* const pfs_;
  const pfs::KeySpace space_;  // kPipelineSpace
  absl::Mutex mu_;             // serializes changes
};

}  // namespace tusk::dispatcher
