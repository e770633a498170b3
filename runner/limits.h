#pragma once

// Cgroups: memory and process limits for one datum attempt, with the
// kernel's word on whether the attempt was killed for memory: cgroup v1's
// memory and pids hierarchies, under the runner's own cgroups. Probe returns
// null where they are not writable (non-root runners, containers without
// them, cgroup v2 only: a v2 hierarchy needs a delegated subtree, which is
// not done yet), and the sandbox falls back to rlimits.
//
// Thread-compatible; one per runner. A Group's destructor kills what is left
// in it and removes it.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tusk::runner {

class Cgroups {
 public:
  // One attempt's cgroup (a directory per hierarchy).
  class Group {
   public:
    ~Group();
    // The files a process writes its pid to, to join (cgroup.procs).
    const std::vector<std::string>& procs_files() const { return procs_; }
    // The kernel killed a process of the group for memory (oom_kill > 0).
    bool OomKilled() const;
    // A fork or clone failed at the process limit (pids.events max > 0).
    bool HitProcessLimit() const;

   private:
    friend class Cgroups;
    std::string memory_;  // the group's directories
    std::string pids_;
    std::vector<std::string> procs_;
  };

  static std::unique_ptr<Cgroups> Probe(const std::string& runner_name);
  std::string Describe() const { return "cgroup v1 (memory, pids)"; }
  // A group limited to `memory` bytes (0: none) and `processes`.
  absl::StatusOr<std::unique_ptr<Group>> Create(const std::string& attempt, uint64_t memory,
                                                uint64_t processes);

 private:
  Cgroups() = default;
  std::string memory_root_;
  std::string pids_root_;
  std::string prefix_;  // tusk-<runner>-
};

}  // namespace tusk::runner
