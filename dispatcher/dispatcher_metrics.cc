// The dispatcher's metrics (common/metrics): datums and jobs counted as they
// end, datum phase times, and gauges read at each exposition (queue depth,
// datums leased, running jobs, runners seen).

#include "absl/time/clock.h"
#include "common/metrics.h"
#include "common/proto_util.h"
#include "dispatcher/dispatcher.h"
#include "dispatcher/dispatcher_internal.h"

namespace tusk::dispatcher {
namespace {

// A runner counts as connected for this long after its last lease or heartbeat.
constexpr absl::Duration kRunnerSeen = absl::Seconds(30);

metrics::Gauge* PipelineGauge(const char* name, const char* help, const std::string& pipeline) {
  return metrics::GetGauge(name, help, {{"pipeline", pipeline}});
}

}  // namespace

void CountDatums(const std::string& pipeline, const char* result, uint64_t n) {
  if (n == 0) return;
  metrics::GetCounter("tusk_datums_total",
                      "Datum attempts ended (processed, failed, retried) and datums skipped "
                      "(unchanged since an earlier job), by pipeline",
                      {{"pipeline", pipeline}, {"result", result}})
      ->Inc(static_cast<double>(n));
}

void ObserveDatumPhases(const std::string& pipeline, const pps::v1::ProcessStats& s) {
  const char* help = "Time of datum attempts by phase: download (inputs), command, upload (output)";
  for (auto [phase, d] :
       {std::pair<const char*, const google::protobuf::Duration&>{"download", s.download_time()},
        {"command", s.process_time()},
        {"upload", s.upload_time()}}) {
    metrics::GetHistogram("tusk_datum_phase_seconds", help, metrics::SecondsBuckets(),
                          {{"pipeline", pipeline}, {"phase", phase}})
        ->Observe(absl::ToDoubleSeconds(FromDuration(d)));
  }
}

void CountJob(const std::string& pipeline, pps::v1::JobState state) {
  metrics::GetCounter("tusk_jobs_total", "Jobs ended, by pipeline and final state",
                      {{"pipeline", pipeline}, {"state", pps::v1::JobState_Name(state)}})
      ->Inc();
}

void Dispatcher::NoteRunner(const std::string& runner, const std::string& pipeline) {
  RunnerSeen& r = runners_[runner];
  if (!pipeline.empty()) r.pipeline = pipeline;
  r.at = absl::Now();
}

void Dispatcher::CollectMetrics() {
  absl::MutexLock l(&mu_);
  const absl::Time now = absl::Now();
  std::map<std::string, int> runners;
  for (auto it = runners_.begin(); it != runners_.end();) {
    if (now - it->second.at > kRunnerSeen) {
      it = runners_.erase(it);
      continue;
    }
    runners[it->second.pipeline]++;
    ++it;
  }
  for (const auto& [name, d] : drivers_) {
    const ActiveJob* a = d->active.get();
    PipelineGauge("tusk_pipeline_queue_depth", "Datums of the running job waiting for a runner",
                  name)
        ->Set(a ? static_cast<double>(a->queue.pending()) : 0);
    PipelineGauge("tusk_pipeline_datums_leased", "Datums being run now", name)
        ->Set(a ? static_cast<double>(a->queue.Leases().size()) : 0);
    PipelineGauge("tusk_pipeline_jobs_running", "Jobs running (0 or 1 per pipeline)", name)
        ->Set(a ? 1 : 0);
    PipelineGauge("tusk_pipeline_runners", "Runners that leased or renewed in the last 30 s", name)
        ->Set(runners[name]);
  }
}

}  // namespace tusk::dispatcher
