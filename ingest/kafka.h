#pragma once

// Thin wrappers over librdkafka for tusk's tools: an in-process Kafka-protocol
// cluster (librdkafka's mock cluster) and a producer. The consumer side of
// ingest lives in ingester.h. librdkafka does not appear in this header.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tusk::ingest {

// A Kafka cluster inside this process: librdkafka's mock cluster, which speaks
// the Kafka protocol (produce, fetch, list offsets, consumer groups, offset
// commits) on 127.0.0.1, on ports the kernel picks. Data is kept in memory and
// each partition keeps only its newest ~5 MB / 100,000 message sets: older
// ones are trimmed, like a short retention.
//
// For tests, demos and benchmarks; not a broker to run in production.
// Thread-safe; the cluster serves from its own threads until destroyed.
class MockCluster {
 public:
  static absl::StatusOr<std::unique_ptr<MockCluster>> Start(int brokers);
  ~MockCluster();
  MockCluster(const MockCluster &) = delete;
  MockCluster &operator=(const MockCluster &) = delete;

  // host:port[,host:port...] for clients' bootstrap.servers.
  std::string bootstraps() const;
  absl::Status CreateTopic(const std::string &topic, int partitions);

 private:
  struct Impl;
  explicit MockCluster(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A Kafka producer. Produce() queues a record; delivery reports arrive through
// the callback from Poll() or Flush(), on the calling thread.
// Not thread-safe: one thread uses a Producer.
class Producer {
 public:
  struct Delivery {
    std::string topic;
    int32_t partition = -1;
    int64_t offset = -1;
    absl::Status status;
    uint64_t tag = 0;  // the tag given to Produce()
  };
  using DeliveryCallback = std::function<void(const Delivery &)>;

  // `config` holds extra librdkafka properties (linger.ms, acks, ...).
  static absl::StatusOr<std::unique_ptr<Producer>> Open(
      const std::string &brokers, const std::map<std::string, std::string> &config,
      DeliveryCallback on_delivery);
  ~Producer();
  Producer(const Producer &) = delete;
  Producer &operator=(const Producer &) = delete;

  // Queues one record; `partition` -1 lets the partitioner choose (by key).
  // Waits (serving delivery reports) while the local queue is full.
  absl::Status Produce(const std::string &topic, int32_t partition, absl::string_view key,
                       absl::string_view value,
                       const std::vector<std::pair<std::string, std::string>> &headers,
                       uint64_t tag);
  // Serves delivery reports for up to `timeout`.
  void Poll(absl::Duration timeout);
  // Waits until every queued record is delivered (or failed).
  absl::Status Flush(absl::Duration timeout);

 private:
  struct Impl;
  explicit Producer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tusk::ingest
