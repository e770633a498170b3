#pragma once

// A tusk-ingest member's metrics for one source (common/metrics), labelled
// source=NAME: what it committed, how fast, and what it could not.

#include <string>

#include "common/metrics.h"

namespace tusk::ingest {

struct IngestMetrics {
  metrics::Counter* records = nullptr;       // records committed
  metrics::Counter* bytes = nullptr;         // their bytes as framed in files
  metrics::Counter* commits = nullptr;       // micro-commits landed
  metrics::Counter* dead_letters = nullptr;  // records sent to /_dead_letter/
  metrics::Counter* lost = nullptr;          // records the broker deleted unread
  metrics::Histogram* latency = nullptr;     // first record to commit landed

  static IngestMetrics For(const std::string& source);
  // The lag gauge of one partition (high watermark - position).
  static metrics::Gauge* Lag(const std::string& source, const std::string& topic, int partition);
};

}  // namespace tusk::ingest
