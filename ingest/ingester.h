#pragma once

// Ingester: one member of a Kafka source's consumer group (tusk-ingest). It
// turns the records of its partitions into micro-commits on the source's
// repo@branch, exactly once:
//
// - Each micro-commit is one PutFile stream that tuskd finishes atomically
//   with the commit's metadata: for every partition in it, the next offset to
//   read ("state/kafka/<topic>/<p>/next", carried to every later commit), and
//   as precondition the next offset the parent commit must hold. A member that
//   lost a partition, or a retry whose first attempt did land, fails the
//   precondition (ABORTED) and the member re-reads the branch head and seeks.
// - On start and on every assignment the member seeks to the offsets recorded
//   in the branch head, never to the group's committed offsets; those are
//   still committed after each micro-commit so lag monitors work.
// - A commit closes at the first of max_records, max_bytes, max_latency.
//   One commit is in flight (on a committer thread) while the next one fills;
//   when both are stuck (tuskd slow or down) the member pauses its partitions
//   and retries with exponential backoff, saying why in the log and in its
//   reports. Memory is bounded by two batches plus the fetch buffer.
// - Records over max_record_bytes, or (value format JSON) not JSON, go to the
//   dead-letter path with the reason. Records the broker deleted before they
//   were read (offset out of range) are recorded as a gap in the commit's
//   metadata and logged as errors.
//
// Lifecycle: Open() reads the source's spec from tuskd and joins the group;
// Run() consumes until `stop` is set, the source is deleted (returns OK) or
// its spec changes (returns ABORTED: open a new Ingester). Not thread-safe:
// one thread calls Run().

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/grpc_channel.h"

namespace tusk::ingest {

struct IngesterOptions {
  std::string tuskd = "127.0.0.1:1650";  // gRPC address of tuskd
  ChannelOptions channel;                // token and TLS
  std::string source;                    // source name (and consumer group)
  std::string member_id;                 // default: <hostname>-<pid>
  // Bound on records fetched from Kafka and not yet handed to a batch
  // (librdkafka's default). librdkafka 2.0 pauses a partition for up to 1 s
  // whenever this buffer is full, so a smaller one slows catching up.
  uint64_t fetch_buffer_bytes = 64ull << 20;
  // librdkafka properties that override the source's.
  std::map<std::string, std::string> kafka_config;
  absl::Duration report_interval = absl::Seconds(1);
  absl::Duration max_backoff = absl::Seconds(10);
  // How long a rebalance waits for an in-flight commit before giving it up
  // (safe: the new owner's precondition fences it).
  absl::Duration revoke_wait = absl::Seconds(10);
};

class Ingester {
 public:
  static absl::StatusOr<std::unique_ptr<Ingester>> Open(const IngesterOptions &options);
  ~Ingester();
  Ingester(const Ingester &) = delete;
  Ingester &operator=(const Ingester &) = delete;

  absl::Status Run(const std::atomic<bool> &stop);

 private:
  struct Impl;
  explicit Ingester(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tusk::ingest
