#pragma once

// Pipeline specs: validation and defaults, independent of any stored state.
// Every error is InvalidArgument and names the field (in Pachyderm's field
// path form, e.g. "input.cross[1].pfs.glob") and what is wrong with it.
// Pure functions; thread-safe.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "proto/pps.pb.h"

namespace tusk::dispatcher {

using pps::v1::Input;
using pps::v1::PFSInput;
using pps::v1::PipelineSpec;

// The largest pipeline spec accepted (serialized), well below the gRPC
// message limit that every lease carrying it must fit in.
inline constexpr size_t kMaxPipelineSpecBytes = 1 << 20;

// Checks `spec` and fills in defaults: input names (the repo's), branches
// (master), globs made absolute, parallelism 1, datum_tries 3, output branch
// master. A spec over kMaxPipelineSpecBytes is InvalidArgument.
absl::Status NormalizePipelineSpec(PipelineSpec* spec);

// Every pfs input beneath `input`, in order (a cron input's included).
std::vector<const PFSInput*> PfsInputs(const Input& input);
// Every cron input beneath `input` (of a normalized spec: repos filled in).
std::vector<const pps::v1::CronInput*> CronInputs(const Input& input);

// Where the spec's egress goes (s3://BUCKET/PREFIX; checked by
// NormalizePipelineSpec); empty if it has none.
std::string EgressUrl(const PipelineSpec& spec);

// The number of capture groups "(...)" in a glob.
int GlobCaptureGroups(const std::string& glob);

}  // namespace tusk::dispatcher
