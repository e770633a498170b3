#pragma once

// Tuskd: the tusk server assembled from its options: the object store (a
// local directory or S3 with a local cache), the Pfs, the dispatcher and the
// stores of pipelines and sources, the gRPC services, local runners, and the
// background retention and GC. tuskd's main() only turns flags into
// TuskdOptions; tests start a Tuskd in process.
//
// Lifecycle: Open() builds and starts everything (serving when it returns);
// Shutdown() stops serving (in-flight calls get a few seconds), the local
// runners and the maintenance thread; the destructor shuts down if needed
// and then closes the dispatcher, the Pfs and the object store, in that
// order. Thread-safe: Shutdown may be called from any thread, once or more.

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/grpc_channel.h"
#include "common/metrics.h"
#include "pfs/object_store.h"
#include "pfs/pfs.h"
#include "server/s3_egress.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace tusk::dispatcher {
class Dispatcher;
class RunnerBackend;
class Pipelines;
}  // namespace tusk::dispatcher

namespace tusk::ingest {
class Sources;
}  // namespace tusk::ingest

namespace tusk::http {
class HttpServer;
}  // namespace tusk::http

namespace tusk::s3gw {
class Authority;
class Gateway;
class HttpServer;
}  // namespace tusk::s3gw

namespace tusk::server {

class ApiService;
class AuthService;
class Authorizer;
class TokenStore;
class LocalRunners;
class PpsService;
class SourceService;
class StreamWatchdog;
class WorkerService;

struct TuskdOptions {
  // Where the index (data_dir/index), the local object store (unless
  // object_store says otherwise) and the cache live. Required.
  std::string data_dir;
  // "" (data_dir/objects), a local directory, or s3://BUCKET/PREFIX.
  std::string object_store;
  pfs::S3StoreOptions s3;            // with s3://: endpoint, region, retries...
  std::string cache_dir;             // default data_dir/cache
  uint64_t cache_size = 1ull << 30;  // 0: no cache
  // Default: strict with S3, shipped with a local store.
  std::optional<pfs::LogMode> log_mode;
  bool rebuild_index = false;
  std::function<void(const std::string&)> rebuild_progress;
  absl::Duration gc_interval = absl::Hours(1);           // 0: no periodic GC
  absl::Duration retention_interval = absl::Minutes(1);  // 0: none between GCs
  absl::Duration put_idle_timeout = absl::Minutes(1);    // 0: never
  pfs::GcOptions gc;
  std::string listen = "127.0.0.1:1650";  // port 0 picks one
  // Tokens and roles (server/auth.h). Off: every caller may do everything.
  bool auth = false;
  // Where the root token goes when it is made (first start with auth, or
  // rotate_root_token): this file, mode 0600; empty: root_token() only.
  std::string root_token_file;
  bool rotate_root_token = false;
  // TLS for the gRPC API (plaintext without a certificate).
  ServerTlsOptions tls;
  // HTTP listener for /metrics, /healthz and /readyz (HOST:PORT, port 0
  // picks one); empty: none.
  std::string http_listen;
  // The S3 gateway (s3gw/): HOST:PORT (port 0 picks one); empty: none.
  // `s3_domain` enables virtual-host style buckets (BUCKET.DOMAIN).
  std::string s3_listen;
  std::string s3_domain;
  std::string s3_gateway_region = "us-east-1";
  int s3_threads = 8;
  // The runner backend (dispatcher/runner_backend.h): "local" (tusk-runner
  // processes here, in bubblewrap), "podman" (pods from the pipeline's
  // image), "kubernetes" (Deployments through the Kubernetes API), or
  // "none" (runners are started elsewhere).
  std::string runners = "local";
  std::string runner_binary;  // the tusk-runner local runners run
  std::string sandbox = "auto";
  // podman: the tusk image of the runner pods, podman itself, the directory
  // of transform.secrets (NAME/KEY files), and how long an idle pipeline
  // keeps its pods.
  // Empty: podman localhost/tusk:dev; kubernetes tuskd's own pod's image.
  std::string runner_image;
  std::string podman = "podman";
  std::string secrets_dir;
  absl::Duration runner_idle_grace = absl::Minutes(5);
  // kubernetes: where the cluster is (a kubeconfig; empty: in-cluster), the
  // namespace (empty: the kubeconfig's or the pod's), and the address the
  // runner pods dial (tuskd's Service, host:port).
  std::string kubeconfig;
  std::string kube_namespace;
  std::string runner_tuskd_address;
  // With TLS: the Secret and key (SECRET/KEY) of the CA runner pods trust.
  std::string runner_tls_ca;
  // Pipelines' egress to S3 (empty credentials: from the AWS environment).
  S3EgressOptions egress;
  int egress_attempts = 3;
  uint64_t job_history = 1000;  // ended jobs kept per pipeline; 0: all
};

class Tuskd {
 public:
  // Errors: InvalidArgument (options), and whatever opening the object
  // store, the data directory or the listening port gives.
  static absl::StatusOr<std::unique_ptr<Tuskd>> Open(TuskdOptions options);
  ~Tuskd();
  Tuskd(const Tuskd&) = delete;
  Tuskd& operator=(const Tuskd&) = delete;

