#include "server/tuskd.h"

#include <grpcpp/grpcpp.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/fs.h"
#include "common/grpc_channel.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/status.h"
#include "common/version.h"
#include "dispatcher/dispatcher.h"
#include "dispatcher/pipelines.h"
#include "dispatcher/spec.h"
#include "http/http_server.h"
#include "http/sigv4_verify.h"
#include "ingest/sources.h"
#include "pfs/pfs_metrics.h"
#include "pods/kube_runners.h"
#include "pods/podman_runners.h"
#include "s3gw/gateway.h"
#include "s3gw/server.h"
#include "server/api_service.h"
#include "server/auth.h"
#include "server/auth_service.h"
#include "server/grpc_metrics.h"
#include "server/local_runners.h"
#include "server/pps_service.h"
#include "server/s3_egress.h"
#include "server/source_service.h"
#include "server/stream_watchdog.h"

namespace tusk::server {
namespace {

// The S3 gateway's access keys are tokens: the access key id and the secret
// access key are both the token (as in Pachyderm's gateway), since tuskd
// keeps only a token's hash and SigV4 needs the secret itself.
class TokenAuthority final : public s3gw::Authority {
 public:
  TokenAuthority(TokenStore* tokens, Authorizer* auth) : tokens_(tokens), auth_(auth) {}

  absl::StatusOr<std::string> Secret(const std::string& access_key) override {
    auto info = tokens_->Verify(access_key, absl::Now());
    if (!info.ok()) {
      absl::Status st = absl::PermissionDeniedError(
          "the access key id is not a valid tusk token (unknown, revoked or expired); use a "
          "token as both the access key id and the secret access key");
      st.SetPayload(http::kS3ErrorCodePayload, absl::Cord("InvalidAccessKeyId"));
      return st;
    }
    return access_key;
  }

  bool Allowed(const std::string& access_key, bool write, const std::string& repo) override {
    auto info = tokens_->Verify(access_key, absl::Now());
    if (!info.ok()) return false;
    Caller caller;
    caller.token = *info;
    return auth_->Can(caller, write ? Access::kWrite : Access::kRead, repo);
  }

