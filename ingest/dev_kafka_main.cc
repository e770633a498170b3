// tusk-dev-kafka: a Kafka-protocol cluster on 127.0.0.1 for tests and demos
// (librdkafka's mock cluster), and a simple producer of test records.

#include <gflags/gflags.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/daemon.h"
#include "common/flag_values.h"
#include "common/log.h"
#include "common/version.h"
#include "ingest/kafka.h"

DEFINE_string(topic, "", "serve: a topic to create (repeatable); produce: the topic");
DEFINE_string(partitions, "4", "serve: partitions of each --topic");
DEFINE_string(brokers, "", "serve: number of brokers (default 1); produce: bootstrap servers");
DEFINE_string(bootstrap_file, "", "serve: also write the bootstrap address to this file");
DEFINE_bool(json, false, "print JSON");
DEFINE_string(count, "1000", "produce: records to send");
DEFINE_string(size, "100", "produce: bytes per record");
DEFINE_string(partition, "-1", "produce: send to this partition (default: by key)");
DEFINE_string(rate, "0", "produce: at most this many records per second (0: unlimited)");
DEFINE_string(key_prefix, "k", "produce: key prefix");

namespace {

constexpr char kUsage[] =
    R"(tusk-dev-kafka: a Kafka cluster for tests and demos, and a test producer

Usage:
  tusk-dev-kafka [serve] [--topic NAME]... [--partitions N] [--brokers N]
                 [--bootstrap-file FILE] [--json]
  tusk-dev-kafka produce --brokers HOST:PORT --topic NAME [--count N] [--size BYTES]
                 [--partition P] [--rate N] [--key-prefix PREFIX] [--json]

serve (the default) starts librdkafka's mock cluster: a Kafka-protocol server on
127.0.0.1 with ports picked at run time. It prints its bootstrap address
(host:port,...) on one line of stdout, then serves until SIGINT or SIGTERM.
Data is kept in memory; each partition keeps only its newest ~5 MB / 100,000
message sets, like a short retention. Not a broker for production.

  --topic NAME            create this topic (repeatable; default: none, topics
                          are then created on first use with 4 partitions)
  --partitions N          partitions of each --topic (default 4)
  --brokers N             number of brokers (default 1)
  --bootstrap-file FILE   also write the bootstrap address to FILE (atomically)
  --json                  print {"bootstrap": ...} instead of the bare address

produce sends --count records (default 1000) of --size bytes (default 100) to a
topic and waits until all are acknowledged. Record i has key "<prefix><i>" and
a value that starts with "<i> " and is padded with 'x'.

  --brokers ADDR          bootstrap servers (required)
  --partition P           send to partition P (default: by key)
  --rate N                at most N records per second (default: unlimited)
  --key-prefix PREFIX     key prefix (default "k")

Exit codes: 0 ok, 1 failed (cluster could not start, records not delivered), 2 bad usage.
)";

int Usage(const std::string &error) { return tusk::UsageError("tusk-dev-kafka", error); }

// The value of integer flag `flag` (`value`: gflags' string), at least `min`.
bool ParseCount(const char *flag, const std::string &value, int64_t min, int64_t *out,
                std::string *error) {
  auto n = tusk::ParseInt(flag, value, min, INT64_MAX);
  if (!n.ok()) {
    *error = absl::StrCat(flag, " must be an integer >= ", min, ", not '", value, "'");
    return false;
  }
  *out = *n;
  return true;
}

