#include "ingest/ingest_metrics.h"

#include "absl/strings/str_cat.h"

namespace tusk::ingest {

IngestMetrics IngestMetrics::For(const std::string& source) {
  const metrics::Labels l = {{"source", source}};
  IngestMetrics m;
  m.records = metrics::GetCounter("tusk_ingest_records_total", "Kafka records committed", l);
  m.bytes = metrics::GetCounter("tusk_ingest_bytes_total",
                                "Bytes of Kafka records committed (as framed in files)", l);
  m.commits = metrics::GetCounter("tusk_ingest_commits_total", "Micro-commits landed", l);
  m.dead_letters = metrics::GetCounter("tusk_ingest_dead_letters_total",
                                       "Records written to /_dead_letter/ instead", l);
  m.lost = metrics::GetCounter("tusk_ingest_records_lost_total",
                               "Records the broker deleted before they were read", l);
  m.latency =
      metrics::GetHistogram("tusk_ingest_commit_latency_seconds",
                            "From a micro-commit's first record arriving to the commit landing",
                            metrics::SecondsBuckets(), l);
  return m;
}

metrics::Gauge* IngestMetrics::Lag(const std::string& source, const std::string& topic,
                                   int partition) {
  return metrics::GetGauge(
      "tusk_ingest_partition_lag", "Records in a partition not yet read: high watermark - position",
      {{"source", source}, {"topic", topic}, {"partition", absl::StrCat(partition)}});
}

}  // namespace tusk::ingest