 private:
  TokenStore* const tokens_;
  Authorizer* const auth_;
};

}  // namespace

Tuskd::Tuskd(TuskdOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<Tuskd>> Tuskd::Open(TuskdOptions options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("the data directory is not set");
  auto t = std::unique_ptr<Tuskd>(new Tuskd(std::move(options)));
  RETURN_IF_ERROR(t->OpenStore());
  RETURN_IF_ERROR(t->OpenAuth());
  RETURN_IF_ERROR(t->OpenServices());
  RETURN_IF_ERROR(t->StartServer());
  RETURN_IF_ERROR(t->StartHttp());
  RETURN_IF_ERROR(t->StartS3());
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
  } else {
    const std::string dir = url.empty() ? options_.data_dir + "/objects" : url;
    RETURN_IF_ERROR(MkdirAll(options_.data_dir));
    auto local = pfs::OpenLocalObjectStore(dir);
    if (!local.ok()) return Annotate(local.status(), "opening object store " + dir);
    store_ = std::move(*local);
  }
  store_ = pfs::InstrumentObjectStore(std::move(store_));
  po.object_store = store_.get();
  po.rebuild_index = options_.rebuild_index;
  po.rebuild_progress = options_.rebuild_progress;
  po.log_mode = options_.log_mode.value_or(s3 ? pfs::LogMode::kStrict : pfs::LogMode::kShipped);
  auto pfs = pfs::Pfs::Open(po);
  if (!pfs.ok()) return Annotate(pfs.status(), "opening data directory " + options_.data_dir);
  pfs_ = std::move(*pfs);
  return absl::OkStatus();
}

absl::Status Tuskd::OpenAuth() {
  if (options_.auth) {
    auto tokens = TokenStore::Open(pfs_->Space(pfs::kTokenSpace));
    if (!tokens.ok()) return Annotate(tokens.status(), "loading tokens");
    tokens_ = std::move(*tokens);
    std::optional<TokenStore::Created> root;
    if (options_.rotate_root_token) {
      ASSIGN_OR_RETURN(root, tokens_->RotateRoot("tuskd --rotate-root-token"));
      LOG(INFO) << "rotated the root token (--rotate-root-token)";
    } else {
      ASSIGN_OR_RETURN(root, tokens_->EnsureRoot());
      if (root) LOG(INFO) << "made the root token (first start with --auth)";
    }
    if (root) {
      new_root_token_ = root->token;
      if (!options_.root_token_file.empty()) {
        RETURN_IF_ERROR(WriteSecretFile(options_.root_token_file, root->token + "\n"));
        LOG(INFO) << "wrote the root token to " << options_.root_token_file;
      }
    }
  } else if (options_.rotate_root_token) {
    return absl::InvalidArgumentError("--rotate-root-token needs --auth");
  }
  // A runner token may read its pipeline's inputs.
  auth_ = std::make_unique<Authorizer>(
      tokens_.get(),
      [this](const std::string& pipeline) -> absl::StatusOr<std::vector<std::string>> {
        ASSIGN_OR_RETURN(auto info, pipelines_->Inspect(pipeline));
        std::vector<std::string> repos;
        for (const auto* in : dispatcher::PfsInputs(info.spec().input())) {
          repos.push_back(in->repo());
        }
        return repos;
      });
  auth_service_ = std::make_unique<AuthService>(auth_.get());
  return absl::OkStatus();
}

absl::Status Tuskd::OpenServices() {
  put_watchdog_ = std::make_unique<StreamWatchdog>(options_.put_idle_timeout);
  api_ = std::make_unique<ApiService>(pfs_.get(), auth_.get());
  api_->SetGcDefaults(options_.gc);
  api_->SetPutWatchdog(put_watchdog_.get());
  sources_ = std::make_unique<ingest::Sources>(pfs_.get());
  source_service_ = std::make_unique<SourceService>(sources_.get(), auth_.get());
  pipelines_ = std::make_unique<dispatcher::Pipelines>(pfs_.get());
  dispatcher::DispatcherOptions dopts;
  dopts.egress = MakeS3Egress(options_.egress);
  dopts.egress_attempts = options_.egress_attempts;
  dopts.job_history = options_.job_history;
  auto d = dispatcher::Dispatcher::Open(pfs_.get(), pipelines_.get(), dopts);
  if (!d.ok()) {
    return Annotate(d.status(), "loading pipelines and jobs from " + options_.data_dir);
  }
  dispatcher_ = std::move(*d);
  api_->SetDispatcher(dispatcher_.get());
  pps_ = std::make_unique<PpsService>(pipelines_.get(), dispatcher_.get(), auth_.get());
  worker_ = std::make_unique<WorkerService>(dispatcher_.get(), auth_.get());
  if (!options_.s3_listen.empty()) {
    // Made before serving: the gateway adds a GC source (multipart parts).
    s3gw::GatewayOptions go;
    go.domain = options_.s3_domain;
    go.region = options_.s3_gateway_region;
    if (tokens_) {
      s3_authority_ = std::make_unique<TokenAuthority>(tokens_.get(), auth_.get());
      go.authority = s3_authority_.get();
    }
    s3_gateway_ = std::make_unique<s3gw::Gateway>(pfs_.get(), go);
  }
  return MakeRunners();
}

std::string Tuskd::RealDataDir() const {
  char real[PATH_MAX];
  return realpath(options_.data_dir.c_str(), real) ? std::string(real) : options_.data_dir;
}

absl::Status Tuskd::MakeRunners() {
  const std::string data_dir = RealDataDir();
  if (options_.runners == "local") {
    LocalRunnersOptions ro;
    ro.runner_binary = options_.runner_binary;
    if (tokens_) {
      ro.runner_token = [tokens = tokens_.get()](const std::string& pipeline) {
        return tokens->MintRunnerToken(pipeline);
      };
    }
    ro.work_root = data_dir + "/runners";
    ro.hide = {data_dir};
    ro.sandbox = options_.sandbox;
    ro.secrets_dir = options_.secrets_dir;
    auto local = std::make_unique<LocalRunners>(dispatcher_.get(), ro);
    local_runners_ = local.get();
    runners_ = std::move(local);
  } else if (options_.runners == "podman") {
    pods::PodmanRunnersOptions po;
    po.podman = options_.podman;
    po.owner = Sha256(data_dir).Hex().substr(0, 6);
    po.work_dir = data_dir + "/pods";
    RETURN_IF_ERROR(MkdirAll(po.work_dir));
    ::chmod(po.work_dir.c_str(), 0700);
    const std::string run_dir = data_dir + "/run";
    RETURN_IF_ERROR(MkdirAll(run_dir));
    // The runner containers' user (not root) must reach the socket in it.
    ::chmod(run_dir.c_str(), 0755);
    pod_socket_ = run_dir + "/tuskd.sock";
    if (pod_socket_.size() >= sizeof(sockaddr_un{}.sun_path)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the data directory's path is too long for the runner pods' socket ", pod_socket_));
    }
    po.pod.runner_image =
        options_.runner_image.empty() ? "localhost/tusk:dev" : options_.runner_image;
    po.pod.tuskd_socket_dir = run_dir;
    po.pod.tuskd_address = absl::StrCat("unix:", pods::kTuskdSocketDir, "/tuskd.sock");
    po.pod.secrets_dir = options_.secrets_dir;
    po.idle_grace = options_.runner_idle_grace;
    if (tokens_) {
      po.runner_token =
          [tokens = tokens_.get()](const std::string& pipeline) -> absl::StatusOr<std::string> {
        ASSIGN_OR_RETURN(TokenStore::Created made, tokens->MintRunnerToken(pipeline));
        return made.token;
      };
    }
    runners_ = std::make_unique<pods::PodmanRunners>(dispatcher_.get(), po);
  } else if (options_.runners == "kubernetes") {
    if (!tokens_) {
      return absl::InvalidArgumentError(
          "--runners kubernetes needs --auth: user code in a runner pod shares the pod's network "
          "with the runner, and only tokens keep it from tuskd's API");
    }
    if (options_.runner_tuskd_address.empty()) {
      return absl::InvalidArgumentError(
          "--runners kubernetes needs --runner-tuskd-address (how runner pods reach tuskd, e.g. "
          "its Service tusk.tusk.svc:1650)");
    }
    ASSIGN_OR_RETURN(
        pods::KubeConfig kc,
        pods::LoadKubeConfig(options_.kubeconfig, options_.kube_namespace, data_dir + "/kube"));
    ASSIGN_OR_RETURN(auto client, pods::KubeClient::Open(kc));
    pods::KubeRunnersOptions ko;
    ko.pod.runner_image = options_.runner_image;
    if (ko.pod.runner_image.empty()) {
      // In a pod: the runners run tuskd's own image (what the kustomization
      // names), so the two never drift apart.
      const char* self = std::getenv("HOSTNAME");
      auto own = client->PodImage(self ? self : "", "tuskd");
      if (!own.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--runner-image is not set and tuskd cannot read its own pod's image: ",
                         own.status().message()));
      }
      ko.pod.runner_image = *own;
    }
    ko.pod.tuskd_address = options_.runner_tuskd_address;
    ko.idle_grace = options_.runner_idle_grace;
    if (!options_.tls.cert.empty()) {
      const size_t slash = options_.runner_tls_ca.find('/');
      if (slash == std::string::npos || slash == 0 || slash + 1 == options_.runner_tls_ca.size()) {
        return absl::InvalidArgumentError(
            "tuskd serves TLS: --runners kubernetes needs --runner-tls-ca SECRET/KEY, the Secret "
            "and key holding the CA bundle runner pods trust (e.g. tusk-tls/tls.crt for a "
            "self-signed certificate)");
      }
      ko.pod.tls_ca_secret = options_.runner_tls_ca.substr(0, slash);
      ko.pod.tls_ca_key = options_.runner_tls_ca.substr(slash + 1);
    }
    ko.runner_token =
        [tokens = tokens_.get()](const std::string& pipeline) -> absl::StatusOr<std::string> {
      ASSIGN_OR_RETURN(TokenStore::Created made, tokens->MintRunnerToken(pipeline));
      return made.token;
    };
    LOG(INFO) << "runner pods in namespace " << kc.ns << " of " << kc.server;
    runners_ = std::make_unique<pods::KubeRunners>(dispatcher_.get(), std::move(client), ko);
  } else if (options_.runners != "none") {
    return absl::InvalidArgumentError(absl::StrCat("unknown runner backend '", options_.runners,
                                                   "' (local, podman, kubernetes or none)"));
  }
  pps_->SetRunnerBackend(runners_.get());
  return absl::OkStatus();
}