int Serve() {
  int64_t partitions = 0, brokers = 0;
  std::string error;
  if (!ParseCount("--partitions", FLAGS_partitions, 1, &partitions, &error) ||
      !ParseCount("--brokers", FLAGS_brokers.empty() ? "1" : FLAGS_brokers, 1, &brokers, &error)) {
    return Usage(error);
  }
  sigset_t signals = tusk::BlockStopSignals();

  auto cluster = tusk::ingest::MockCluster::Start(static_cast<int>(brokers));
  if (!cluster.ok()) {
    LOG(ERROR) << cluster.status();
    return 1;
  }
  for (const auto &topic : tusk::RepeatedFlag("topic")) {
    auto s = (*cluster)->CreateTopic(topic, static_cast<int>(partitions));
    if (!s.ok()) {
      LOG(ERROR) << s;
      return 1;
    }
  }
  std::string bootstrap = (*cluster)->bootstraps();
  if (FLAGS_json) {
    std::cout << "{\"bootstrap\":\"" << bootstrap << "\"}" << std::endl;
  } else {
    std::cout << bootstrap << std::endl;
  }
  if (!FLAGS_bootstrap_file.empty()) {
    const std::string &file = FLAGS_bootstrap_file;
    std::string tmp = file + ".tmp";
    {
      std::ofstream f(tmp);
      f << bootstrap << "\n";
    }
    std::rename(tmp.c_str(), file.c_str());
  }
  LOG(INFO) << "mock Kafka cluster serving on " << bootstrap;
  int sig = 0;
  sigwait(&signals, &sig);
  LOG(INFO) << "received signal " << sig << ", stopping";
  return 0;
}

int Produce() {
  std::string brokers = FLAGS_brokers;
  std::string topic = FLAGS_topic;
  if (brokers.empty()) return Usage("produce needs --brokers");
  if (topic.empty()) return Usage("produce needs --topic");
  int64_t count = 0, size = 0, partition = 0, rate = 0;
  std::string error;
  if (!ParseCount("--count", FLAGS_count, 0, &count, &error) ||
      !ParseCount("--size", FLAGS_size, 0, &size, &error) ||
      !ParseCount("--partition", FLAGS_partition, -1, &partition, &error) ||
      !ParseCount("--rate", FLAGS_rate, 0, &rate, &error)) {
    return Usage(error);
  }
  const std::string &prefix = FLAGS_key_prefix;
  uint64_t delivered = 0, failed = 0;
  absl::Status first_error;
  auto producer = tusk::ingest::Producer::Open(brokers, {{"linger.ms", "5"}},
                                               [&](const tusk::ingest::Producer::Delivery &d) {
                                                 if (d.status.ok()) {
                                                   ++delivered;
                                                 } else {
                                                   if (failed++ == 0) first_error = d.status;
                                                 }
                                               });
  if (!producer.ok()) {
    LOG(ERROR) << producer.status();
    return 1;
  }
  absl::Time start = absl::Now();
  std::string value;
  for (int64_t i = 0; i < count; ++i) {
    if (rate > 0) {
      absl::Time due = start + absl::Seconds(1) * (static_cast<double>(i) / rate);
      while (absl::Now() < due)
        (*producer)->Poll(std::min(due - absl::Now(), absl::Milliseconds(5)));
    }
    value = absl::StrCat(i, " ");
    if (static_cast<int64_t>(value.size()) < size) value.resize(size, 'x');
    auto s = (*producer)->Produce(topic, static_cast<int32_t>(partition), absl::StrCat(prefix, i),
                                  value, {}, static_cast<uint64_t>(i));
    if (!s.ok()) {
      LOG(ERROR) << s;
      return 1;
    }
    (*producer)->Poll(absl::ZeroDuration());
  }
  auto s = (*producer)->Flush(absl::Seconds(60));
  double secs = absl::ToDoubleSeconds(absl::Now() - start);
  if (FLAGS_json) {
    std::cout << "{\"delivered\":" << delivered << ",\"failed\":" << failed
              << ",\"seconds\":" << secs << "}\n";
  } else {
    std::cout << "produced " << delivered << " records to " << topic << " in " << secs << " s";
    if (failed) std::cout << " (" << failed << " failed)";
    std::cout << "\n";
  }
  if (!s.ok() || failed) {
    LOG(ERROR) << (failed ? first_error : s);
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  std::vector<std::string> positional;
  if (auto done =
          tusk::InitDaemon(argc, argv, {"tusk-dev-kafka", kUsage, true, {"topic"}}, &positional)) {
    return *done;
  }
  std::string cmd = positional.empty() ? "serve" : positional[0];
  if (positional.size() > 1) return Usage("unexpected argument '" + positional[1] + "'");
  if (cmd == "serve") {
    if (tusk::FlagWasSet("count") || tusk::FlagWasSet("size")) {
      return Usage("--count/--size are for produce");
    }
    return Serve();
  }
  if (cmd == "produce") return Produce();
  return Usage("unknown command '" + cmd + "' (serve or produce)");
}
