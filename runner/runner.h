#pragma once

// Runner: the worker side of the runner protocol (proto/pps.proto, service
// Worker). It leases one datum at a time from tuskd, materializes the datum's
// inputs under a scratch directory, runs the pipeline's command with them
// mounted at /pfs/<input> (read-only) and an empty /pfs/out, captures the
// command's output as the datum's log (bounded), and sends the result with
// the files of /pfs/out. It talks to tuskd only over gRPC, so it runs the same
// as a local process or in a pod.
//
// Sandbox (runner/sandbox.h): with bubblewrap, the command runs as an
// unprivileged host user in new namespaces without capabilities or network,
// sees a read-only system tree, a private /tmp, /pfs as above and nothing of
// the directories named in `hide` (tuskd's data directory), within the
// pipeline's resource_limits. Without it (sandbox "none"), /pfs in the
// command and its stdin is rewritten to the scratch directory.
//
// Symlinks in /pfs/out are uploaded as the file they point to when that file
// is inside /pfs/out; any other symlink fails the datum.
//
// Attempts: every datum attempt gets a fresh directory under work_dir
// (attempt-N-<random>), removed when the attempt ends. A command that outlives
// a killed runner can only ever write into its own attempt's directory, never
// into a later attempt's /pfs/out; and Open first kills every process still
// using an earlier attempt directory (found by its command line or working
// directory), then removes those directories.
//
// Lifecycle: Open, then Run until `stop` is set (SIGTERM). Single-threaded.

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/grpc_channel.h"
#include "proto/pfs.grpc.pb.h"
#include "proto/pps.grpc.pb.h"
#include "runner/bounded_log.h"
#include "runner/sandbox.h"

namespace tusk::runner {

struct RunnerOptions {
  std::string address;     // tuskd host:port (or unix:PATH)
  ChannelOptions channel;  // token and TLS
  std::string pipeline;
  // The pipeline version this runner was made for (its pod's image and
  // spec); 0: any. tuskd refuses leases to a runner of another version.
  uint64_t pipeline_version = 0;
  std::string name;      // unique per runner process
  std::string work_dir;  // scratch space for datums
  std::vector<std::string> hide;
  std::string sandbox = "auto";  // auto, bwrap or none
  // Commands run in the user's image through tusk-exec-agent listening at
  // this unix socket (in a volume shared with the user's container, at the
  // same path); `pfs_dir` is the volume the user's container mounts at /pfs.
  // Empty: commands run here (sandbox above).
  std::string exec_agent;
  std::string pfs_dir;
  // transform.secrets of commands run here: DIR/NAME/KEY files.
  std::string secrets_dir;
  size_t max_log_bytes = 64 << 10;
  uint32_t lease_wait_ms = 5000;
  uint32_t max_datums = 64;  // datums per lease (LeaseRequest.max_datums)
};

class Runner {
 public:
  static absl::StatusOr<std::unique_ptr<Runner>> Open(const RunnerOptions& options);
  // Leases and runs datums until `stop` is set. Returns OK when stopped, or
  // the error that ended it (the pipeline was deleted: NotFound; the
  // pipeline is at another version than pipeline_version: FailedPrecondition;
  // the token may not: PermissionDenied or Unauthenticated).
  absl::Status Run(const std::atomic<bool>* stop);

 private:
  explicit Runner(const RunnerOptions& options) : options_(options) {}
  absl::Status RunDatum(const pps::v1::LeaseResponse& lease);
  // Whether the exec agent's socket is there; if not, waits a little (and
  // says once that it waits) and returns false.
  bool AwaitAgent();
  // Writes the datum's inputs under pfs_dir; adds the bytes to *bytes.
  absl::Status Materialize(const pps::v1::DatumInfo& datum, const std::string& pfs_dir,
                           uint64_t* bytes);
  // An input with empty_files: its files' names under `base`, no content.
  absl::Status MaterializeNames(const pps::v1::DatumInput& in, const std::string& base);
  // Runs the command; fills the log; returns the failure message ("" for
  // success), or an error if the lease was lost.
  absl::StatusOr<std::string> Execute(const pps::v1::LeaseResponse& lease,
                                      const std::string& pfs_dir, std::string* log,
                                      bool* truncated);
  // Execute's parts: the command line (under bubblewrap or not) and its
  // working directory; the environment; starting it with its output into
  // `out_fd` (`*error` says why it could not start); watching it to its
  // end (timeout, heartbeats, a lost lease).
  AttemptSpec CommandSpec(const pps::v1::LeaseResponse& lease, const std::string& pfs_dir);
  std::vector<std::string> CommandEnv(const pps::v1::LeaseResponse& lease,
                                      const std::string& pfs_dir);
  absl::StatusOr<pid_t> Spawn(std::vector<std::string> argv, std::vector<std::string> env,
                              const std::string& stdin_path, const std::string& workdir, int out_fd,
                              std::string* error, const std::vector<std::string>& join = {});
  // Execute through the exec agent (runner_agent.cc).
  absl::StatusOr<std::string> ExecuteInAgent(const pps::v1::LeaseResponse& lease,
                                             const std::string& pfs_dir, std::string* log,
                                             bool* truncated);
  // One heartbeat for `lease`, with what `out` holds that tuskd has not
  // seen (if not null): whether tuskd says the lease is lost.
  bool LeaseLost(const pps::v1::LeaseResponse& lease, BoundedLog* out = nullptr);
  // Whether a heartbeat is due at `now`: every `beat`, and at most every
  // 250 ms while the command writes output (shown live by logs -f).
  static bool BeatDue(absl::Time now, const BoundedLog& out, absl::Time* next_beat,
                      absl::Time* next_live, absl::Duration beat);
  absl::StatusOr<std::string> Supervise(const pps::v1::LeaseResponse& lease, pid_t pid, int in_fd,
                                        std::string* log, bool* truncated);
  absl::Status SendResult(const pps::v1::LeaseResponse& lease, bool success,
                          const std::string& error, const std::string& log, bool truncated,
                          const pps::v1::ProcessStats& stats, const std::string& out_dir,
                          bool recovered = false);

  // Kills what earlier runners in work_dir left running and removes their
  // attempt directories; returns how many processes it killed.
  int ReapEarlierAttempts();

  const RunnerOptions options_;
  uint64_t attempts_ = 0;
  std::unique_ptr<Sandbox> sandbox_;
  bool bwrap_ = false;  // sandbox_->isolated()
  std::unique_ptr<pfs::v1::API::Stub> api_;
  std::unique_ptr<pps::v1::Worker::Stub> worker_;
  std::string buf_;  // file reads for the upload, reused across datums
  // The leased datum set's datums not yet run (renewed with every
  // heartbeat), those tuskd said are lost, and the last heartbeat's time.
  std::vector<std::string> waiting_;
  std::set<std::string> lost_;
  absl::Time last_beat_ = absl::InfinitePast();
};

}  // namespace tusk::runner
