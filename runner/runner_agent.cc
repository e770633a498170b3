// Runner::ExecuteInAgent: a datum's command run in the user's image through
// tusk-exec-agent (runner/agent/): the same environment, stdin, timeout,
// heartbeats and bounded log as a local command.

#include <poll.h>
#include <sys/stat.h>

#include <fstream>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/flag_values.h"
#include "common/log.h"
#include "common/proto_util.h"
#include "runner/agent/agent_client.h"
#include "runner/bounded_log.h"
#include "runner/runner.h"
#include "runner/runner_internal.h"

namespace tusk::runner {

bool Runner::AwaitAgent() {
  struct stat st;
  if (::stat(options_.exec_agent.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) return true;
  static std::once_flag said;
  std::call_once(said, [this] {
    LOG(INFO) << "waiting for the exec agent at " << options_.exec_agent
              << " (the user's container starting)";
  });
  absl::SleepFor(absl::Milliseconds(100));
  return false;
}

absl::StatusOr<std::string> Runner::ExecuteInAgent(const pps::v1::LeaseResponse& lease,
                                                   const std::string& pfs_dir, std::string* log,
                                                   bool* truncated) {
  const auto& t = lease.transform();
  agent::AgentCommand cmd;
  cmd.argv.assign(t.cmd().begin(), t.cmd().end());
  cmd.env = CommandEnv(lease, pfs_dir);
  cmd.cwd = t.working_dir().empty() ? "/pfs" : t.working_dir();
  // stdin from a file beside the agent's socket: a path both containers see.
  const std::string dir = options_.exec_agent.substr(0, options_.exec_agent.rfind('/'));
  cmd.stdin_path = dir + "/stdin";
  {
    std::ofstream f(cmd.stdin_path, std::ios::binary | std::ios::trunc);
    for (const auto& line : t.stdin()) f << line << "\n";
  }
  auto client = agent::AgentClient::Start(options_.exec_agent, cmd);
  // The user's container may be restarting: give it a few seconds, then
  // fail the attempt (a lease left hanging would wait for its expiry).
  for (absl::Time until = absl::Now() + absl::Seconds(10);
       !client.ok() && absl::IsUnavailable(client.status()) && absl::Now() < until;) {
    absl::SleepFor(absl::Milliseconds(200));
    client = agent::AgentClient::Start(options_.exec_agent, cmd);
  }
  if (!client.ok()) {
    return absl::StrCat("the user's container does not answer: ", client.status().message());
  }

  BoundedLog out(options_.max_log_bytes);
  const absl::Time start = absl::Now();
  absl::Duration timeout = absl::InfiniteDuration();
  if (lease.has_datum_timeout() && FromDuration(lease.datum_timeout()) > absl::ZeroDuration()) {
    timeout = FromDuration(lease.datum_timeout());
  }
  const absl::Duration beat = absl::Milliseconds(std::max<uint32_t>(200, lease.heartbeat_ms()));
  absl::Time next_beat = start + beat, next_live = start;
  bool timed_out = false, lost = false;
  std::string failure;
  for (;;) {
    pollfd p{(*client)->fd(), POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      auto e = (*client)->Next();
      if (!e.ok()) return e.status();
      if (e->kind != agent::AgentEvent::kOutput) {
        if (e->kind == agent::AgentEvent::kFailed) {
          out.Append(e->output + "\n");
          failure = e->output;
        } else if (e->oom_killed) {
          failure = absl::StrCat(
              "OOMKilled: the command went over its container's memory limit",
              e->memory_limit > 0 ? absl::StrCat(" of ", FormatMemoryLimit(e->memory_limit)) : "",
              " (resource_limits.memory) and was killed");
        } else if (e->kind == agent::AgentEvent::kSignal) {
          failure = absl::StrCat("command killed by signal ", e->code);
        } else if (!AcceptedExit(lease.transform(), e->code)) {
          failure = absl::StrCat("command exited with status ", e->code);
        }
        break;
      }
      // Output: no `continue`, so heartbeats and the timeout still run.
      out.Append(e->output);
    }
    const absl::Time now = absl::Now();
    if (!timed_out && now - start > timeout) {
      timed_out = true;
      (*client)->Kill();
    }
    if (BeatDue(now, out, &next_beat, &next_live, beat)) {
      if (!lost && LeaseLost(lease, &out)) {
        lost = true;
        (*client)->Kill();
      }
    }
  }
  *log = out.Get(truncated);
  if (lost) return absl::AbortedError("lease lost while the command ran");
  if (timed_out) return absl::StrCat("timed out after ", absl::FormatDuration(timeout));
  return failure;
}

}  // namespace tusk::runner
