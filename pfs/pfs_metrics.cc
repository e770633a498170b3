#include "pfs/pfs_metrics.h"

namespace tusk::pfs {
namespace {

PfsMetrics Make() {
  const char* blobs = "Chunks and tree nodes written, new or found stored already";
  return {
      metrics::GetCounter("tusk_pfs_commits_finished_total",
                          "Commits finished (by users, ingest and pipelines)"),
      metrics::GetCounter("tusk_pfs_written_bytes_total", "File bytes written into commits"),
      metrics::GetCounter("tusk_pfs_new_chunk_bytes_total",
                          "File bytes in chunks that were not stored before"),
      metrics::GetCounter("tusk_pfs_blobs_written_total", blobs, {{"result", "new"}}),
      metrics::GetCounter("tusk_pfs_blobs_written_total", blobs, {{"result", "deduplicated"}}),
      metrics::GetCounter("tusk_pfs_stored_bytes_total",
                          "Bytes of new chunks and nodes (before compression)"),
      metrics::GetCounter("tusk_gc_runs_total", "Garbage collections run"),
      metrics::GetCounter("tusk_gc_reclaimed_bytes_total",
                          "Object-store bytes garbage collection freed"),
      metrics::GetGauge("tusk_pfs_dedup_ratio",
                        "File bytes written per byte of new chunks since the process started (1: "
                        "no deduplication)"),
  };
}

}  // namespace

void PfsMetrics::UpdateDedupRatio() const {
  const double fresh = new_chunk_bytes->Value();
  dedup_ratio->Set(fresh > 0 ? written_bytes->Value() / fresh : 1);
}

const PfsMetrics& Metrics() {
  static const PfsMetrics* m = new PfsMetrics(Make());
  return *m;
}

}  // namespace tusk::pfs