  // The port bound (the one asked for, or the one picked for port 0).
  int port() const { return port_; }
  // The HTTP listener's port; 0 without one.
  int http_port() const;
  // The S3 gateway's port; 0 without one.
  int s3_port() const;
  // host:port to reach it on.
  std::string address() const;
  // Blocks until Shutdown.
  void Wait();
  void Shutdown();

  pfs::Pfs* pfs() { return pfs_.get(); }
  // The root token made by this Open (first start with auth, or
  // rotate_root_token), else empty. main() shows it once.
  const std::string& new_root_token() const { return new_root_token_; }

 private:
  explicit Tuskd(TuskdOptions options);
  absl::Status OpenStore();
  absl::Status OpenServices();
  absl::Status OpenAuth();
  absl::Status StartServer();
  absl::Status StartHttp();
  absl::Status StartS3();
  void CollectMetrics();
  // Makes the runner backend (before serving: specs are checked by it);
  // StartRunners() starts it once tuskd serves.
  absl::Status MakeRunners();
  void StartRunners();
  // The data directory, absolute (runners chdir; pods mount from it).
  std::string RealDataDir() const;
  void MaintenanceLoop();

  const TuskdOptions options_;
  std::unique_ptr<pfs::ObjectStore> store_;
  std::unique_ptr<pfs::Pfs> pfs_;
  std::unique_ptr<TokenStore> tokens_;
  std::unique_ptr<Authorizer> auth_;
  std::unique_ptr<AuthService> auth_service_;
  std::string new_root_token_;
  std::string runner_socket_;  // with TLS: local runners' unix socket
  std::string pod_socket_;     // podman: the runner pods' unix socket (mode 0666)
  std::unique_ptr<StreamWatchdog> put_watchdog_;
  std::unique_ptr<ApiService> api_;
  std::unique_ptr<ingest::Sources> sources_;
  std::unique_ptr<SourceService> source_service_;
  std::unique_ptr<dispatcher::Pipelines> pipelines_;
  std::unique_ptr<dispatcher::Dispatcher> dispatcher_;
  std::unique_ptr<PpsService> pps_;
  std::unique_ptr<WorkerService> worker_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<dispatcher::RunnerBackend> runners_;
  LocalRunners* local_runners_ = nullptr;  // runners_, when local
  std::unique_ptr<http::HttpServer> http_;
  std::unique_ptr<s3gw::Authority> s3_authority_;
  std::unique_ptr<s3gw::Gateway> s3_gateway_;
  std::unique_ptr<s3gw::HttpServer> s3_server_;
  int collector_ = 0;
  std::vector<metrics::CounterMirror> store_mirrors_;  // collector only
  std::thread maintenance_;
  int port_ = 0;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace tusk::server