absl::Status Tuskd::StartServer() {
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default: a second tuskd on a taken port would
  // bind it too and take half the calls. A taken port is an error instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  auto creds = ServerCredentials(options_.tls);
  if (!creds.ok()) return creds.status();
  builder.AddListeningPort(options_.listen, *creds, &port_);
  if (!pod_socket_.empty()) {
    // Runner pods reach tuskd through this socket, mounted into their runner
    // container alone; their network has no route to tuskd.
    ::unlink(pod_socket_.c_str());
    builder.AddListeningPort("unix:" + pod_socket_, grpc::InsecureServerCredentials());
  }
  if (!options_.tls.cert.empty() && local_runners_ != nullptr) {
    // Local runners reach tuskd over a unix socket in the data directory
    // (its permissions guard it; sandboxed commands cannot see it), not
    // over TLS, whose certificate may not name the loopback address.
    runner_socket_ = RealDataDir() + "/tuskd.sock";
    if (runner_socket_.size() >= sizeof(sockaddr_un{}.sun_path)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the data directory's path is too long for the local runners' socket ", runner_socket_,
          " (at most ", sizeof(sockaddr_un{}.sun_path) - 1, " bytes)"));
    }
    ::unlink(runner_socket_.c_str());
    builder.AddListeningPort("unix:" + runner_socket_, grpc::InsecureServerCredentials());
  }
  // grpc.health.v1.Health, answered by gRPC itself (no token needed).
  grpc::EnableDefaultHealthCheckService(true);
  builder.experimental().SetInterceptorCreators(MetricsInterceptors());
  builder.RegisterService(auth_service_.get());
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
  if (!runner_socket_.empty() && ::chmod(runner_socket_.c_str(), 0600) != 0) {
    return absl::InternalError(absl::StrCat("cannot make ", runner_socket_, " private"));
  }
  // Like the loopback port: whoever reaches it still needs a token (--auth).
  if (!pod_socket_.empty() && ::chmod(pod_socket_.c_str(), 0666) != 0) {
    return absl::InternalError(absl::StrCat("cannot open ", pod_socket_, " to the runner pods"));
  }
  return absl::OkStatus();
}

