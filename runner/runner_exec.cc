// Running one attempt's command: its command line and environment, starting
// it, and watching it to its end (output, heartbeats with live output, the
// datum timeout, a lost lease). The exec agent's variant is in
// runner_agent.cc.

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/flag_values.h"
#include "common/log.h"
#include "common/proto_util.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"
#include "runner/bounded_log.h"
#include "runner/runner.h"
#include "runner/runner_internal.h"
#include "runner/secrets.h"
#include "runner/spawn.h"

extern char** environ;

namespace tusk::runner {

using google::protobuf::util::TimeUtil;

AttemptSpec Runner::CommandSpec(const pps::v1::LeaseResponse& lease, const std::string& pfs_dir) {
  const auto& t = lease.transform();
  AttemptSpec spec;
  spec.pfs_dir = pfs_dir;
  spec.workdir = t.working_dir().empty() ? "/pfs" : t.working_dir();
  if (bwrap_) {
    std::set<std::string> names;
    for (const auto& in : lease.datum().inputs()) names.insert(in.name());
    spec.inputs.assign(names.begin(), names.end());
    spec.cmd.assign(t.cmd().begin(), t.cmd().end());
  } else {
    for (const auto& c : t.cmd()) spec.cmd.push_back(ToPfsDir(c, pfs_dir));
    spec.workdir = ToPfsDir(spec.workdir == "/pfs" ? "/pfs/" : spec.workdir, pfs_dir);
  }
  spec.network = t.network();
  const auto& limits = lease.resource_limits();
  if (!limits.memory().empty()) {
    // tuskd checked the spec; an unparsable value here means no limit.
    auto bytes = ParseMemoryQuantity(limits.memory());
    if (bytes.ok()) spec.memory = *bytes;
  }
  spec.processes = limits.processes() > 0 ? limits.processes() : kDefaultProcessLimit;
  if (lease.has_datum_timeout()) {
    int64_t ns = TimeUtil::DurationToNanoseconds(lease.datum_timeout());
    if (ns > 0) spec.timeout = absl::Nanoseconds(ns);
  }
  return spec;
}

std::vector<std::string> Runner::CommandEnv(const pps::v1::LeaseResponse& lease,
                                            const std::string& pfs_dir) {
  const auto& t = lease.transform();
  // Environment: PATH and locale from here, then the spec's, then ours.
  std::map<std::string, std::string> env;
  // In a user's image its own PATH and locale count (the agent's environment).
  for (const char* keep : {"PATH", "LANG", "LC_ALL", "TZ"}) {
    if (!options_.exec_agent.empty()) break;
    if (const char* v = ::getenv(keep)) env[keep] = v;
  }
  if (!env.count("PATH") && options_.exec_agent.empty()) {
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  }
  env["HOME"] = "/tmp";
  for (const auto& [k, v] : t.env()) env[k] = v;
  std::string pfs_root = bwrap_ ? "/pfs" : pfs_dir;
  for (const auto& in : lease.datum().inputs()) {
    env[in.name()] = pfs_root + "/" + in.name() + (in.path() == "/" ? "" : in.path());
  }
  env["TUSK_JOB_ID"] = env["PACH_JOB_ID"] = lease.job();
  env["TUSK_DATUM_ID"] = env["PACH_DATUM_ID"] = lease.datum().id();
  env["TUSK_OUTPUT_COMMIT"] = env["PACH_OUTPUT_COMMIT_ID"] = lease.output_commit().id();
  env["TUSK_PFS"] = pfs_root;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);

  return env_strings;
}

absl::StatusOr<pid_t> Runner::Spawn(std::vector<std::string> argv,
                                    std::vector<std::string> env_strings,
                                    const std::string& stdin_path, const std::string& workdir,
                                    int out_fd, std::string* error,
                                    const std::vector<std::string>& join) {
  // One process creation straight into the attempt's cgroups (spawn.h):
  // its own session (so the whole group can be killed), default signals,
  // stdin from the file and stdout/stderr into the pipe.
  SpawnSpec s;
  s.argv = std::move(argv);
  s.env = std::move(env_strings);
  s.stdin_path = stdin_path;
  s.out_fd = out_fd;
  if (!bwrap_) s.workdir = workdir;
  s.join = join;
  return SpawnCommand(s, error);
}

bool Runner::LeaseLost(const pps::v1::LeaseResponse& lease, BoundedLog* out) {
  pps::v1::HeartbeatRequest hb;
  hb.set_runner(options_.name);
  hb.add_leases(lease.lease());
  absl::string_view unsent;
  if (out != nullptr) {
    uint64_t offset = 0;
    unsent = out->Unsent(&offset);
    if (!unsent.empty()) {
      pps::v1::LiveLog* live = hb.add_live();
      live->set_lease(lease.lease());
      live->set_offset(offset);
      live->set_data(std::string(unsent));
    }
  }
  // The datum set's datums still waiting to run are renewed too.
  for (const auto& l : waiting_) hb.add_leases(l);
  pps::v1::HeartbeatResponse hr;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (!worker_->Heartbeat(&ctx, hb, &hr).ok()) return false;  // sent again next time
  last_beat_ = absl::Now();
  if (out != nullptr) out->MarkSent(unsent.size());
  bool lost = false;
  for (const auto& l : hr.lost()) {
    if (l == lease.lease()) lost = true;
    lost_.insert(l);
  }
  return lost;
}

