// tuskd: the tusk server. Turns flags into TuskdOptions (server/tuskd.h),
// runs the server until SIGINT or SIGTERM.

#include <gflags/gflags.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/daemon.h"
#include "common/flag_values.h"
#include "common/log.h"
#include "server/tuskd.h"

DEFINE_string(data_dir, "", "where the index and the local object store live (required)");
DEFINE_string(object_store, "", "s3://BUCKET/PREFIX or a local directory (default DIR/objects)");
DEFINE_string(s3_endpoint, "", "S3-compatible server (path-style); default AWS");
DEFINE_string(s3_region, "us-east-1", "region to sign S3 requests for");
DEFINE_bool(s3_virtual_host, false, "with --s3-endpoint: BUCKET.host addressing");
DEFINE_string(s3_credentials_file, "", "AWS shared credentials file");
DEFINE_string(s3_parallelism, "8", "S3 requests in flight per upload (1 to 256)");
DEFINE_string(s3_part_size, "8MiB", "S3 multipart part size (5MiB to 5GiB)");
DEFINE_string(s3_retries, "5", "retries of a failed S3 request (0 to 100)");
DEFINE_string(egress_endpoint, "", "S3-compatible server that pipelines' egress writes to");
DEFINE_string(egress_region, "", "region to sign egress requests for (default --s3-region)");
DEFINE_bool(egress_virtual_host, false, "with --egress-endpoint: BUCKET.host addressing");
DEFINE_string(egress_attempts, "3", "attempts at a job's egress before it fails (1 to 100)");
DEFINE_string(job_history, "1000", "ended jobs kept per pipeline (0: all)");
DEFINE_string(cache_dir, "", "local cache of objects read from S3 (default DIR/cache)");
DEFINE_string(cache_size, "1GiB", "bound of that cache (0 disables it)");
DEFINE_string(log_mode, "", "strict or shipped (default: strict with S3, else shipped)");
DEFINE_bool(rebuild_index, false, "recreate the index from the object store first");
DEFINE_string(gc_interval, "1h", "collect garbage this often (0: never)");
DEFINE_string(gc_grace, "1h", "objects younger than this are never collected");
DEFINE_string(put_idle_timeout, "1m", "abort a put file stream idle this long (0: never)");
DEFINE_string(retention_interval, "1m", "apply repos' retention this often (0: never)");
DEFINE_string(listen, "127.0.0.1:1650", "address to serve gRPC on (port 0 picks one)");
DEFINE_string(port_file, "", "write the port bound to this file once serving");
DEFINE_string(http_listen, "", "serve /metrics, /healthz and /readyz here (HOST:PORT)");
DEFINE_string(http_port_file, "", "write the HTTP port bound to this file once serving");
DEFINE_string(s3_listen, "",
              "serve the S3 gateway here (HOST:PORT; port 0 picks one): bucket = repo and key = "
              "REF/PATH, or bucket BRANCH.REPO and key = PATH");
DEFINE_string(s3_domain, "",
              "with --s3-listen: also accept virtual-host style requests, BUCKET.DOMAIN");
DEFINE_string(s3_gateway_region, "us-east-1",
              "the region the S3 gateway reports and its signatures name");
DEFINE_int32(s3_threads, 8, "threads of the S3 gateway (each serves many connections)");
DEFINE_string(s3_port_file, "", "write the S3 gateway's port to this file once serving");
DEFINE_string(runners, "local", "runner backend: local, podman, kubernetes or none");
DEFINE_string(kubeconfig, "", "kubernetes: the cluster's kubeconfig (default: in-cluster)");
DEFINE_string(kube_namespace, "", "kubernetes: the namespace of runner pods");
DEFINE_string(runner_tuskd_address, "", "kubernetes: how runner pods reach tuskd (HOST:PORT)");
DEFINE_string(runner_tls_ca, "", "kubernetes with TLS: SECRET/KEY of the CA runner pods trust");
DEFINE_bool(local_runners, true, "--no-local-runners is --runners none");
DEFINE_string(runner_image, "", "podman, kubernetes: the tusk image of runner pods");
DEFINE_string(podman, "podman", "podman: the podman program");
DEFINE_string(secrets_dir, "", "local, podman: transform.secrets come from NAME/KEY files here");
DEFINE_string(runner_idle_grace, "5m", "podman: an idle pipeline's pods go after this long");
DEFINE_string(runner_binary, "", "the tusk-runner to start (default: next to tuskd)");
DEFINE_string(sandbox, "auto", "for local runners: auto, bwrap or none");
DEFINE_bool(insecure_allow_remote, false,
            "serve on a non-loopback address without authentication or TLS");
