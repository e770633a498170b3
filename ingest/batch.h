#pragma once

// The records of a micro-commit being built by the Ingester and landed by
// the Committer, and what a member knows of its partitions. Internal to
// ingest.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace tusk::ingest {

using TopicPartition = std::pair<std::string, int32_t>;

inline std::string Name(const TopicPartition &tp) { return absl::StrCat(tp.first, "/", tp.second); }

// What this member knows of a partition it owns.
struct PartState {
  // The next offset the branch head will hold once every batch handed to the
  // committer has landed; nullopt if the head has none for this partition.
  std::optional<int64_t> planned_next;
  // The next offset expected from Kafka: records below it are stale.
  int64_t fetch_next = -1001;  // RD_KAFKA_OFFSET_INVALID
  uint64_t lost_total = 0;     // carried "lost" count, including pending gaps
};

// The records of one micro-commit being filled, or handed to the committer.
struct Batch {
  struct Part {
    std::optional<int64_t> expect;  // precondition: the parent's next offset
    int64_t first = -1, last = -1;  // offsets of records in this batch
    int64_t next = -1;              // the next offset after this batch
    uint64_t records = 0;
    std::string gap;  // "a-b" if the broker lost records
    uint64_t lost_total = 0;
    bool lost_changed = false;
  };
  struct File {
    std::string topic;
    int32_t partition = 0;
    bool dead = false;
    int64_t hour = -1;  // layout HOUR: hours since the epoch
    int64_t first = -1, last = -1;
    std::string data;
  };
  std::map<TopicPartition, Part> parts;
  std::map<std::tuple<std::string, int32_t, bool, int64_t>, File> files;
  uint64_t records = 0;
  uint64_t bytes = 0;
  uint64_t dead_letters = 0;
  absl::Time opened;

  bool empty() const { return parts.empty(); }
};

enum class Outcome { kCommitted, kAborted, kAbandoned };

struct CommitResult {
  Outcome outcome;
  std::string commit;
  std::map<TopicPartition, int64_t> next;  // offsets to commit to Kafka
  uint64_t records = 0;
  uint64_t bytes = 0;
  absl::Time opened;     // when the batch's first record arrived
  absl::Time committed;  // when its commit landed
  absl::Status status;
};

}  // namespace tusk::ingest