absl::Status Tuskd::StartHttp() {
  collector_ = metrics::OnCollect([this] { CollectMetrics(); });
  if (options_.http_listen.empty()) return absl::OkStatus();
  auto http = http::HttpServer::Start(options_.http_listen,
                                      http::ObservabilityRoutes([this]() -> absl::Status {
                                        absl::MutexLock lock(&mu_);
                                        if (stopping_)
                                          return absl::UnavailableError("tuskd is shutting down");
                                        return absl::OkStatus();
                                      }));
  if (!http.ok()) return http.status();
  http_ = std::move(*http);
  LOG(INFO) << "serving /metrics, /healthz and /readyz on "
            << options_.http_listen.substr(0, options_.http_listen.rfind(':')) << ":"
            << http_->port();
  return absl::OkStatus();
}

int Tuskd::http_port() const { return http_ ? http_->port() : 0; }

absl::Status Tuskd::StartS3() {
  if (!s3_gateway_) return absl::OkStatus();
  s3gw::HttpServerOptions so;
  so.listen = options_.s3_listen;
  so.threads = options_.s3_threads;
  auto server = s3gw::HttpServer::Start(so, s3_gateway_.get());
  if (!server.ok()) return server.status();
  s3_server_ = std::move(*server);
  LOG(INFO) << "serving the S3 gateway on "
            << options_.s3_listen.substr(0, options_.s3_listen.rfind(':')) << ":"
            << s3_server_->port()
            << (options_.s3_domain.empty() ? ""
                                           : " (virtual hosts under " + options_.s3_domain + ")")
            << (s3_authority_ ? ", access keys are tokens" : ", any credentials accepted");
  return absl::OkStatus();
}

