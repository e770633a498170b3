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
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/args.h"
#include "common/grpc_channel.h"
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
  --object-store URL    where objects (packs of chunks and tree nodes, commit
                        logs) live: s3://BUCKET/PREFIX, or a local directory
                        (default DIR/objects). With S3, DIR holds only the
                        index (rebuildable from the bucket) and the cache.
  --s3-endpoint URL     S3-compatible server (MinIO, Ceph, s3rver...), path-style
                        addressing; without it, AWS (virtual-host style)
  --s3-region REGION    region to sign requests for (default us-east-1)
  --s3-virtual-host     with --s3-endpoint: BUCKET.host addressing
  --s3-credentials-file FILE
                        AWS shared credentials file (default: the environment,
                        AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, then
                        ~/.aws/credentials)
  --s3-parallelism N    requests in flight for one multipart upload, and pack
                        uploads in flight per upload stream (default 8)
  --s3-part-size SIZE   multipart part size, at least 5MiB (default 8MiB)
  --s3-retries N        retries of a request that failed with 5xx, 429, a timeout
                        or a broken connection, with exponential backoff and
                        jitter (default 5; the error after the last names the
                        object and the HTTP status)
  --cache-dir DIR2      local disk cache of chunks and nodes read from S3
                        (default DIR/cache)
  --cache-size SIZE     bound of that cache, least recently used evicted first
                        (default 1GiB; 0 disables it)
  --log-mode MODE       when a change's log pack (what rebuilds the index) goes
                        to the object store: strict, before the index moves
                        (default with S3), or shipped, in the same synced index
                        write and to the object store in batches within 100 ms
                        and at shutdown (default with a local store, which
                        shares the index's disk: saves a file and two fsyncs
                        per micro-commit)
  --rebuild-index       recreate the index (DIR/index) from the object store
                        before serving: every repo, branch, finished commit and
                        file comes back; an existing index is kept aside as
                        DIR/index.old-<time>. Needed when DIR is new or lost
                        but the object store holds tusk data.
  --gc-interval DUR     collect garbage this often: apply retention, then delete
                        chunks, nodes and packs nothing references (default
                        1h; 0 turns it off; 'tusk gc' runs it now)
  --gc-grace DUR        objects younger than this are never collected, so an
                        upload in progress keeps what it wrote (default 1h)
  --put-idle-timeout DUR
                        a put file stream that sends nothing for this long is
                        aborted and its automatic commit dropped, freeing the
                        branch (default 1m; 0 never)
  --retention-interval DUR
                        apply repos' retention (tusk update repo --keep-last
                        N --keep-for DUR) this often (default 1m; 0 turns it off)
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
  std::string object_store;
  tusk::pfs::S3StoreOptions s3;
  std::string cache_dir;
  uint64_t cache_size = 1ull << 30;
  absl::Duration gc_interval = absl::Hours(1);
  absl::Duration retention_interval = absl::Minutes(1);
  absl::Duration put_idle_timeout = absl::Minutes(1);
  tusk::pfs::GcOptions gc;
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
  spec.value_flags = {"--data-dir",           "--listen",
                      "--port-file",          "--log-level",
                      "--runner-binary",      "--sandbox",
                      "--object-store",       "--s3-endpoint",
                      "--s3-region",          "--s3-parallelism",
                      "--s3-part-size",       "--cache-dir",
                      "--cache-size",         "--s3-credentials-file",
                      "--gc-interval",        "--gc-grace",
                      "--retention-interval", "--s3-retries",
                      "--log-mode",           "--put-idle-timeout"};
  spec.bool_flags = {"--local-runners", "--no-local-runners", "--s3-virtual-host",
                     "--rebuild-index"};
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
  for (auto [flag, target] :
       {std::pair<const char *, absl::Duration *>{"--gc-interval", &opts.gc_interval},
        {"--gc-grace", &opts.gc.grace},
        {"--retention-interval", &opts.retention_interval},
        {"--put-idle-timeout", &opts.put_idle_timeout}}) {
    if (!args->Has(flag)) continue;
    std::string v = args->Get(flag);
    if (v == "0") v = "0s";
    if (!absl::ParseDuration(v, target) || *target < absl::ZeroDuration()) {
      return Usage(std::string(flag) + " must be a duration like 90s, 30m or 2h, not '" + v + "'");
    }
  }
  opts.object_store = args->Get("--object-store");
  bool s3 = opts.object_store.rfind("s3://", 0) == 0;
  for (const char *flag :
       {"--s3-endpoint", "--s3-region", "--s3-parallelism", "--s3-part-size", "--s3-retries",
        "--s3-virtual-host", "--s3-credentials-file", "--cache-dir", "--cache-size"}) {
    if (args->Has(flag) && !s3) return Usage(std::string(flag) + " needs --object-store s3://...");
  }
  if (s3) {
    absl::Status st = tusk::pfs::ParseS3StoreUrl(opts.object_store, &opts.s3);
    if (!st.ok()) return Usage(std::string(st.message()));
    opts.s3.endpoint = args->Get("--s3-endpoint");
    opts.s3.region = args->Get("--s3-region", opts.s3.region);
    opts.s3.virtual_host = args->Has("--s3-virtual-host");
    if (args->Has("--s3-parallelism") &&
        (!absl::SimpleAtoi(args->Get("--s3-parallelism"), &opts.s3.parallelism) ||
         opts.s3.parallelism < 1 || opts.s3.parallelism > 256)) {
      return Usage("--s3-parallelism must be a number from 1 to 256");
    }
    if (args->Has("--s3-retries") &&
        (!absl::SimpleAtoi(args->Get("--s3-retries"), &opts.s3.max_retries) ||
         opts.s3.max_retries < 0 || opts.s3.max_retries > 100)) {
      return Usage("--s3-retries must be a number from 0 to 100");
    }
    if (args->Has("--s3-part-size")) {
      auto v = tusk::ParseBytes("--s3-part-size", args->Get("--s3-part-size"));
      if (!v.ok()) return Usage(std::string(v.status().message()));
      if (*v < (5u << 20) || *v > (5ull << 30)) return Usage("--s3-part-size must be 5MiB to 5GiB");
      opts.s3.part_size = *v;
    }
    if (args->Has("--s3-credentials-file")) {
      setenv("AWS_SHARED_CREDENTIALS_FILE", args->Get("--s3-credentials-file").c_str(), 1);
    }
    opts.cache_dir = args->Get("--cache-dir", opts.data_dir + "/cache");
    if (args->Has("--cache-size")) {
      auto v = tusk::ParseBytes("--cache-size", args->Get("--cache-size"));
      if (!v.ok()) return Usage(std::string(v.status().message()));
      opts.cache_size = *v;
    }
  }
  tusk::SetMinLogLevel(opts.log_level);
  // Few malloc arenas: many threads each holding a large arena inflates RSS
  // with memory that is free but not returned.
  mallopt(M_ARENA_MAX, 2);

  // Signals are handled by one thread with sigwait; block them everywhere else.
  sigset_t signals = tusk::BlockStopSignals();

  tusk::pfs::PfsOptions pfs_options;
  pfs_options.data_dir = opts.data_dir;
  std::unique_ptr<tusk::pfs::ObjectStore> store;
  if (s3) {
    auto remote = tusk::pfs::OpenS3ObjectStore(opts.s3);
    if (!remote.ok()) {
      TUSK_LOG(ERROR) << "cannot open object store " << opts.object_store << ": "
                      << remote.status();
      return 1;
    }
    store = std::move(*remote);
    if (opts.cache_size > 0) {
      tusk::pfs::CacheOptions co;
      co.dir = opts.cache_dir;
      co.max_bytes = opts.cache_size;
      auto cached = tusk::pfs::OpenCachedObjectStore(std::move(store), co);
      if (!cached.ok()) {
        TUSK_LOG(ERROR) << "cannot open the object cache " << opts.cache_dir << ": "
                        << cached.status();
        return 1;
      }
      store = std::move(*cached);
    }
    // Pack uploads overlap: each is a round trip to S3.
    pfs_options.blobs.packs_in_flight = opts.s3.parallelism;
  } else if (!opts.object_store.empty()) {
    auto local = tusk::pfs::OpenLocalObjectStore(opts.object_store);
    if (!local.ok()) {
      TUSK_LOG(ERROR) << "cannot open object store " << opts.object_store << ": " << local.status();
      return 1;
    }
    store = std::move(*local);
  }
  pfs_options.object_store = store.get();
  pfs_options.rebuild_index = args->Has("--rebuild-index");
  std::string log_mode = args->Get("--log-mode", s3 ? "strict" : "shipped");
  if (log_mode == "strict") {
    pfs_options.log_mode = tusk::pfs::LogMode::kStrict;
  } else if (log_mode == "shipped") {
    pfs_options.log_mode = tusk::pfs::LogMode::kShipped;
  } else {
    return Usage("--log-mode must be strict or shipped, not '" + log_mode + "'");
  }
  auto pfs = tusk::pfs::Pfs::Open(pfs_options);
  if (!pfs.ok()) {
    TUSK_LOG(ERROR) << "cannot open data directory " << opts.data_dir << ": " << pfs.status();
    return 1;
  }
  tusk::server::StreamWatchdog put_watchdog(opts.put_idle_timeout);
  tusk::server::ApiService service(pfs->get());
  service.SetGcDefaults(opts.gc);
  service.SetPutWatchdog(&put_watchdog);
  tusk::ingest::Sources source_store(pfs->get());
  tusk::server::SourceService sources(&source_store);
  tusk::dispatcher::Pipelines pipelines(pfs->get());
  auto dispatcher = tusk::dispatcher::Dispatcher::Open(pfs->get(), &pipelines, {});
  if (!dispatcher.ok()) {
    TUSK_LOG(ERROR) << "cannot load pipelines and jobs from " << opts.data_dir << ": "
                    << dispatcher.status();
    return 1;
  }
  tusk::dispatcher::Dispatcher *jobs = dispatcher->get();
  service.SetDispatcher(jobs);
  tusk::server::PpsService pps(&pipelines, jobs);
  tusk::server::WorkerService worker(jobs);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(opts.listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  builder.RegisterService(&sources);
  builder.RegisterService(&pps);
  builder.RegisterService(&worker);
  tusk::ApplyMessageLimits(&builder);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    TUSK_LOG(ERROR) << "cannot listen on " << opts.listen << " (address in use or invalid)";
    return 1;
  }
  std::string host = opts.listen.substr(0, opts.listen.rfind(':'));
  TUSK_LOG(INFO) << "tuskd " << tusk::kTuskVersion << " serving on " << host << ":" << port
                 << " with data in " << opts.data_dir << " and objects in "
                 << (store ? store->Describe() : opts.data_dir + "/objects");
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
    ro.address =
        (host == "0.0.0.0" || host == "[::]" ? "127.0.0.1" : host) + ":" + std::to_string(port);
    // Absolute: runners chdir into their datum directories.
    char real[PATH_MAX];
    std::string data_dir =
        realpath(opts.data_dir.c_str(), real) ? std::string(real) : opts.data_dir;
    ro.work_root = data_dir + "/runners";
    ro.hide = {data_dir};
    ro.sandbox = opts.sandbox;
    runners = std::make_unique<tusk::server::LocalRunners>(jobs, ro);
    runners->Start();
  }

  // Retention and GC in the background.
  absl::Mutex maintenance_mu;
  bool stopping = false;
  std::thread maintenance([&] {
    absl::Time next_gc = absl::Now() + opts.gc_interval;
    absl::Time next_retention = absl::Now() + opts.retention_interval;
    for (;;) {
      {
        absl::MutexLock lock(&maintenance_mu);
        maintenance_mu.AwaitWithTimeout(absl::Condition(&stopping), absl::Seconds(1));
        if (stopping) return;
      }
      absl::Time now = absl::Now();
      if (opts.gc_interval > absl::ZeroDuration() && now >= next_gc) {
        auto st = (*pfs)->Gc(opts.gc);
        if (!st.ok()) TUSK_LOG(WARNING) << "periodic gc: " << st.status();
        next_gc = absl::Now() + opts.gc_interval;
        next_retention = absl::Now() + opts.retention_interval;  // gc applied it
      } else if (opts.retention_interval > absl::ZeroDuration() && now >= next_retention) {
        auto n = (*pfs)->ApplyRetention(now);
        if (!n.ok()) TUSK_LOG(WARNING) << "retention: " << n.status();
        next_retention = absl::Now() + opts.retention_interval;
      }
    }
  });

  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    TUSK_LOG(INFO) << "received signal " << sig << ", shutting down";
    runners.reset();
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  });
  server->Wait();
  waiter.join();
  {
    absl::MutexLock lock(&maintenance_mu);
    stopping = true;
  }
  maintenance.join();
  server.reset();
  dispatcher->reset();
  pfs->reset();
  if (store) {
    tusk::pfs::ObjectStoreStats st = store->Stats();
    TUSK_LOG(INFO) << "object store " << store->Describe() << ": " << st.puts() << " PUT, "
                   << st.gets() << " GET, " << st.heads() << " HEAD, " << st.lists() << " LIST, "
                   << st.deletes() << " DELETE, " << st.retries() << " retries; cache "
                   << st.cache_hits() << " hits, " << st.cache_misses() << " misses";
  }
  TUSK_LOG(INFO) << "tuskd stopped";
  return 0;
}
