#pragma once

// The output merge: a job's output commit is the previous output with the
// changed datums' contributions replaced. Per output path, the file is every
// datum's contribution at that path in datum-key order, concatenated (so two
// datums writing one path make a map/reduce). Only the paths that a changed
// datum writes or wrote are read and rewritten.
//
// PlanMerge computes the new files and adds to `batch` the records that
// must move atomically with the output commit (contributions, current
// datums); ApplyMerge stages the files in the open output commit.
//
// Thread-compatible; writes nothing itself.

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "dispatcher/job_store.h"
#include "pfs/pfs.h"

namespace tusk::dispatcher {

struct MergePlan {
  bool clear = false;                // start from an empty tree, not the previous output
  std::vector<std::string> deletes;  // paths no datum writes any more
  std::vector<std::pair<std::string, std::vector<pfs::ChunkRef>>> puts;
};

// `touched`: the job's datums in their final state; `old_roots`: each one's
// output root before the job (see JobPlan).
absl::StatusOr<MergePlan> PlanMerge(pfs::NodeStore* nodes, const JobStore& store,
                                    const std::string& pipeline,
                                    const std::map<std::string, DatumInfo>& touched,
                                    const std::map<std::string, std::string>& old_roots,
                                    pfs::KvBatch* batch);

// Stages `plan` in `upload` (the job's output commit). Returns the error
// that makes the merge impossible (a path that is both a file and a
// directory), or "" once the upload is closed.
absl::StatusOr<std::string> ApplyMerge(const MergePlan& plan, pfs::Upload* upload);

}  // namespace tusk::dispatcher
