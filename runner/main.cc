// tusk-runner: runs a pipeline's datums for tuskd (see runner/runner.h).

#include <signal.h>

#include <atomic>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/args.h"
#include "common/log.h"
#include "runner/runner.h"

namespace {

constexpr char kUsage[] =
    R"(tusk-runner: runs the datums of one pipeline for tuskd

Usage: tusk-runner --tuskd HOST:PORT --pipeline NAME [options]

The runner leases datums from tuskd one at a time, materializes their inputs
at /pfs/<input>, runs the pipeline's command in a bubblewrap sandbox with
/pfs/out for its output, and sends back the command's log and /pfs/out.
tuskd starts runners itself for the embedded default; start them by hand (or
as pods) to add workers on other machines.

Options:
  --tuskd HOST:PORT     tuskd's gRPC address (required)
  --pipeline NAME       the pipeline to work for (required)
  --name NAME           this runner's name, unique per process (default:
                        PIPELINE-<pid>)
  --work-dir DIR        scratch space for datums (default: /tmp/tusk-runner-NAME)
  --hide DIR            a directory the command must not see (repeatable;
                        tuskd passes its data directory)
  --sandbox MODE        auto (default: bubblewrap if it works here), bwrap
                        (required), or none
  --max-log SIZE        log bytes kept per datum attempt (default 64KiB)
  --log-level LEVEL     debug, info (default), warning or error
  -h, --help            show this help

Exit codes: 0 stopped by SIGTERM/SIGINT, 1 error (tuskd unreachable is retried,
not an error), 2 bad usage, 3 the pipeline does not exist.
)";

}  // namespace

int main(int argc, char** argv) {
  tusk::FlagSpec spec;
  spec.value_flags = {"--tuskd", "--pipeline", "--name",    "--work-dir",
                      "--hide",  "--sandbox",  "--max-log", "--log-level"};
  tusk::Args args;
  if (auto done = tusk::ParseMainArgs(argc, argv, spec, "tusk-runner", kUsage, false, &args)) {
    return *done;
  }
  tusk::runner::RunnerOptions opts;
  opts.address = args.Get("--tuskd");
  opts.pipeline = args.Get("--pipeline");
  if (opts.address.empty()) return tusk::UsageError("tusk-runner", "--tuskd is required");
  if (opts.pipeline.empty()) return tusk::UsageError("tusk-runner", "--pipeline is required");
  opts.name = args.Get("--name", absl::StrCat(opts.pipeline, "-", getpid()));
  opts.work_dir = args.Get("--work-dir", "/tmp/tusk-runner-" + opts.name);
  if (args.values.count("--hide")) opts.hide = args.values.at("--hide");
  opts.sandbox = args.Get("--sandbox", "auto");
  if (opts.sandbox != "auto" && opts.sandbox != "bwrap" && opts.sandbox != "none") {
    return tusk::UsageError("tusk-runner", "--sandbox must be auto, bwrap or none");
  }
  if (args.Has("--max-log")) {
    auto n = tusk::ParseBytes("--max-log", args.Get("--max-log"));
    if (!n.ok()) return tusk::UsageError("tusk-runner", std::string(n.status().message()));
    opts.max_log_bytes = *n;
  }
  tusk::LogLevel level = tusk::LogLevel::kInfo;
  if (args.Has("--log-level") && !tusk::ParseLogLevel(args.Get("--log-level"), &level)) {
    return tusk::UsageError("tusk-runner", "--log-level must be debug, info, warning or error");
  }
  tusk::SetMinLogLevel(level);
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
    TUSK_LOG(ERROR) << "runner " << opts.name << ": " << runner.status();
    return 1;
  }
  TUSK_LOG(INFO) << "runner " << opts.name << " working for pipeline " << opts.pipeline << " at "
                 << opts.address;
  absl::Status st = (*runner)->Run(&stop);
  if (!st.ok()) {
    TUSK_LOG(ERROR) << "runner " << opts.name << ": " << st;
    return st.code() == absl::StatusCode::kNotFound ? 3 : 1;
  }
  return 0;
}
