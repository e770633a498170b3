#pragma once

// RFC 6902 JSON patches (a pipeline's pod_patch) and RFC 7386 merge patches
// (its pod_spec), over a JSON library kept private to this file.
//
// Thread safety: the functions are pure.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tusk {

// OK if `patch` is a JSON array of operations, each an object with an "op"
// of add, remove, replace, move, copy or test and a "path" that is a JSON
// pointer; else InvalidArgument saying which operation is wrong.
absl::Status CheckJsonPatch(const std::string& patch);

// `doc` (a JSON document) with `patch` applied. InvalidArgument if either
// does not parse or an operation does not apply (a path that is not there,
// a test that fails), naming the operation.
absl::StatusOr<std::string> ApplyJsonPatch(const std::string& doc, const std::string& patch);

// OK if `patch` is a JSON object (an RFC 7386 merge patch: a pipeline's
// pod_spec); else InvalidArgument.
absl::Status CheckMergePatch(const std::string& patch);

// `doc` with the merge patch `patch` applied (objects merged key by key,
// null removes a key, anything else replaces).
absl::StatusOr<std::string> ApplyMergePatch(const std::string& doc, const std::string& patch);

}  // namespace tusk
