// tuskd: the tusk server. Serves the PFS API over gRPC from a data directory
// (RocksDB index + local object store).

#include <grpcpp/grpcpp.h>
#include <malloc.h>
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/args.h"
#include "common/log.h"
#include "common/version.h"
#include "pfs/pfs.h"
#include "server/api_service.h"
#include "server/local_runners.h"
#include "server/pps_service.h"
#include "server/source_service.h"

namespace {

constexpr char kUsage[] =
    R"(tuskd: the tusk server (versioned data lake: repos, branches, commits, files)

Usage: tuskd --data-dir DIR [options]

Options:
  --data-dir DIR        where tuskd keeps its index (DIR/index, RocksDB) and its
                        object store (DIR/objects); created if missing. Required.
  --listen HOST:PORT    address to serve gRPC on (default 127.0.0.1:1650; port 0
                        picks a free port)
  --port-file FILE      write the port actually bound to FILE once serving
  --local-runners       start tusk-runner processes for pipelines on this
                        machine (default; --no-local-runners when runners are
                        started elsewhere, e.g. as pods)
  --runner-binary PATH  the tusk-runner to start (default: next to tuskd)
  --sandbox MODE        for local runners: auto (bubblewrap if it works),
                        bwrap, or none
  --log-level LEVEL     debug, info (default), warning or error
  --version             print the version and exit
  -h, --help            show this help

tuskd stops cleanly on SIGINT or SIGTERM. A crash at any moment loses no finished
commit; open commits keep what was written into them.

Exit codes: 0 clean stop, 1 could not start (bad data directory, port in use), 2 bad usage.
)";

struct Options {
  std::string data_dir;
  std::string listen = "127.0.0.1:1650";
  std::string port_file;
  bool local_runners = true;
  std::string runner_binary;
  std::string sandbox = "auto";
  tusk::LogLevel log_level = tusk::LogLevel::kInfo;
};

int Usage(const std::string &error) { return tusk::UsageError("tuskd", error); }

}  // namespace

int main(int argc, char **argv) {
  tusk::FlagSpec spec;
  spec.value_flags = {"--data-dir", "--listen", "--port-file", "--log-level", "--runner-binary",
                      "--sandbox"};
  spec.bool_flags = {"--local-runners", "--no-local-runners"};
  tusk::Args parsed;
  if (auto done = tusk::ParseMainArgs(argc, argv, spec, "tuskd", kUsage, false, &parsed))
    return *done;
  const tusk::Args *args = &parsed;
  Options opts;
  opts.data_dir = args->Get("--data-dir");
  opts.listen = args->Get("--listen", opts.listen);
  opts.port_file = args->Get("--port-file");
  opts.local_runners = !args->Has("--no-local-runners");
  opts.sandbox = args->Get("--sandbox", opts.sandbox);
  if (opts.sandbox != "auto" && opts.sandbox != "bwrap" && opts.sandbox != "none") {
    return Usage("--sandbox must be auto, bwrap or none");
  }
  opts.runner_binary = args->Get("--runner-binary");
  if (opts.runner_binary.empty()) {
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    std::string exe = n > 0 ? std::string(self, n) : std::string(argv[0]);
    opts.runner_binary = exe.substr(0, exe.rfind('/') + 1) + "tusk-runner";
  }
  if (args->Has("--log-level") && !tusk::ParseLogLevel(args->Get("--log-level"), &opts.log_level)) {
    return Usage("--log-level must be debug, info, warning or error, not '" +
                 args->Get("--log-level") + "'");
  }
  if (opts.data_dir.empty()) return Usage("--data-dir is required");
  tusk::SetMinLogLevel(opts.log_level);
  // Few malloc arenas: many threads each holding a large arena inflates RSS
  // with memory that is free but not returned.
  mallopt(M_ARENA_MAX, 2);

  // Signals are handled by one thread with sigwait; block them everywhere else.
  sigset_t signals = tusk::BlockStopSignals();

  tusk::pfs::PfsOptions pfs_options;
  pfs_options.data_dir = opts.data_dir;
  auto pfs = tusk::pfs::Pfs::Open(pfs_options);
  if (!pfs.ok()) {
    TUSK_LOG(ERROR) << "cannot open data directory " << opts.data_dir << ": " << pfs.status();
    return 1;
  }
  tusk::server::ApiService service(pfs->get());
  tusk::server::SourceService sources(pfs->get());
  tusk::dispatcher::Pipelines pipelines(pfs->get());
  auto dispatcher = tusk::dispatcher::Dispatcher::Open(pfs->get(), &pipelines, {});
  if (!dispatcher.ok()) {
    TUSK_LOG(ERROR) << "cannot load pipelines and jobs from " << opts.data_dir << ": "
                    << dispatcher.status();
    return 1;
  }
  tusk::dispatcher::Dispatcher *jobs = dispatcher->get();
  service.SetCommitSetJobsDone([jobs](const std::string &cs) { return jobs->CommitSetJobsDone(cs); });
  tusk::server::PpsService pps(&pipelines, jobs);
  tusk::server::WorkerService worker(pfs->get(), jobs);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(opts.listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  builder.RegisterService(&sources);
  builder.RegisterService(&pps);
  builder.RegisterService(&worker);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(64 << 20);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    TUSK_LOG(ERROR) << "cannot listen on " << opts.listen << " (address in use or invalid)";
    return 1;
  }
  std::string host = opts.listen.substr(0, opts.listen.rfind(':'));
  TUSK_LOG(INFO) << "tuskd " << tusk::kTuskVersion << " serving on " << host << ":" << port
                 << " with data in " << opts.data_dir;
  if (!opts.port_file.empty()) {
    std::string tmp = opts.port_file + ".tmp";
    {
      std::ofstream f(tmp);
      f << port << "\n";
    }
    std::rename(tmp.c_str(), opts.port_file.c_str());
  }

  std::unique_ptr<tusk::server::LocalRunners> runners;
  if (opts.local_runners) {
    tusk::server::LocalRunnersOptions ro;
    ro.runner_binary = opts.runner_binary;
    ro.address = (host == "0.0.0.0" || host == "[::]" ? "127.0.0.1" : host) + ":" + std::to_string(port);
    // Absolute: runners chdir into their datum directories.
    char real[PATH_MAX];
    std::string data_dir = realpath(opts.data_dir.c_str(), real) ? std::string(real) : opts.data_dir;
    ro.work_root = data_dir + "/runners";
    ro.hide = {data_dir};
    ro.sandbox = opts.sandbox;
    runners = std::make_unique<tusk::server::LocalRunners>(jobs, ro);
    runners->Start();
  }

  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    TUSK_LOG(INFO) << "received signal " << sig << ", shutting down";
    runners.reset();
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  });
  server->Wait();
  waiter.join();
  server.reset();
  dispatcher->reset();
  pfs->reset();
  TUSK_LOG(INFO) << "tuskd stopped";
  return 0;
}
