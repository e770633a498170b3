// tusk-runner: runs a pipeline's datums for tuskd (see runner/runner.h).

#include <gflags/gflags.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/client_flags.h"
#include "common/daemon.h"
#include "common/flag_values.h"
#include "common/log.h"
#include "http/http_server.h"
#include "runner/runner.h"

DEFINE_string(tuskd, "", "tuskd's gRPC address, HOST:PORT (required)");
DEFINE_string(pipeline, "", "the pipeline to work for (required)");
DEFINE_uint64(pipeline_version, 0, "the pipeline version this runner was made for (0: any)");
DEFINE_string(name, "", "this runner's name, unique per process (default PIPELINE-<pid>)");
DEFINE_string(work_dir, "", "scratch space for datums (default /tmp/tusk-runner-NAME)");
DEFINE_string(hide, "", "a directory the command must not see (repeatable)");
DEFINE_string(sandbox, "auto", "auto, bwrap or none");
DEFINE_string(exec_agent, "", "run commands through tusk-exec-agent at this socket");
DEFINE_string(pfs_dir, "", "with --exec-agent: the volume the user's container mounts at /pfs");
DEFINE_string(secrets_dir, "", "transform.secrets come from NAME/KEY files here");
DEFINE_string(http_listen, "", "serve /metrics, /healthz and /readyz here (HOST:PORT)");
DEFINE_string(max_log, "64KiB", "log bytes kept per datum attempt");
DEFINE_uint32(max_datums, 64,
              "datums leased at once (a datum set; tuskd gives fewer when its queue is short "
              "or datum_set_spec says so)");

namespace {

constexpr char kUsageHead[] =
    R"(tusk-runner: runs the datums of one pipeline for tuskd

Usage: tusk-runner --tuskd HOST:PORT --pipeline NAME [options]

The runner leases datums from tuskd, a datum set at a time, materializes their inputs
at /pfs/<input>, runs the pipeline's command in a bubblewrap sandbox with
/pfs/out for its output, and sends back the command's log and /pfs/out.
tuskd starts runners itself for the embedded default; start them by hand (or
as pods) to add workers on other machines.

Options:
  --tuskd HOST:PORT     tuskd's gRPC address (required)
  --pipeline NAME       the pipeline to work for (required)
  --pipeline-version N  the pipeline version this runner was made for (its
                        pod's image); tuskd refuses it once the pipeline is
                        at another version (default 0: any)
  --name NAME           this runner's name, unique per process (default:
                        PIPELINE-<pid>)
  --work-dir DIR        scratch space for datums (default: /tmp/tusk-runner-NAME)
  --hide DIR            a directory the command must not see (repeatable;
                        tuskd passes its data directory)
  --sandbox MODE        auto (default: bubblewrap if it works here), bwrap
                        (required), or none
  --max-log SIZE        log bytes kept per datum attempt (default 64KiB)
  --exec-agent SOCKET   run commands in the pipeline's image through
                        tusk-exec-agent listening there (a volume shared with
                        the user's container; the runner/README.md design)
  --pfs-dir DIR         with --exec-agent: the volume the user's container
                        mounts at /pfs
  --secrets-dir DIR     transform.secrets: env_var from the file DIR/NAME/KEY,
                        mount_path a read-only view of DIR/NAME (tuskd passes
                        its own --secrets-dir)
  --http-listen H:P     serve Prometheus metrics at /metrics (datums by result,
                        phase times, bytes), /healthz and /readyz
)";
constexpr char kUsageTail[] =
    R"(  --log-level LEVEL     debug, info (default), warning or error
  -h, --help            show this help

Exit codes: 0 stopped by SIGTERM/SIGINT, 1 error (tuskd unreachable is retried,
not an error), 2 bad usage, 3 the pipeline does not exist, 4 the pipeline is
at another version than --pipeline-version, 5 the token may not run this
pipeline's datums (missing, revoked, or not its runner token).
)";

}  // namespace

int main(int argc, char** argv) {
  const std::string usage = std::string(kUsageHead) + tusk::kClientFlagsHelp + kUsageTail;
  if (auto done = tusk::InitDaemon(argc, argv, {"tusk-runner", usage.c_str(), false, {"hide"}})) {
    return *done;
  }
  tusk::runner::RunnerOptions opts;
  opts.address = FLAGS_tuskd;
  opts.pipeline = FLAGS_pipeline;
  opts.pipeline_version = FLAGS_pipeline_version;
  if (opts.address.empty()) return tusk::UsageError("tusk-runner", "--tuskd is required");
  if (opts.pipeline.empty()) return tusk::UsageError("tusk-runner", "--pipeline is required");
  opts.name = FLAGS_name.empty() ? absl::StrCat(opts.pipeline, "-", getpid()) : FLAGS_name;
  opts.work_dir = FLAGS_work_dir.empty() ? "/tmp/tusk-runner-" + opts.name : FLAGS_work_dir;
  opts.hide = tusk::RepeatedFlag("hide");
  auto sandbox = tusk::ParseChoice("--sandbox", FLAGS_sandbox, {"auto", "bwrap", "none"});
  if (!sandbox.ok())
    return tusk::UsageError("tusk-runner", std::string(sandbox.status().message()));
  opts.sandbox = *sandbox;
  opts.exec_agent = FLAGS_exec_agent;
  opts.pfs_dir = FLAGS_pfs_dir;
  opts.secrets_dir = FLAGS_secrets_dir;
  if (opts.exec_agent.empty() != opts.pfs_dir.empty()) {
    return tusk::UsageError("tusk-runner", "--exec-agent and --pfs-dir go together");
  }
  auto max_log = tusk::ParseBytes("--max-log", FLAGS_max_log);
  if (!max_log.ok())
    return tusk::UsageError("tusk-runner", std::string(max_log.status().message()));
  opts.max_log_bytes = *max_log;
  opts.max_datums = std::max<uint32_t>(1, FLAGS_max_datums);
  auto channel = tusk::ChannelOptionsFromFlags();
  if (!channel.ok())
    return tusk::UsageError("tusk-runner", std::string(channel.status().message()));
  opts.channel = *channel;
  sigset_t signals = tusk::BlockStopSignals();
  std::atomic<bool> stop{false};
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    stop = true;
  });
  waiter.detach();

  auto runner = tusk::runner::Runner::Open(opts);
  if (!runner.ok()) {
    LOG(ERROR) << "runner " << opts.name << ": " << runner.status();
    return 1;
  }
  std::unique_ptr<tusk::http::HttpServer> http;
  if (!FLAGS_http_listen.empty()) {
    // Ready once open (sandbox probed, channel made); tuskd being away is
    // retried, not a reason to restart the runner.
    auto server =
        tusk::http::HttpServer::Start(FLAGS_http_listen, tusk::http::ObservabilityRoutes(nullptr));
    if (!server.ok()) {
      LOG(ERROR) << server.status();
      return 1;
    }
    http = std::move(*server);
    LOG(INFO) << "serving /metrics, /healthz and /readyz on port " << http->port();
  }
  LOG(INFO) << "runner " << opts.name << " working for pipeline " << opts.pipeline << " at "
            << opts.address;
  absl::Status st = (*runner)->Run(&stop);
  if (!st.ok()) {
    LOG(ERROR) << "runner " << opts.name << ": " << st;
    switch (st.code()) {
      case absl::StatusCode::kNotFound:
        return 3;
      case absl::StatusCode::kFailedPrecondition:
        return 4;
      case absl::StatusCode::kPermissionDenied:
      case absl::StatusCode::kUnauthenticated:
        return 5;
      default:
        return 1;
    }
  }
  return 0;
}
