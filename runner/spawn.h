#pragma once

// Starting a datum's command: one process creation, straight into the
// attempt's cgroups.
//
// The command must be in its cgroups before it runs a single instruction
// (else a fast fork bomb or allocation could escape its limits), and cgroup
// v1 has no clone flag for that. Joining through a shell (`sh -c 'echo $$ >
// cgroup.procs; exec cmd'`) costs a second exec per datum, as much as a
// small command itself. Instead the child is made the way glibc's
// posix_spawn makes it (clone with CLONE_VM | CLONE_VFORK on a stack of its
// own, the parent's signals blocked meanwhile) and, before execve, writes
// its pid into each cgroup.procs file, sets up stdin/stdout/stderr, its
// session and its signals. The child calls only async-signal-safe system
// calls on data prepared before the clone.
//
// Thread-safe (each call has its own stack); the caller reaps the child.

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tusk::runner {

struct SpawnSpec {
  std::vector<std::string> argv;  // argv[0] searched in the runner's PATH if it has no '/'
  std::vector<std::string> env;
  std::string stdin_path;  // opened read-only as stdin
  int out_fd = -1;         // stdout and stderr
  std::string workdir;     // chdir there if not empty
  // cgroup.procs (or tasks) files the child writes its pid to first.
  std::vector<std::string> join;
};

// The child's pid; `*error` says why it could not start (cannot find or run
// the command, cannot join a cgroup): then no child is left.
absl::StatusOr<pid_t> SpawnCommand(const SpawnSpec& spec, std::string* error);

}  // namespace tusk::runner