DEFINE_bool(auth, false, "require a token with every call (roles: admin, writer, reader, runner)");
DEFINE_string(root_token_file, "", "write the root token here (mode 0600) when it is made");
DEFINE_bool(rotate_root_token, false, "replace the root token with a new one at start");
DEFINE_string(tls_cert, "", "PEM certificate (chain) to serve gRPC with TLS");
DEFINE_string(tls_key, "", "PEM private key of --tls-cert");
DEFINE_string(tls_client_ca, "", "PEM CA bundle: require client certificates it signed");

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
                        picks a free port). A non-loopback address needs --auth
                        and --tls-cert, or --insecure-allow-remote.
  --auth                every call must carry a token (tusk: TUSK_TOKEN or
                        'tusk auth login'); its role decides what it may do:
                        admin, writer or reader of some repos, or a pipeline's
                        runner. The first start makes the root token (admin)
                        and shows it once; 'tusk auth create-token' makes more.
  --root-token-file FILE
                        write the root token to FILE (mode 0600) instead of
                        printing it on standard output
  --rotate-root-token   make a new root token (the old one stops working) and
                        show it as above: for a lost root token
  --tls-cert FILE       serve gRPC over TLS with this PEM certificate (chain)
  --tls-key FILE        ... and this PEM private key
  --tls-client-ca FILE  mutual TLS: clients must present a certificate signed
                        by a CA in this PEM bundle
  --insecure-allow-remote
                        serve a non-loopback --listen without --auth or TLS
  --port-file FILE      write the port actually bound to FILE once serving
  --http-listen HOST:PORT
                        serve Prometheus metrics at /metrics, and /healthz and
                        /readyz, over HTTP here (default: none; port 0 picks
                        one). gRPC health (grpc.health.v1) is always on.
  --http-port-file FILE write the HTTP port bound to FILE once serving
  --s3-listen HOST:PORT serve the S3 API here (default: none; port 0 picks one):
                        bucket REPO with key REF/PATH (any ref: master~7, a
                        commit id), or bucket BRANCH.REPO with key PATH. With
                        --auth a token is both the access key id and the
                        secret; without it any credentials are accepted. A
                        non-loopback address needs --auth (or
                        --insecure-allow-remote)
  --s3-domain DOMAIN    also accept virtual-host requests, BUCKET.DOMAIN
  --s3-gateway-region R the region the gateway reports (default us-east-1)
  --s3-threads N        the gateway's threads, each serving many connections
                        (default 8)
  --s3-port-file FILE   write the S3 gateway's port to FILE once serving
  --runners BACKEND     who runs pipelines' datums:
                          local   tusk-runner processes on this machine, the
                                  command in bubblewrap; transform.image is
                                  not used (a warning says so) (default)
                          podman  each runner a podman pod from the same pod
                                  spec that goes to Kubernetes: the command
                                  runs in transform.image (required)
                          kubernetes  one Deployment per pipeline version
                                  through the Kubernetes API (needs --auth)
                          none    runners are started elsewhere
  --no-local-runners    the same as --runners none
  --runner-binary PATH  local: the tusk-runner to start (default: next to tuskd)
  --sandbox MODE        local: auto (bubblewrap if it works), bwrap, or none
  --kubeconfig FILE     kubernetes: the cluster and tuskd's credentials
                        (default: the pod's service account, in-cluster)
  --kube-namespace NS   kubernetes: where runner Deployments go (default: the
                        kubeconfig context's, or the pod's namespace)
  --runner-tuskd-address HOST:PORT
                        kubernetes: how runner pods reach tuskd (its Service)
  --runner-tls-ca SECRET/KEY
                        kubernetes, with --tls-cert: the Secret and key of
                        the CA bundle runner pods trust (tusk-tls/tls.crt for
                        a self-signed certificate), mounted in their runner
                        container alone
  --runner-image IMAGE  podman, kubernetes: the tusk image of the runner
                        containers (default: podman localhost/tusk:dev, from
                        scripts/build-image.sh; kubernetes: tuskd's own image)
  --podman PATH         podman: the podman program (default podman; its
                        containers.conf is read as usual, CONTAINERS_CONF)
  --secrets-dir DIR     local, podman: transform.secrets read the file
                        DIR/NAME/KEY (DIR/NAME mounted at mount_path, the
                        file's content as env_var)
  --runner-idle-grace D podman: a pipeline idle this long gives up its pods
                        (default 5m; 0s: at once)
  --egress-endpoint URL where pipelines' egress (spec egress.URL s3://BUCKET/
                        PREFIX) writes: an S3-compatible server, path-style
                        (default: --s3-endpoint with an S3 object store, else
                        AWS). Credentials: AWS_ACCESS_KEY_ID and
                        AWS_SECRET_ACCESS_KEY, or the shared credentials file
                        (AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE). A spec
                        names a bucket and prefix only, never an endpoint.
  --egress-region REGION
                        region to sign egress requests for (default --s3-region)
  --egress-virtual-host with --egress-endpoint: BUCKET.host addressing
  --egress-attempts N   attempts at a job's egress, 1 s apart and doubling,
                        before the job fails (default 3; each S3 request is
                        also retried as --s3-retries says)
  --job-history N       ended jobs kept per pipeline (default 1000; 0 keeps all).
                        Older jobs go with their datums and logs, and so do
                        outputs of datums that no current datum has, which GC
                        then reclaims. Ended jobs and succeeded datums are in
                        the metadata log: --rebuild-index brings them back, and
                        the first job after it reruns nothing that succeeded.
  --log-level LEVEL     debug, info (default), warning or error
  --flagfile FILE       read flags from FILE (one --name=value per line)
  --helpfull            every flag, glog's included; --helpon=tuskd: tuskd's
  --version             print the version and exit
  -h, --help            show this help

Flags may be spelled with dashes or underscores (--data-dir, --data_dir).

tuskd stops cleanly on SIGINT or SIGTERM. A crash at any moment loses no finished
commit; open commits keep what was written into them.

Exit codes: 0 clean stop, 1 could not start (bad data directory, port in use), 2 bad usage.
)";

int Usage(const std::string& error) { return tusk::UsageError("tuskd", error); }
int Usage(const absl::Status& st) { return Usage(std::string(st.message())); }

// The runner binary next to this tuskd.
std::string DefaultRunnerBinary(const char* argv0) {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  std::string exe = n > 0 ? std::string(self, n) : std::string(argv0);
  return exe.substr(0, exe.rfind('/') + 1) + "tusk-runner";
}

// Whether `listen` (HOST:PORT) is only reachable from this machine.
bool IsLoopback(const std::string& listen) {
  std::string host = listen.substr(0, listen.rfind(':'));
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// Flags into options; the exit code of bad usage, or nullopt.
std::optional<int> ReadFlags(const char* argv0, tusk::server::TuskdOptions* o) {
  o->data_dir = FLAGS_data_dir;
  if (o->data_dir.empty()) return Usage("--data-dir is required");
  o->listen = FLAGS_listen;
  o->auth = FLAGS_auth;
  o->root_token_file = FLAGS_root_token_file;
  o->rotate_root_token = FLAGS_rotate_root_token;
  if (o->rotate_root_token && !o->auth) return Usage("--rotate-root-token needs --auth");
  if (!o->root_token_file.empty() && !o->auth) return Usage("--root-token-file needs --auth");
  o->tls.cert = FLAGS_tls_cert;
  o->tls.key = FLAGS_tls_key;
  o->tls.client_ca = FLAGS_tls_client_ca;
  if (o->tls.cert.empty() != o->tls.key.empty()) {
    return Usage("--tls-cert and --tls-key go together");
  }
  if (!o->tls.client_ca.empty() && o->tls.cert.empty()) {
    return Usage("--tls-client-ca needs --tls-cert and --tls-key");
  }
  if (!IsLoopback(o->listen) && !FLAGS_insecure_allow_remote && (!o->auth || o->tls.cert.empty())) {
    return Usage("--listen " + o->listen + " is reachable from other machines, and tuskd runs " +
                 (o->auth ? "without TLS: tokens would cross the network in the clear"
                          : "without --auth: anyone who reaches it may read and delete every "
                            "repo") +
                 ". Pass --auth with --tls-cert and --tls-key, or --insecure-allow-remote to "
                 "serve there anyway.");
  }
  o->http_listen = FLAGS_http_listen;
  if (!FLAGS_http_port_file.empty() && o->http_listen.empty()) {
    return Usage("--http-port-file needs --http-listen");
  }
  o->s3_listen = FLAGS_s3_listen;
  o->s3_domain = FLAGS_s3_domain;
  o->s3_gateway_region = FLAGS_s3_gateway_region;
  o->s3_threads = FLAGS_s3_threads;
  if (o->s3_listen.empty() && (!FLAGS_s3_port_file.empty() || !FLAGS_s3_domain.empty())) {
    return Usage("--s3-port-file and --s3-domain need --s3-listen");
  }
  if (FLAGS_s3_threads < 1 || FLAGS_s3_threads > 256) {
    return Usage("--s3-threads must be from 1 to 256");
  }
  if (!o->s3_listen.empty() && !IsLoopback(o->s3_listen) && !FLAGS_insecure_allow_remote &&
      !o->auth) {
    return Usage("--s3-listen " + o->s3_listen +
                 " is reachable from other machines, and tuskd runs without --auth: anyone "
                 "who reaches it may read and overwrite every repo. Pass --auth, or "
                 "--insecure-allow-remote to serve there anyway.");
  }
  auto runners =
      tusk::ParseChoice("--runners", FLAGS_runners, {"local", "podman", "kubernetes", "none"});
  if (!runners.ok()) return Usage(runners.status());
  o->runners = FLAGS_local_runners ? *runners : "none";
  o->runner_image = FLAGS_runner_image;
  o->kubeconfig = FLAGS_kubeconfig;
  o->kube_namespace = FLAGS_kube_namespace;
  o->runner_tuskd_address = FLAGS_runner_tuskd_address;
  o->runner_tls_ca = FLAGS_runner_tls_ca;
  o->podman = FLAGS_podman;
  o->secrets_dir = FLAGS_secrets_dir;
  if (!o->secrets_dir.empty() && o->secrets_dir[0] != '/') {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) != nullptr)
      o->secrets_dir = std::string(cwd) + "/" + o->secrets_dir;
  }
  auto sandbox = tusk::ParseChoice("--sandbox", FLAGS_sandbox, {"auto", "bwrap", "none"});
  if (!sandbox.ok()) return Usage(sandbox.status());
  o->sandbox = *sandbox;
  o->runner_binary = FLAGS_runner_binary.empty() ? DefaultRunnerBinary(argv0) : FLAGS_runner_binary;
  for (auto [flag, value, target] :
       {std::tuple<const char*, const std::string&, absl::Duration*>{
            "--gc-interval", FLAGS_gc_interval, &o->gc_interval},
        {"--gc-grace", FLAGS_gc_grace, &o->gc.grace},
        {"--retention-interval", FLAGS_retention_interval, &o->retention_interval},
        {"--put-idle-timeout", FLAGS_put_idle_timeout, &o->put_idle_timeout},
        {"--runner-idle-grace", FLAGS_runner_idle_grace, &o->runner_idle_grace}}) {
    auto d = tusk::ParseFlagDuration(flag, value);
    if (!d.ok()) return Usage(d.status());
    *target = *d;
  }
  o->object_store = FLAGS_object_store;
  bool s3 = o->object_store.rfind("s3://", 0) == 0;
  for (const char* flag :
       {"s3_endpoint", "s3_region", "s3_parallelism", "s3_part_size", "s3_retries",
        "s3_virtual_host", "s3_credentials_file", "cache_dir", "cache_size"}) {
    if (tusk::FlagWasSet(flag) && !s3) {
      std::string name = absl::StrCat("--", flag);
      for (char& c : name) c = c == '_' ? '-' : c;
      return Usage(name + " needs --object-store s3://...");
    }
  }
  if (s3) {
    absl::Status st = tusk::pfs::ParseS3StoreUrl(o->object_store, &o->s3);
    if (!st.ok()) return Usage(st);
    o->s3.endpoint = FLAGS_s3_endpoint;
    o->s3.region = FLAGS_s3_region;
    o->s3.virtual_host = FLAGS_s3_virtual_host;
    auto parallelism = tusk::ParseInt("--s3-parallelism", FLAGS_s3_parallelism, 1, 256);
    if (!parallelism.ok()) return Usage(parallelism.status());
    o->s3.parallelism = static_cast<int>(*parallelism);
    auto retries = tusk::ParseInt("--s3-retries", FLAGS_s3_retries, 0, 100);
    if (!retries.ok()) return Usage(retries.status());
    o->s3.max_retries = static_cast<int>(*retries);
    auto part = tusk::ParseBytes("--s3-part-size", FLAGS_s3_part_size);
    if (!part.ok()) return Usage(part.status());
    if (*part < (5u << 20) || *part > (5ull << 30))
      return Usage("--s3-part-size must be 5MiB to 5GiB");
    o->s3.part_size = *part;
    if (!FLAGS_s3_credentials_file.empty()) {
      setenv("AWS_SHARED_CREDENTIALS_FILE", FLAGS_s3_credentials_file.c_str(), 1);
    }
    o->cache_dir = FLAGS_cache_dir.empty() ? o->data_dir + "/cache" : FLAGS_cache_dir;
    auto cache = tusk::ParseBytes("--cache-size", FLAGS_cache_size);
    if (!cache.ok()) return Usage(cache.status());
    o->cache_size = *cache;
  }
  if (!FLAGS_log_mode.empty()) {
    auto mode = tusk::ParseChoice("--log-mode", FLAGS_log_mode, {"strict", "shipped"});
    if (!mode.ok()) return Usage(mode.status());
    o->log_mode = *mode == "strict" ? tusk::pfs::LogMode::kStrict : tusk::pfs::LogMode::kShipped;
  }
  o->egress.s3.endpoint = tusk::FlagWasSet("egress_endpoint") ? FLAGS_egress_endpoint
                          : s3                                ? o->s3.endpoint
                                                              : "";
  o->egress.s3.region = !FLAGS_egress_region.empty() ? FLAGS_egress_region : FLAGS_s3_region;
  o->egress.s3.virtual_host = tusk::FlagWasSet("egress_virtual_host") ? FLAGS_egress_virtual_host
                                                                      : s3 && o->s3.virtual_host;
  if (s3) {
    o->egress.s3.max_retries = o->s3.max_retries;
    o->egress.part_size = o->s3.part_size;
  }
  auto attempts = tusk::ParseInt("--egress-attempts", FLAGS_egress_attempts, 1, 100);
  if (!attempts.ok()) return Usage(attempts.status());
  o->egress_attempts = static_cast<int>(*attempts);
  auto history = tusk::ParseInt("--job-history", FLAGS_job_history, 0, 1000000000);
  if (!history.ok()) return Usage(history.status());
  o->job_history = static_cast<uint64_t>(*history);
  o->rebuild_index = FLAGS_rebuild_index;
  return std::nullopt;
}