int Tuskd::s3_port() const { return s3_server_ ? s3_server_->port() : 0; }

void Tuskd::CollectMetrics() {
  // The object store's own counts (requests to its backend, retries, cache).
  pfs::ObjectStoreStats st = store_->Stats();
  if (store_mirrors_.empty()) {
    const char* help = "Requests the object store made to its backend (S3), by kind";
    for (const char* kind : {"put", "get", "head", "list", "delete"}) {
      store_mirrors_.emplace_back(
          metrics::GetCounter("tusk_object_store_backend_requests_total", help, {{"kind", kind}}));
    }
    store_mirrors_.emplace_back(metrics::GetCounter(
        "tusk_object_store_retries_total", "Object-store requests retried after a failure"));
    store_mirrors_.emplace_back(metrics::GetCounter("tusk_object_store_cache_hits_total",
                                                    "Object reads served by the local cache"));
    store_mirrors_.emplace_back(metrics::GetCounter("tusk_object_store_cache_misses_total",
                                                    "Object reads the local cache had to fetch"));
  }
  const uint64_t values[] = {st.puts(),    st.gets(),    st.heads(),      st.lists(),
                             st.deletes(), st.retries(), st.cache_hits(), st.cache_misses()};
  for (size_t i = 0; i < store_mirrors_.size(); ++i) store_mirrors_[i].Sync(values[i]);
  pfs::Metrics().UpdateDedupRatio();
}

std::string Tuskd::address() const {
  std::string host = options_.listen.substr(0, options_.listen.rfind(':'));
  return absl::StrCat(host, ":", port_);
}

void Tuskd::StartRunners() {
  if (!runners_) return;
  if (local_runners_ != nullptr) {
    std::string host = options_.listen.substr(0, options_.listen.rfind(':'));
    std::string address =
        absl::StrCat(host == "0.0.0.0" || host == "[::]" ? "127.0.0.1" : host, ":", port_);
    if (!runner_socket_.empty()) address = "unix:" + runner_socket_;
    local_runners_->SetAddress(address);
  }
  LOG(INFO) << "runners: " << runners_->name();
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
  if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService()) {
    health->Shutdown();  // NOT_SERVING from now on
  }
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (maintenance_.joinable()) maintenance_.join();
}

Tuskd::~Tuskd() {
  if (collector_ != 0) metrics::RemoveCollector(collector_);
  http_.reset();
  s3_server_.reset();  // waits for requests in progress
  s3_gateway_.reset();
  if (server_) {
    Shutdown();
    server_->Wait();
  }
  server_.reset();
  if (!runner_socket_.empty()) ::unlink(runner_socket_.c_str());
  if (!pod_socket_.empty()) ::unlink(pod_socket_.c_str());
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
