#pragma once

// PfsMetrics: the file system's Prometheus metrics (common/metrics), made in
// one place. Pfs counts into them; tuskd's collector refreshes the dedup
// ratio before each exposition. Thread-safe (metrics are).

#include "common/metrics.h"

namespace tusk::pfs {

struct PfsMetrics {
  metrics::Counter* commits_finished;    // tusk_pfs_commits_finished_total
  metrics::Counter* written_bytes;       // tusk_pfs_written_bytes_total: file bytes put
  metrics::Counter* new_chunk_bytes;     // tusk_pfs_new_chunk_bytes_total: of chunks not stored
  metrics::Counter* blobs_new;           // tusk_pfs_blobs_written_total{result="new"}
  metrics::Counter* blobs_deduplicated;  // ...{result="deduplicated"}
  metrics::Counter* stored_bytes;        // tusk_pfs_stored_bytes_total: new chunks and nodes
  metrics::Counter* gc_runs;             // tusk_gc_runs_total
  metrics::Counter* gc_reclaimed_bytes;  // tusk_gc_reclaimed_bytes_total
  metrics::Gauge* dedup_ratio;           // tusk_pfs_dedup_ratio

  // dedup_ratio = written / new chunk bytes (1 before anything is new).
  void UpdateDedupRatio() const;
};

const PfsMetrics& Metrics();

}  // namespace tusk::pfs
