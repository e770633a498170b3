// Job control: stop job, delete job, restart datum, rerun pipeline.
//
// Only a pipeline's driver thread starts and ends its jobs, so StopJob does
// not end a job itself: it marks it in the driver's kill list and waits for
// the driver (ProcessKills) to end it, whether it runs, waits for its inputs
// or is queued behind others.

#include <optional>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/proto_util.h"
#include "common/status.h"
#include "dispatcher/dispatcher.h"
#include "dispatcher/dispatcher_internal.h"

namespace tusk::dispatcher {

using pfs::KvBatch;

absl::Status Dispatcher::Reprocess(const std::string& pipeline) {
  ASSIGN_OR_RETURN(PipelineRuntime r, store_.Runtime(pipeline));
  r.set_salt(r.salt() + 1);
  // Every datum is new under the new salt: the next job lists them all
  // instead of planning from what changed in the input (maybe nothing).
  r.set_has_base(false);
  KvBatch batch;
  store_.PutRuntime(pipeline, r, &batch);
  // The salt is durable: after an index rebuild, the hashes made with an
  // older salt stay stale.
  pfs::RecordChanges records;
  store_.SaltRecord(pipeline, r.salt(), &records);
  return pfs_->WriteRecords(records, &batch);
}

absl::StatusOr<JobInfo> Dispatcher::StopJob(const std::string& pipeline, const std::string& job,
                                            const std::string& reason) {
  ASSIGN_OR_RETURN(JobInfo j, InspectJob(pipeline, job));
  if (Terminal(j.state())) {
    return absl::FailedPreconditionError(absl::StrCat("job ", j.id(), " of pipeline ", pipeline,
                                                      " has ended (",
                                                      pps::v1::JobState_Name(j.state()), ")"));
  }
  {
    absl::MutexLock l(&mu_);
    auto d = drivers_.find(pipeline);
    if (d == drivers_.end()) {
      return absl::NotFoundError(absl::StrCat("pipeline ", pipeline, " not found"));
    }
    d->second->kill[j.id()] = reason.empty() ? "stopped by a user" : reason;
    d->second->wake = true;
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (true) {
    const uint64_t seen = Changes();
    ASSIGN_OR_RETURN(j, InspectJob(pipeline, j.id()));
    if (Terminal(j.state()) || absl::Now() >= deadline) return j;
    AwaitChange(seen, std::min(deadline, absl::Now() + absl::Milliseconds(200)));
  }
}

absl::Status Dispatcher::ProcessKills(Driver* d) {
  std::map<std::string, std::string> kill;
  std::optional<JobInfo> active;
  {
    absl::MutexLock l(&mu_);
    if (d->kill.empty()) return absl::OkStatus();
    kill.swap(d->kill);
    if (d->active && kill.count(d->active->job.id())) {
      // Its runners lose their leases (their heartbeats say so) and stop.
      active = d->active->job;
      for (const auto& lease : d->active->queue.Leases()) {
        leases_.erase(lease);
        live_.erase(lease);
      }
      d->active.reset();
      work_cv_.SignalAll();
    }
  }
  for (const auto& [id, reason] : kill) {
    std::optional<JobInfo> j = active && active->id() == id ? active : std::nullopt;
    if (!j) {
      ASSIGN_OR_RETURN(j, store_.FindJob(d->name, id));
      if (!j || Terminal(j->state())) continue;
    }
    if (j->state() == pps::v1::JOB_EGRESSING) {
      // Its output commit is finished and stays; only the copy stops.
      LOG(WARNING) << "pipeline " << d->name << ": job " << id
                   << " killed during egress: " << reason;
      j->set_state(pps::v1::JOB_KILLED);
      j->set_reason(absl::StrCat(reason, " (during egress to ", j->egress().url(), ")"));
      *j->mutable_finished() = NowTimestamp();
      RETURN_IF_ERROR(WriteEndedJob(d->name, *j));
      continue;
    }
    std::vector<pfs::v1::CommitRef> provenance;
    for (const auto& in : j->inputs()) {
      if (!in.id().empty()) provenance.push_back(in);
    }
    RETURN_IF_ERROR(FailJobEarly(d, *j, reason, pps::v1::JOB_KILLED, provenance));
  }
  return absl::OkStatus();
}

absl::Status Dispatcher::DeleteJob(const std::string& pipeline, const std::string& job) {
  ASSIGN_OR_RETURN(JobInfo j, InspectJob(pipeline, job));
  if (!Terminal(j.state())) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", j.id(), " of pipeline ", pipeline, " has not ended (",
                     pps::v1::JobState_Name(j.state()), "); stop it first (stop job)"));
  }
  KvBatch batch;
  pfs::RecordChanges records;
  RETURN_IF_ERROR(store_.DeleteJob(j, &batch, &records));
  RETURN_IF_ERROR(pfs_->WriteRecords(records, &batch));
  LOG(INFO) << "pipeline " << pipeline << ": deleted job " << j.id();
  Changed();
  return absl::OkStatus();
}

