#pragma once

// Sandbox: how a runner contains the user's command. With bubblewrap the
// command runs
// - in new user, pid, ipc, uts and cgroup namespaces, and a new network
//   namespace with only loopback unless the pipeline asks for the network
//   (transform.network): no route to tuskd or the host;
// - as an unprivileged host user: when the runner is root, the command's
//   processes are uid/gid 65534 (nobody) on the host (setpriv), never root;
// - with no capabilities, no new privileges, no nested user namespaces, so
//   no mount or remount;
// - seeing only a read-only system tree (/usr, /etc, /opt and the /bin, /lib
//   links), a minimal /dev and /proc, a private /tmp, its inputs read-only at
//   /pfs/<input> and /pfs/out. (bwrap, running as the sandbox's user, must
//   reach the attempt's directory: a root runner keeps its attempts where
//   every user may pass through, see OthersCanReach.)
// Limits per attempt: memory and processes by cgroup v1 where the runner may
// make groups (the kernel then says when it killed for memory), else by
// rlimits (address space and processes); CPU seconds from the datum timeout.
//
// Without bubblewrap (mode "none", or "auto" where it cannot work) the
// command runs as the runner's user with the limits alone.
//
// Thread-compatible; one per runner.

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runner/limits.h"

namespace tusk::runner {

struct SandboxOptions {
  std::string mode = "auto";      // auto, bwrap or none
  std::vector<std::string> hide;  // directories the command must not see
  std::string work_dir;           // the runner's scratch space (for the probe)
  std::string runner_name;        // names its cgroups
};

// One attempt: what to run and with what.
struct AttemptSpec {
  std::string pfs_dir;              // holds <input>/ and out/
  std::vector<std::string> inputs;  // names under pfs_dir
  std::string workdir;              // in the sandbox
  std::vector<std::string> cmd;
  bool network = false;
  uint64_t memory = 0;  // bytes; 0: no limit
  uint64_t processes = 1024;
  absl::Duration timeout = absl::InfiniteDuration();
  // Host directories shown read-only at a path in the sandbox (secrets).
  std::vector<std::pair<std::string, std::string>> ro_binds;
};

// A command ready to spawn, and what it holds until it has ended.
class SandboxedCommand {
 public:
  const std::vector<std::string>& argv() const { return argv_; }
  // The cgroup.procs files the command's process writes itself into before
  // it runs (runner/spawn.h).
  const std::vector<std::string>& join() const { return join_; }
  // Why the command failed, beyond its exit status, when its limits tell:
  // "OOMKilled: ..." or a note about the process limit; "" otherwise.
  std::string LimitReason(bool failed) const;

 private:
  friend class Sandbox;
  std::vector<std::string> argv_;
  std::vector<std::string> join_;
  std::unique_ptr<Cgroups::Group> group_;
  uint64_t memory_ = 0;
  uint64_t processes_ = 0;
};

class Sandbox {
 public:
  // FailedPrecondition if mode is "bwrap" and bubblewrap cannot make a
  // sandbox here.
  static absl::StatusOr<std::unique_ptr<Sandbox>> Open(const SandboxOptions& options);

  // Whether a sandbox in `mode` runs commands as another host user than the
  // runner's (the runner is root): then its attempt directories must be
  // reachable by every user (OthersCanReach) and /pfs/out is given to that user.
  static bool DropsUid(const std::string& mode);

  // Whether commands run under bubblewrap (else /pfs paths must be rewritten).
  bool isolated() const { return bwrap_; }
  // For inspect pipeline: "bwrap (user, pid, network namespaces; uid 65534 on
  // the host; no capabilities); limits by cgroup v1 (memory, pids)".
  std::string Describe() const;

  // Makes the attempt's limits and command line; `attempt` names its cgroup.
  absl::StatusOr<std::unique_ptr<SandboxedCommand>> Prepare(const AttemptSpec& spec,
                                                            const std::string& attempt);

 private:
  explicit Sandbox(SandboxOptions options) : options_(std::move(options)) {}
  std::vector<std::string> BwrapArgs(const AttemptSpec& spec) const;

  const SandboxOptions options_;
  bool bwrap_ = false;
  bool drop_uid_ = false;  // the runner is root: the command runs as kSandboxUid
  std::vector<std::string> system_binds_;
  std::unique_ptr<Cgroups> cgroups_;
};

// Whether every directory from / to `dir` lets other users pass (o+x).
bool OthersCanReach(const std::string& dir);

}  // namespace tusk::runner
