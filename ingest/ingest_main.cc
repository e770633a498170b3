// tusk-ingest: one member of a Kafka source's consumer group; turns records
// into exactly-once micro-commits in tuskd.

#include <gflags/gflags.h>
#include <malloc.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/client_flags.h"
#include "common/daemon.h"
#include "common/flag_values.h"
#include "common/log.h"
#include "common/version.h"
#include "http/http_server.h"
#include "ingest/ingester.h"

DEFINE_string(source, "", "the source to run (required)");
DEFINE_string(address, "", "tuskd address (default $TUSK_ADDRESS, else 127.0.0.1:1650)");
DEFINE_string(member_id, "", "this member's name in reports (default HOST-PID)");
DEFINE_string(fetch_buffer, "", "bound on records fetched ahead of the batches (default 64M)");
DEFINE_string(kafka_config, "", "extra librdkafka property K=V (repeatable)");
DEFINE_string(http_listen, "", "serve /metrics, /healthz and /readyz here (HOST:PORT)");
DEFINE_string(max_backoff, "", "longest wait between retries when tuskd is down (default 10s)");

namespace {

constexpr char kUsageHead[] =
    R"(tusk-ingest: run one member of a Kafka source (see 'tusk create source')

Usage: tusk-ingest --source NAME [options]

Reads the source's spec from tuskd, joins its Kafka consumer group (the group
id is the source name) and writes the records of its partitions into
micro-commits on the source's repo@branch. Start more processes to share the
partitions. Every record lands exactly once: the offsets a commit covers are
part of that commit, and a member always resumes from the branch head.

Options:
  --source NAME          the source to run (required)
  --address HOST:PORT    tuskd address (default: $TUSK_ADDRESS, else 127.0.0.1:1650)
  --member-id ID         this member's name in reports (default: HOST-PID)
  --fetch-buffer BYTES   bound on records fetched from Kafka ahead of the
                         batches (default 64M; K, M, G suffixes). With two
                         batches of the source's max-bytes, this bounds memory.
  --kafka-config K=V     extra librdkafka property, overriding the source's
                         (repeatable; e.g. security.protocol=SSL)
  --max-backoff D        longest wait between retries when tuskd is down
                         (default 10s)
  --http-listen H:P      serve Prometheus metrics at /metrics (records, bytes,
                         commits, commit latency, lag per partition, records
                         lost, dead letters), /healthz and /readyz
)";
constexpr char kUsageTail[] =
    R"(  --log-level LEVEL      debug, info (default), warning or error
  --version              print the version and exit
  -h, --help             show this help

When tuskd is slow or down, fetching pauses, commits are retried with
exponential backoff and the log says why. Records over the source's
max-record-bytes (or, with value format json, not JSON) go to /_dead_letter/
in the repo with the reason. Records the broker deleted before they were read
are logged as RECORDS LOST and recorded in the next commit's metadata.

Stops cleanly on SIGINT or SIGTERM (lands the current batch first), and by
itself when the source is deleted. It restarts itself when the spec changes.

Exit codes: 0 stopped, 1 failed (tuskd or Kafka refused), 2 bad usage,
3 no such source.
)";

int Usage(const std::string &error) { return tusk::UsageError("tusk-ingest", error); }

std::atomic<bool> g_stop{false};

}  // namespace

int main(int argc, char **argv) {
  const std::string usage = std::string(kUsageHead) + tusk::kClientFlagsHelp + kUsageTail;
  if (auto done =
          tusk::InitDaemon(argc, argv, {"tusk-ingest", usage.c_str(), false, {"kafka_config"}})) {
    return *done;
  }
  tusk::ingest::IngesterOptions opts;
  opts.source = FLAGS_source;
  if (opts.source.empty()) return Usage("--source is required");
  opts.tuskd = FLAGS_address;
  if (opts.tuskd.empty()) {
    const char *env = std::getenv("TUSK_ADDRESS");
    opts.tuskd = env && *env ? env : "127.0.0.1:1650";
  }
  auto channel = tusk::ChannelOptionsFromFlags();
  if (!channel.ok()) return Usage(std::string(channel.status().message()));
  opts.channel = *channel;
  opts.member_id = FLAGS_member_id;
  if (!FLAGS_fetch_buffer.empty()) {
    auto n = tusk::ParseBytes("--fetch-buffer", FLAGS_fetch_buffer);
    if (!n.ok()) return Usage(std::string(n.status().message()));
    opts.fetch_buffer_bytes = *n;
  }
  if (!FLAGS_max_backoff.empty()) {
    auto d = tusk::ParseFlagDuration("--max-backoff", FLAGS_max_backoff);
    if (!d.ok() || *d == absl::ZeroDuration()) {
      return Usage("--max-backoff must be a duration like 10s, not '" + FLAGS_max_backoff + "'");
    }
    opts.max_backoff = *d;
  }
  for (const auto &kv : tusk::RepeatedFlag("kafka_config")) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Usage("--kafka-config needs KEY=VALUE, not '" + kv + "'");
    }
    opts.kafka_config[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  mallopt(M_ARENA_MAX, 2);

  // Ready once the source's spec is read and the consumer runs.
  std::atomic<bool> running{false};
  std::unique_ptr<tusk::http::HttpServer> http;
  if (!FLAGS_http_listen.empty()) {
    auto server = tusk::http::HttpServer::Start(
        FLAGS_http_listen, tusk::http::ObservabilityRoutes([&running]() -> absl::Status {
          if (running) return absl::OkStatus();
          return absl::UnavailableError("the source's spec is not read yet (is tuskd reachable?)");
        }));
    if (!server.ok()) {
      LOG(ERROR) << server.status();
      return 1;
    }
    http = std::move(*server);
    LOG(INFO) << "serving /metrics, /healthz and /readyz on port " << http->port();
  }

  sigset_t signals = tusk::BlockStopSignals();
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    LOG(INFO) << "received signal " << sig << ", landing the current batch and stopping";
    g_stop = true;
  });
  waiter.detach();

  for (;;) {
    auto ingester = tusk::ingest::Ingester::Open(opts);
    if (!ingester.ok()) {
      LOG(ERROR) << "cannot start source " << opts.source << ": " << ingester.status();
      if (ingester.status().code() == absl::StatusCode::kNotFound) return 3;
      return 1;
    }
    running = true;
    absl::Status s = (*ingester)->Run(g_stop);
    running = false;
    if (s.code() == absl::StatusCode::kAborted && !g_stop) {
      LOG(INFO) << s.message() << "; restarting with the new spec";
      continue;
    }
    if (!s.ok()) {
      LOG(ERROR) << s;
      return 1;
    }
    LOG(INFO) << "tusk-ingest stopped";
    return 0;
  }
}
