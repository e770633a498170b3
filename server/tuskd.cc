#include "server/tuskd.h"

#include <grpcpp/grpcpp.h>
#include <limits.h>
#include <stdlib.h>

#include "absl/strings/str_cat.h"
#include "common/grpc_channel.h"
#include "common/log.h"
#include "common/status.h"
#include "common/version.h"
#include "dispatcher/dispatcher.h"
#include "dispatcher/pipelines.h"
#include "ingest/sources.h"
#include "server/api_service.h"
#include "server/local_runners.h"
#include "server/pps_service.h"
#include "server/source_service.h"
#include "server/stream_watchdog.h"

namespace tusk::server {

Tuskd::Tuskd(TuskdOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<Tuskd>> Tuskd::Open(TuskdOptions options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("the data directory is not set");
  auto t = std::unique_ptr<Tuskd>(new Tuskd(std::move(options)));
  RETURN_IF_ERROR(t->OpenStore());
  RETURN_IF_ERROR(t->OpenServices());
  RETURN_IF_ERROR(t->StartServer());
  LOG(INFO) << "tuskd " << kTuskVersion << " serving on " << t->address() << " with data in "
            << t->options_.data_dir << " and objects in "
            << (t->store_ ? t->store_->Describe() : t->options_.data_dir + "/objects");
  t->StartRunners();
  t->maintenance_ = std::thread([p = t.get()] { p->MaintenanceLoop(); });
  return t;
}

absl::Status Tuskd::OpenStore() {
  const std::string& url = options_.object_store;
  const bool s3 = url.rfind("s3://", 0) == 0;
  pfs::PfsOptions po;
  po.data_dir = options_.data_dir;
  if (s3) {
    auto remote = pfs::OpenS3ObjectStore(options_.s3);
    if (!remote.ok()) return Annotate(remote.status(), "opening object store " + url);
    store_ = std::move(*remote);
    if (options_.cache_size > 0) {
      pfs::CacheOptions co;
      co.dir = options_.cache_dir.empty() ? options_.data_dir + "/cache" : options_.cache_dir;
      co.max_bytes = options_.cache_size;
      auto cached = pfs::OpenCachedObjectStore(std::move(store_), co);
      if (!cached.ok()) return Annotate(cached.status(), "opening the object cache " + co.dir);
      store_ = std::move(*cached);
    }
    // Pack uploads overlap: each is a round trip to S3.
    po.blobs.packs_in_flight = options_.s3.parallelism;
  } else if (!url.empty()) {
    auto local = pfs::OpenLocalObjectStore(url);
    if (!local.ok()) return Annotate(local.status(), "opening object store " + url);
    store_ = std::move(*local);
  }
  po.object_store = store_.get();
  po.rebuild_index = options_.rebuild_index;
  po.rebuild_progress = options_.rebuild_progress;
  po.log_mode = options_.log_mode.value_or(s3 ? pfs::LogMode::kStrict : pfs::LogMode::kShipped);
  auto pfs = pfs::Pfs::Open(po);
  if (!pfs.ok()) return Annotate(pfs.status(), "opening data directory " + options_.data_dir);
  pfs_ = std::move(*pfs);
  return absl::OkStatus();
}

absl::Status Tuskd::OpenServices() {
  put_watchdog_ = std::make_unique<StreamWatchdog>(options_.put_idle_timeout);
  api_ = std::make_unique<ApiService>(pfs_.get());
  api_->SetGcDefaults(options_.gc);
  api_->SetPutWatchdog(put_watchdog_.get());
  sources_ = std::make_unique<ingest::Sources>(pfs_.get());
  source_service_ = std::make_unique<SourceService>(sources_.get());
  pipelines_ = std::make_unique<dispatcher::Pipelines>(pfs_.get());
  auto d = dispatcher::Dispatcher::Open(pfs_.get(), pipelines_.get(), {});
  if (!d.ok()) {
    return Annotate(d.status(), "loading pipelines and jobs from " + options_.data_dir);
  }
  dispatcher_ = std::move(*d);
  api_->SetDispatcher(dispatcher_.get());
  pps_ = std::make_unique<PpsService>(pipelines_.get(), dispatcher_.get());
  worker_ = std::make_unique<WorkerService>(dispatcher_.get());
  return absl::OkStatus();
}

absl::Status Tuskd::StartServer() {
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default: a second tuskd on a taken port would
  // bind it too and take half the calls. A taken port is an error instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(options_.listen, grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(api_.get());
  builder.RegisterService(source_service_.get());
  builder.RegisterService(pps_.get());
  builder.RegisterService(worker_.get());
  ApplyMessageLimits(&builder);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options_.listen, " (address in use or invalid)"));
  }
  return absl::OkStatus();
}

std::string Tuskd::address() const {
  std::string host = options_.listen.substr(0, options_.listen.rfind(':'));
  return absl::StrCat(host, ":", port_);
}

void Tuskd::StartRunners() {
  if (!options_.local_runners) return;
  LocalRunnersOptions ro;
  ro.runner_binary = options_.runner_binary;
  std::string host = options_.listen.substr(0, options_.listen.rfind(':'));
  ro.address = absl::StrCat(host == "0.0.0.0" || host == "[::]" ? "127.0.0.1" : host, ":", port_);
  // Absolute: runners chdir into their datum directories.
  char real[PATH_MAX];
  std::string data_dir =
      realpath(options_.data_dir.c_str(), real) ? std::string(real) : options_.data_dir;
  ro.work_root = data_dir + "/runners";
  ro.hide = {data_dir};
  ro.sandbox = options_.sandbox;
  runners_ = std::make_unique<LocalRunners>(dispatcher_.get(), ro);
  runners_->Start();
}

void Tuskd::MaintenanceLoop() {
  absl::Time next_gc = absl::Now() + options_.gc_interval;
  absl::Time next_retention = absl::Now() + options_.retention_interval;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Seconds(1));
      if (stopping_) return;
    }
    absl::Time now = absl::Now();
    if (options_.gc_interval > absl::ZeroDuration() && now >= next_gc) {
      auto st = pfs_->Gc(options_.gc);
      if (!st.ok()) LOG(WARNING) << "periodic gc: " << st.status();
      next_gc = absl::Now() + options_.gc_interval;
      next_retention = absl::Now() + options_.retention_interval;  // gc applied it
    } else if (options_.retention_interval > absl::ZeroDuration() && now >= next_retention) {
      auto n = pfs_->ApplyRetention(now);
      if (!n.ok()) LOG(WARNING) << "retention: " << n.status();
      next_retention = absl::Now() + options_.retention_interval;
    }
  }
}

void Tuskd::Wait() { server_->Wait(); }

void Tuskd::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  runners_.reset();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (maintenance_.joinable()) maintenance_.join();
}

Tuskd::~Tuskd() {
  if (server_) {
    Shutdown();
    server_->Wait();
  }
  server_.reset();
  dispatcher_.reset();
  pfs_.reset();
  if (store_) {
    pfs::ObjectStoreStats st = store_->Stats();
    LOG(INFO) << "object store " << store_->Describe() << ": " << st.puts() << " PUT, " << st.gets()
              << " GET, " << st.heads() << " HEAD, " << st.lists() << " LIST, " << st.deletes()
              << " DELETE, " << st.retries() << " retries; cache " << st.cache_hits() << " hits, "
              << st.cache_misses() << " misses";
  }
}

}  // namespace tusk::server