void Dispatcher::PruneJobs(const std::string& pipeline, uint64_t newest) {
  const uint64_t keep = options_.job_history;
  if (keep == 0) return;
  // In batches (a tenth of the history at least): each prune reads every
  // succeeded datum hash of the pipeline. Below that many sequence numbers
  // since the oldest job, there is nothing to read the jobs for.
  const uint64_t limit = keep + std::max<uint64_t>(1, keep / 10);
  std::optional<uint64_t> oldest;
  absl::Status st = store_.ScanJobs(pipeline, 0, [&](const JobInfo& j) {
    oldest = j.seq();
    return false;
  });
  if (st.ok() && (!oldest || newest < *oldest || newest - *oldest < limit)) return;
  std::vector<JobInfo> ended;
  if (st.ok()) {
    st = store_.ScanJobs(pipeline, 0, [&](const JobInfo& j) {
      if (Terminal(j.state())) ended.push_back(j);
      return true;
    });
  }
  if (!st.ok() || ended.size() <= limit) {
    if (!st.ok()) LOG(WARNING) << "pipeline " << pipeline << ": pruning job history: " << st;
    return;
  }
  ended.resize(ended.size() - keep);  // the oldest
  KvBatch batch;
  pfs::RecordChanges records;
  std::set<std::string> ids;
  for (const auto& j : ended) {
    ids.insert(j.id());
    st.Update(store_.DeleteJob(j, &batch, &records));
  }
  // Their datums' outputs go too, unless a current datum still has them.
  auto stale = store_.StaleDoneKeys(pipeline, ids);
  if (stale.ok()) {
    records.deleted.insert(records.deleted.end(), stale->begin(), stale->end());
  } else {
    st.Update(stale.status());
  }
  if (st.ok()) st = pfs_->WriteRecords(records, &batch);
  if (!st.ok()) {
    LOG(WARNING) << "pipeline " << pipeline << ": pruning job history: " << st;
    return;
  }
  LOG(INFO) << "pipeline " << pipeline << ": pruned " << ended.size() << " jobs (--job-history "
            << keep << ") and " << stale->size() << " datum outputs no current datum has";
  Changed();
}

absl::StatusOr<JobInfo> Dispatcher::RestartDatums(const std::string& pipeline,
                                                  const std::string& job,
                                                  const std::vector<std::string>& datums) {
  ASSIGN_OR_RETURN(JobInfo j, InspectJob(pipeline, job));
  // The job's failed datums, and whether each named one is among them.
  std::vector<DatumInfo> failed;
  RETURN_IF_ERROR(ListDatums(pipeline, j.id(), [&](const DatumInfo& di) {
    bool named = datums.empty();
    for (const auto& prefix : datums) named = named || absl::StartsWith(di.id(), prefix);
    if (!named) return absl::OkStatus();
    if (di.state() != pps::v1::DATUM_FAILED && !datums.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("datum ", di.id().substr(0, 12), " of job ", j.id(), " did not fail (",
                       pps::v1::DatumState_Name(di.state()),
                       "); rerun pipeline --reprocess runs every datum again"));
    }
    if (di.state() == pps::v1::DATUM_FAILED) failed.push_back(di);
    return absl::OkStatus();
  }));
  if (failed.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("job ", j.id(), " of pipeline ", pipeline,
                                                      " has no failed datum",
                                                      datums.empty() ? "" : " of those named"));
  }
  {
    absl::MutexLock l(&mu_);
    if (ActiveJob* a = Active(pipeline, j.id())) {
      uint64_t n = 0;
      for (const auto& di : failed) n += a->queue.Requeue(di.key()) ? 1 : 0;
      a->job.set_datums_failed(a->job.datums_failed() - std::min(n, a->job.datums_failed()));
      work_cv_.SignalAll();
      LOG(INFO) << "pipeline " << pipeline << ": job " << j.id() << ": " << n
                << " failed datums queued again";
      return a->job;
    }
  }
  // The job ended: its failed datums are the pipeline's failed datums, which
  // the next job runs again (unless the input moved on without them).
  return RerunPipeline(pipeline, false);
}

absl::StatusOr<JobInfo> Dispatcher::RerunPipeline(const std::string& name, bool reprocess) {
  ASSIGN_OR_RETURN(PipelineInfo info, pipelines_->Inspect(name));
  if (reprocess) RETURN_IF_ERROR(Reprocess(name));
  ASSIGN_OR_RETURN(std::optional<JobInfo> job, TriggerOnHeads(info, /*new_commit_set=*/true));
  if (!job) {
    return absl::FailedPreconditionError(
        absl::StrCat("no input of pipeline ", name, " has a commit yet: nothing to run"));
  }
  LOG(INFO) << "pipeline " << name << ": rerun" << (reprocess ? " (reprocess)" : "") << " as job "
            << job->id();
  return *job;
}

}  // namespace tusk::dispatcher
