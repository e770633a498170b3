#pragma once

// Small file-system helpers shared by tuskd and the runner.

#include <string>

#include "absl/status/status.h"

namespace tusk {

// Creates `dir` and its missing parents (like mkdir -p). Internal error
// naming the path that could not be made.
absl::Status MkdirAll(const std::string& dir);

}  // namespace tusk