void WritePortFile(const std::string& path, int port) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    f << port << "\n";
  }
  std::rename(tmp.c_str(), path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (auto done = tusk::InitDaemon(argc, argv, {"tuskd", kUsage})) return *done;
  tusk::server::TuskdOptions options;
  if (auto done = ReadFlags(argv[0], &options)) return *done;
  // Few malloc arenas: many threads each holding a large arena inflates RSS
  // with memory that is free but not returned.
  mallopt(M_ARENA_MAX, 2);
  // Signals are handled by one thread with sigwait; block them everywhere else.
  sigset_t signals = tusk::BlockStopSignals();

  auto tuskd = tusk::server::Tuskd::Open(std::move(options));
  if (!tuskd.ok()) {
    LOG(ERROR) << "cannot start: " << tuskd.status();
    return 1;
  }
  if (!(*tuskd)->new_root_token().empty() && FLAGS_root_token_file.empty()) {
    // Shown once, on standard output, never in the log.
    std::cout << "Root token (shown once; keep it safe):\n  " << (*tuskd)->new_root_token()
              << "\nUse it with: tusk auth login (or TUSK_TOKEN=...)\n"
              << std::flush;
  }
  if (!FLAGS_http_port_file.empty()) WritePortFile(FLAGS_http_port_file, (*tuskd)->http_port());
  if (!FLAGS_s3_port_file.empty()) WritePortFile(FLAGS_s3_port_file, (*tuskd)->s3_port());
  if (!FLAGS_port_file.empty()) WritePortFile(FLAGS_port_file, (*tuskd)->port());
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    LOG(INFO) << "received signal " << sig << ", shutting down";
    (*tuskd)->Shutdown();
  });
  (*tuskd)->Wait();
  waiter.join();
  tuskd->reset();
  LOG(INFO) << "tuskd stopped";
  return 0;
}