bool Runner::BeatDue(absl::Time now, const BoundedLog& out, absl::Time* next_beat,
                     absl::Time* next_live, absl::Duration beat) {
  uint64_t offset = 0;
  if (now < *next_beat && (now < *next_live || out.Unsent(&offset).empty())) return false;
  *next_beat = now + beat;
  *next_live = now + absl::Milliseconds(250);
  return true;
}

absl::StatusOr<std::string> Runner::Supervise(const pps::v1::LeaseResponse& lease, pid_t pid,
                                              int in_fd, std::string* log, bool* truncated) {
  BoundedLog out(options_.max_log_bytes);
  absl::Time start = absl::Now();
  absl::Duration timeout = absl::InfiniteDuration();
  if (lease.has_datum_timeout()) {
    int64_t ns = TimeUtil::DurationToNanoseconds(lease.datum_timeout());
    if (ns > 0) timeout = absl::Nanoseconds(ns);
  }
  absl::Duration beat = absl::Milliseconds(std::max<uint32_t>(200, lease.heartbeat_ms()));
  absl::Time next_beat = absl::Now() + beat, next_live = absl::Now();
  bool timed_out = false, lost = false;
  char buf[16384];
  while (true) {
    pollfd p{in_fd, POLLIN, 0};
    int n = ::poll(&p, 1, 100);
    if (n > 0) {
      ssize_t r = ::read(in_fd, buf, sizeof(buf));
      if (r > 0) {
        // No `continue`: a command that writes without a pause still gets
        // its heartbeats and its timeout.
        out.Append(absl::string_view(buf, r));
      } else if (r == 0) {
        break;  // every writer closed: the command ended
      } else if (errno != EINTR && errno != EAGAIN) {
        break;
      }
    }
    absl::Time now = absl::Now();
    if (!timed_out && now - start > timeout) {
      timed_out = true;
      ::kill(-pid, SIGKILL);
    }
    if (BeatDue(now, out, &next_beat, &next_live, beat)) {
      if (!lost && LeaseLost(lease, &out)) {
        lost = true;
        ::kill(-pid, SIGKILL);
      }
    }
  }
  ::close(in_fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ::kill(-pid, SIGKILL);  // anything the command left behind in its session
  *log = out.Get(truncated);
  if (lost) return absl::AbortedError("lease lost while the command ran");
  if (timed_out) {
    return absl::StrCat("timed out after ", absl::FormatDuration(timeout));
  }
  if (WIFEXITED(status) && AcceptedExit(lease.transform(), WEXITSTATUS(status))) {
    return std::string();
  }
  if (WIFEXITED(status)) return absl::StrCat("command exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("command killed by signal ", WTERMSIG(status));
  return std::string("command ended abnormally");
}

absl::StatusOr<std::string> Runner::Execute(const pps::v1::LeaseResponse& lease,
                                            const std::string& pfs_dir, std::string* log,
                                            bool* truncated) {
  const auto& t = lease.transform();
  if (t.cmd().empty()) return std::string("the transform has no cmd");
  if (!options_.exec_agent.empty()) return ExecuteInAgent(lease, pfs_dir, log, truncated);
  AttemptSpec spec = CommandSpec(lease, pfs_dir);
  std::vector<std::string> env = CommandEnv(lease, pfs_dir);
  if (auto st = AddSecrets(t, options_.secrets_dir, bwrap_, &spec, &env); !st.ok()) {
    *log = absl::StrCat(st.message(), "\n");
    return std::string(st.message());
  }
  auto command = sandbox_->Prepare(spec, absl::StrCat(attempts_));
  if (!command.ok()) return command.status();
  // stdin from a file, so a large stdin cannot deadlock against the output pipe.
  std::string stdin_path = pfs_dir + "/../stdin";
  {
    std::ofstream f(stdin_path, std::ios::binary | std::ios::trunc);
    for (const auto& line : t.stdin()) f << (bwrap_ ? line : ToPfsDir(line, pfs_dir)) << "\n";
  }
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return Errno("pipe");
  std::string error;
  auto pid = Spawn((*command)->argv(), std::move(env), stdin_path, spec.workdir, pipefd[1], &error,
                   (*command)->join());
  ::close(pipefd[1]);
  if (!pid.ok() || !error.empty()) {
    ::close(pipefd[0]);
    if (!pid.ok()) return pid.status();
    *log = error + "\n";
    return error;
  }
  auto failure = Supervise(lease, *pid, pipefd[0], log, truncated);
  if (!failure.ok()) return failure;
  std::string reason = (*command)->LimitReason(!failure->empty());
  if (reason.empty()) return failure;
  // The reason leads: it is what the datum's error should say first.
  *log += reason + "\n";
  return failure->empty() ? reason : absl::StrCat(reason, " (", *failure, ")");
}

}  // namespace tusk::runner
