#pragma once

// RunCommand: runs a program (podman) to completion and collects its output.
//
// Thread safety: thread-safe (each call its own process).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tusk::pods {

struct CommandResult {
  int exit_code = 0;  // 128+N when killed by signal N
  std::string out;    // standard output
  std::string err;    // standard error
};

// Runs argv (argv[0] looked up in PATH) with `input` on its standard input,
// and waits for it, at most `timeout` (then kills it: DeadlineExceeded).
// The environment is this process's. A program that cannot be started is
// FailedPrecondition; a non-zero exit is not an error (see exit_code).
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         const std::string& input = "",
                                         absl::Duration timeout = absl::Minutes(2));

}  // namespace tusk::pods
