// The dispatcher's side of the runner protocol: leases, heartbeats, datum
// results and their outputs.

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/proto_util.h"
#include "common/status.h"
#include "dispatcher/dispatcher.h"
#include "dispatcher/dispatcher_internal.h"
#include "google/protobuf/util/time_util.h"
#include "pfs/refs.h"

namespace tusk::dispatcher {
namespace {

absl::Status LeaseNotHeld(const std::string& lease) {
  return absl::FailedPreconditionError(
      absl::StrCat("lease ", lease, " is not held (it expired, or its job or pipeline ended)"));
}

void AddStats(const pps::v1::ProcessStats& s, pps::v1::ProcessStats* sum) {
  *sum->mutable_download_time() += s.download_time();
  *sum->mutable_process_time() += s.process_time();
  *sum->mutable_upload_time() += s.upload_time();
  sum->set_download_bytes(sum->download_bytes() + s.download_bytes());
  sum->set_upload_bytes(sum->upload_bytes() + s.upload_bytes());
}

}  // namespace

uint32_t Dispatcher::DatumSetSize(ActiveJob* a, uint32_t runner_max) {
  if (runner_max <= 1) return 1;
  const auto& ds = a->spec.datum_set_spec();
  const uint64_t runners = std::max<int64_t>(1, a->spec.parallelism_spec().constant());
  // Leave work for every runner: at most a share of what is pending (+1:
  // this datum was taken already).
  uint64_t n;
  if (ds.number() > 0) {
    n = ds.number();
  } else if (ds.per_worker() > 0) {
    n = std::max<uint64_t>(1, a->job.datums_total() / (runners * ds.per_worker()));
  } else {
    n = std::min<uint64_t>(64, std::max<uint64_t>(1, (a->queue.pending() + 1) / (2 * runners)));
  }
  return static_cast<uint32_t>(std::min<uint64_t>(n, runner_max));
}

absl::StatusOr<pps::v1::LeaseResponse> Dispatcher::Lease(const pps::v1::LeaseRequest& req) {
  absl::Time deadline = absl::Now() + absl::Milliseconds(std::min<uint32_t>(req.wait_ms(), 30000));
  absl::MutexLock l(&mu_);
  while (true) {
    if (closing_) return absl::UnavailableError("tuskd is shutting down");
    auto it = drivers_.find(req.pipeline());
    if (it == drivers_.end()) {
      return absl::NotFoundError(absl::StrCat("pipeline ", req.pipeline(), " not found"));
    }
    Driver* d = it->second.get();
    if (req.pipeline_version() != 0 && req.pipeline_version() != d->info.version()) {
      // An old pod must never run the new spec's datums in the old image.
      return absl::FailedPreconditionError(absl::StrCat(
          "runner ", req.runner(), " was made for version ", req.pipeline_version(),
          " of pipeline ", req.pipeline(), ", which is now at version ", d->info.version()));
    }
    if (!req.sandbox().empty()) d->sandbox = req.sandbox();
    NoteRunner(req.runner(), req.pipeline());
    ActiveJob* a = d->active.get();
    const DatumQueue::Work* w = nullptr;
    if (a && !d->stop) {
      w = a->queue.Take(pfs::NewCommitId(), req.runner(), absl::Now() + options_.lease_ttl);
    }
    if (w != nullptr) {
      leases_[w->lease] = d->name;
      pps::v1::LeaseResponse resp;
      resp.set_lease(w->lease);
      resp.set_job(a->job.id());
      *resp.mutable_datum() = w->info;
      *resp.mutable_transform() = a->spec.transform();
      if (a->spec.has_datum_timeout()) *resp.mutable_datum_timeout() = a->spec.datum_timeout();
      *resp.mutable_resource_limits() = a->spec.resource_limits();
      resp.set_heartbeat_ms(options_.heartbeat_ms);
      *resp.mutable_output_commit() = a->job.output_commit();
      // A datum set: more datums under leases of their own, so that small
      // datums do not pay a round trip each.
      const uint32_t n = DatumSetSize(a, req.max_datums());
      for (uint32_t i = 1; i < n; i++) {
        const DatumQueue::Work* more =
            a->queue.Take(pfs::NewCommitId(), req.runner(), absl::Now() + options_.lease_ttl);
        if (more == nullptr) break;
        leases_[more->lease] = d->name;
        pps::v1::LeasedDatum* m = resp.add_more();
        m->set_lease(more->lease);
        *m->mutable_datum() = more->info;
      }
      return resp;
    }
    if (work_cv_.WaitWithDeadline(&mu_, deadline)) return pps::v1::LeaseResponse();
  }
}

pps::v1::HeartbeatResponse Dispatcher::Heartbeat(const pps::v1::HeartbeatRequest& req) {
  pps::v1::HeartbeatResponse resp;
  absl::MutexLock l(&mu_);
  const absl::Time expiry = absl::Now() + options_.lease_ttl;
  if (runners_.count(req.runner())) NoteRunner(req.runner(), "");
  for (const auto& lease : req.leases()) {
    auto it = leases_.find(lease);
    bool held = false;
    if (it != leases_.end()) {
      auto d = drivers_.find(it->second);
      held = d != drivers_.end() && d->second->active &&
             d->second->active->queue.Renew(lease, req.runner(), expiry);
    }
    if (!held) resp.add_lost(lease);
  }
  for (const auto& live : req.live()) AddLive(live, req.runner());
  // Drop what lost leases left (their attempts end without a result).
  for (auto it = live_.begin(); it != live_.end();) {
    it = leases_.count(it->first) ? std::next(it) : live_.erase(it);
  }
  return resp;
}

void Dispatcher::AddLive(const pps::v1::LiveLog& live, const std::string& runner) {
  // Bounded like the runner's log start (half of a log bound far larger
  // than the default); a runner sending more is ignored past it.
  constexpr size_t kMaxLive = 4 << 20;
  auto it = leases_.find(live.lease());
  if (it == leases_.end()) return;
  auto d = drivers_.find(it->second);
  if (d == drivers_.end() || !d->second->active) return;
  ActiveJob* a = d->second->active.get();
  DatumQueue::Work* w = a->queue.Leased(live.lease());
  if (w == nullptr || w->runner != runner) return;
  LiveLog& l = live_[live.lease()];
  if (l.head.job().empty()) {
    l.head.set_pipeline(it->second);
    l.head.set_job(a->job.id());
    l.head.set_datum(w->info.id());
    l.head.set_attempt(w->info.attempts() + 1);
    l.head.set_runner(runner);
    *l.head.mutable_time() = NowTimestamp();
  }
  // Appends what is new; a gap (a heartbeat that never arrived) waits for
  // the resend.
  if (live.offset() > l.text.size()) return;
  const uint64_t skip = l.text.size() - live.offset();
  if (skip >= live.data().size() || l.text.size() >= kMaxLive) return;
  l.text.append(live.data(), skip, kMaxLive - l.text.size());
}

absl::Status Dispatcher::CheckLease(const std::string& lease) {
  absl::MutexLock l(&mu_);
  if (!leases_.count(lease)) return LeaseNotHeld(lease);
  return absl::OkStatus();
}

std::string Dispatcher::RunnerSandbox(const std::string& pipeline) {
  absl::MutexLock l(&mu_);
  auto it = drivers_.find(pipeline);
  return it == drivers_.end() ? std::string() : it->second->sandbox;
}

absl::StatusOr<std::string> Dispatcher::LeasePipeline(const std::string& lease) {
  absl::MutexLock l(&mu_);
  auto it = leases_.find(lease);
  if (it == leases_.end()) return LeaseNotHeld(lease);
  return it->second;
}

absl::StatusOr<std::unique_ptr<DatumOutput>> Dispatcher::BeginDatumOutput(
    const std::string& lease) {
  RETURN_IF_ERROR(CheckLease(lease));
  return std::unique_ptr<DatumOutput>(new DatumOutput(this, lease, pfs_->BeginTreeUpload()));
}

absl::Status DatumOutput::Finish(DatumResult result, const absl::Status& upload_error) {
  pfs::KvBatch batch;
  if (result.success) {
    absl::Status up = upload_error;
    if (up.ok()) {
      auto root = upload_->CloseToTree(&batch);
      up = root.status();
      if (root.ok()) result.output = *root;
    }
    if (!up.ok()) {
      result.success = false;
      result.error = absl::StrCat("uploading /pfs/out: ", up.message());
      batch.Clear();
    }
    result.stats.set_upload_bytes(upload_->bytes());
  }
  *result.stats.mutable_upload_time() = ToDuration(absl::Now() - start_);
  return dispatcher_->CompleteDatum(lease_, result, &batch);
}

absl::Status Dispatcher::CompleteDatum(const std::string& lease, const DatumResult& result,
                                       pfs::KvBatch* blobs) {
  absl::MutexLock l(&mu_);
  auto it = leases_.find(lease);
  if (it == leases_.end()) return LeaseNotHeld(lease);
  const std::string pipeline = it->second;
  Driver* d = drivers_[pipeline].get();
  ActiveJob* a = d->active.get();
  DatumQueue::Work* w = a ? a->queue.Leased(lease) : nullptr;
  if (w == nullptr) return LeaseNotHeld(lease);
  DatumInfo info = w->info;
  info.set_attempts(info.attempts() + 1);
  *info.mutable_finished() = NowTimestamp();
  *info.mutable_stats() = result.stats;
  LogMessage msg;
  msg.set_pipeline(pipeline);
  msg.set_job(a->job.id());
  msg.set_datum(info.id());
  msg.set_attempt(info.attempts());
  msg.set_runner(w->runner);
  // Later than the last log written (microseconds: the key's unit), and
  // written under mu_: the log's key order is the write order.
  last_log_ = std::max(absl::FromUnixMicros(absl::ToUnixMicros(absl::Now())),
                       last_log_ + absl::Microseconds(1));
  *msg.mutable_time() = ToTimestamp(last_log_);
  msg.set_message(result.log);
  msg.set_truncated(result.log_truncated);
  store_.PutLog(msg, blobs);
  if (result.success) {
    info.set_state(pps::v1::DATUM_SUCCESS);
    info.clear_error();
    info.set_output_root(result.output.hash.IsZero() ? "" : result.output.hash.Hex());
    info.set_output_files(result.output.file_count);
    info.set_output_bytes(result.output.size);
    Hash h;
    auto parsed = Hash::FromHex(info.id());
    if (parsed.ok()) h = *parsed;
    store_.PutDone(pipeline, h, info, blobs);
  } else if (result.recovered) {
    // No output and no further tries; the next job runs it again.
    info.set_error(result.error);
    info.set_state(pps::v1::DATUM_RECOVERED);
  } else {
    info.set_error(result.error);
    bool tries_left =
        static_cast<int64_t>(info.attempts()) < std::max<int64_t>(1, a->spec.datum_tries());
    info.set_state(tries_left ? pps::v1::DATUM_PENDING : pps::v1::DATUM_FAILED);
  }
  store_.PutJobDatum(a->job.id(), info, blobs);
  RETURN_IF_ERROR(store_.Write(blobs, /*sync=*/false));
  CountDatums(pipeline,
              info.state() == pps::v1::DATUM_SUCCESS     ? "processed"
              : info.state() == pps::v1::DATUM_FAILED    ? "failed"
              : info.state() == pps::v1::DATUM_RECOVERED ? "recovered"
                                                         : "retried",
              1);
  ObserveDatumPhases(pipeline, result.stats);
  leases_.erase(it);
  live_.erase(lease);
  a->queue.Complete(lease, info);
  if (info.state() == pps::v1::DATUM_PENDING) {
    LOG(INFO) << "pipeline " << pipeline << ": datum " << info.id().substr(0, 12)
              << " failed (attempt " << info.attempts() << "): " << result.error << "; retrying";
    work_cv_.SignalAll();
  } else if (result.success) {
    a->job.set_datums_processed(a->job.datums_processed() + 1);
    AddStats(result.stats, a->job.mutable_stats());
  } else if (info.state() == pps::v1::DATUM_RECOVERED) {
    LOG(INFO) << "pipeline " << pipeline << ": datum " << info.id().substr(0, 12)
              << " recovered by err_cmd after: " << result.error;
    a->job.set_datums_recovered(a->job.datums_recovered() + 1);
  } else {
    LOG(WARNING) << "pipeline " << pipeline << ": datum " << info.id().substr(0, 12) << " failed "
                 << info.attempts() << " times: " << result.error;
    a->job.set_datums_failed(a->job.datums_failed() + 1);
  }
  d->wake = true;
  job_cv_.SignalAll();
  return absl::OkStatus();
}

void Dispatcher::ReleaseRunner(const std::string& runner, const std::string& reason) {
  if (!reason.empty()) {
    // The attempt failed for a reason the runner could not report (its pod
    // was OOMKilled, ...): record it as the attempt's error.
    std::vector<std::string> held;
    {
      absl::MutexLock l(&mu_);
      for (const auto& [lease, pipeline] : leases_) {
        auto d = drivers_.find(pipeline);
        if (d == drivers_.end() || !d->second->active) continue;
        const DatumQueue::Work* w = d->second->active->queue.Leased(lease);
        if (w != nullptr && w->runner == runner) held.push_back(lease);
      }
    }
    for (const auto& lease : held) {
      DatumResult result;
      result.error = reason;
      pfs::KvBatch batch;
      // Not held any more: the runner's own report came first.
      CompleteDatum(lease, result, &batch).IgnoreError();
    }
  }
  absl::MutexLock l(&mu_);
  for (auto& [name, d] : drivers_) {
    if (!d->active) continue;
    for (const auto& r : d->active->queue.ReleaseRunner(runner)) {
      LOG(WARNING) << "runner " << runner << " ended while running datum " << r.datum.substr(0, 12)
                   << "; leasing it again";
      leases_.erase(r.lease);
      work_cv_.SignalAll();
    }
  }
}

std::vector<RunnerWant> Dispatcher::RunnerWants() {
  std::vector<RunnerWant> out;
  const absl::Time now = absl::Now();
  absl::MutexLock l(&mu_);
  for (const auto& [name, d] : drivers_) {
    RunnerWant w;
    w.pipeline = name;
    w.version = d->info.version();
    w.spec = d->info.spec();
    w.paused = d->info.state() == pps::v1::PAUSED;
    w.ceiling = static_cast<int>(std::max<uint64_t>(1, w.spec.parallelism_spec().constant()));
    w.work = d->active && !d->stop ? d->active->queue.remaining() : 0;
    if (w.work > 0) d->last_busy = now;
    w.idle = w.work > 0 ? absl::ZeroDuration() : now - d->last_busy;
    out.push_back(std::move(w));
  }
  return out;
}

std::map<std::string, int> Dispatcher::RunnerDemand() {
  std::map<std::string, int> out;
  absl::MutexLock l(&mu_);
  for (const auto& [name, d] : drivers_) {
    if (d->info.state() == pps::v1::PAUSED) continue;
    out[name] =
        static_cast<int>(std::max<uint64_t>(1, d->info.spec().parallelism_spec().constant()));
  }
  return out;
}

}  // namespace tusk::dispatcher
