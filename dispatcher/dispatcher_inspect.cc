// Inspection: jobs, datums, logs, commit sets.

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/proto_util.h"
#include "common/status.h"
#include "dispatcher/dispatcher.h"
#include "dispatcher/dispatcher_internal.h"

namespace tusk::dispatcher {

Dispatcher::ActiveJob* Dispatcher::Active(const std::string& pipeline, const std::string& job_id) {
  auto d = drivers_.find(pipeline);
  if (d == drivers_.end() || !d->second->active || d->second->active->job.id() != job_id) {
    return nullptr;
  }
  return d->second->active.get();
}

absl::StatusOr<std::optional<JobInfo>> Dispatcher::FindJob(const std::string& pipeline,
                                                           const std::string& job) {
  ASSIGN_OR_RETURN(auto j, store_.FindJob(pipeline, job));
  if (!j) return j;
  // A running job's live counts are in memory.
  absl::MutexLock l(&mu_);
  if (ActiveJob* a = Active(j->pipeline(), j->id())) return std::optional<JobInfo>(a->job);
  return j;
}

absl::Status Dispatcher::ListJobs(const std::string& pipeline, uint64_t limit,
                                  const std::function<absl::Status(const JobInfo&)>& fn) {
  std::vector<std::string> names;
  if (pipeline.empty()) {
    ASSIGN_OR_RETURN(auto all, pipelines_->List());
    for (const auto& p : all) names.push_back(p.spec().pipeline().name());
  } else {
    ASSIGN_OR_RETURN(auto info, pipelines_->Inspect(pipeline));
    names.push_back(pipeline);
  }
  std::vector<JobInfo> jobs;
  for (const auto& name : names) {
    RETURN_IF_ERROR(store_.ScanJobs(name, 0, [&](const JobInfo& j) {
      jobs.push_back(j);
      return true;
    }));
  }
  {
    absl::MutexLock l(&mu_);
    for (auto& j : jobs) {
      if (ActiveJob* a = Active(j.pipeline(), j.id())) j = a->job;
    }
  }
  // Newest first.
  std::sort(jobs.begin(), jobs.end(), [](const JobInfo& a, const JobInfo& b) {
    return FromTimestamp(a.created()) > FromTimestamp(b.created());
  });
  uint64_t n = 0;
  for (const auto& j : jobs) {
    if (limit > 0 && n++ >= limit) break;
    RETURN_IF_ERROR(fn(j));
  }
  return absl::OkStatus();
}

absl::StatusOr<JobInfo> Dispatcher::InspectJob(const std::string& pipeline,
                                               const std::string& job) {
  ASSIGN_OR_RETURN(auto j, FindJob(pipeline, job));
  if (!j) {
    return absl::NotFoundError(absl::StrCat("job ", job, " of pipeline ", pipeline, " not found"));
  }
  return *j;
}

absl::Status Dispatcher::WaitJob(const std::string& pipeline, const std::string& job,
                                 const std::function<bool()>& cancelled,
                                 const std::function<absl::Status(const JobInfo&)>& fn) {
  // Progress goes out at most every 100 ms (a job may finish thousands of
  // datums a second); the final state always does.
  constexpr absl::Duration kEvery = absl::Milliseconds(100);
  std::string last;
  absl::Time next = absl::InfinitePast();
  while (true) {
    if (cancelled()) return absl::CancelledError("the wait was cancelled");
    ASSIGN_OR_RETURN(JobInfo j, InspectJob(pipeline, job));
    std::string now = j.SerializeAsString();
    bool done = Terminal(j.state());
    bool held = false;
    if (now != last) {
      if (done || absl::Now() >= next) {
        RETURN_IF_ERROR(fn(j));
        last = now;
        next = absl::Now() + kEvery;
      } else {
        held = true;
      }
    }
    if (done) return absl::OkStatus();
    absl::MutexLock l(&mu_);
    if (closing_) return absl::UnavailableError("tuskd is shutting down");
    if (held) {
      // Until `next`, unless the job leaves the driver (it is done).
      auto left = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return closing_ || Active(j.pipeline(), j.id()) == nullptr;
      };
      mu_.AwaitWithDeadline(absl::Condition(&left), next);
    } else {
      job_cv_.WaitWithTimeout(&mu_, absl::Milliseconds(500));
    }
  }
}

absl::Status Dispatcher::ListDatums(const std::string& pipeline, const std::string& job,
                                    const std::function<absl::Status(const DatumInfo&)>& fn) {
  ASSIGN_OR_RETURN(JobInfo j, InspectJob(pipeline, job));
  std::vector<DatumInfo> out;
  RETURN_IF_ERROR(store_.ScanJobDatums(j.id(), [&](const DatumInfo& di) {
    out.push_back(di);
    return absl::OkStatus();
  }));
  {
    absl::MutexLock l(&mu_);
    if (ActiveJob* a = Active(j.pipeline(), j.id())) {
      for (auto& di : out) {
        if (const DatumInfo* live = a->queue.Find(di.key())) di = *live;
      }
    }
  }
  for (const auto& di : out) RETURN_IF_ERROR(fn(di));
  return absl::OkStatus();
}

absl::StatusOr<DatumInfo> Dispatcher::InspectDatum(const std::string& pipeline,
                                                   const std::string& job,
                                                   const std::string& datum) {
  if (datum.empty()) return absl::InvalidArgumentError("datum id is empty");
  std::vector<DatumInfo> found;
  RETURN_IF_ERROR(ListDatums(pipeline, job, [&](const DatumInfo& di) {
    if (absl::StartsWith(di.id(), datum)) found.push_back(di);
    return absl::OkStatus();
  }));
  if (found.empty()) {
    return absl::NotFoundError(
        absl::StrCat("datum ", datum, " not found in job ", job, " of pipeline ", pipeline));
  }
  if (found.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat("datum id prefix '", datum, "' is ambiguous"));
  }
  return found[0];
}

absl::Status Dispatcher::GetLogs(const std::string& pipeline, const std::string& job,
                                 const std::string& datum, bool follow,
                                 const std::function<bool()>& cancelled,
                                 const std::function<absl::Status(const LogMessage&)>& fn) {
  ASSIGN_OR_RETURN(auto info, pipelines_->Inspect(pipeline));
  std::string job_id;
  // Logs are in time order: a job's are between its creation and its end.
  absl::Time from = absl::InfinitePast(), until = absl::InfiniteFuture();
  if (!job.empty()) {
    ASSIGN_OR_RETURN(JobInfo j, InspectJob(pipeline, job));
    job_id = j.id();
    from = FromTimestamp(j.created()) - absl::Seconds(1);
    if (Terminal(j.state()) && j.has_finished() && !follow) {
      until = FromTimestamp(j.finished()) + absl::Seconds(1);
    }
  }
  auto wanted = [&](const LogMessage& m) {
    return (job_id.empty() || m.job() == job_id) && absl::StartsWith(m.datum(), datum);
  };
  auto attempt = [](const LogMessage& m) {
    return absl::StrCat(m.job(), "/", m.datum(), "/", m.attempt());
  };
  // Attempts shown live: (lease, bytes shown) by attempt.
  std::map<std::string, std::pair<std::string, uint64_t>> shown;
  std::string after;  // last key sent
  while (true) {
    std::vector<LogMessage> batch;
    RETURN_IF_ERROR(store_.ScanLogs(pipeline, from, &after, [&](const LogMessage& m) {
      if (FromTimestamp(m.time()) > until) return false;
      if (wanted(m)) batch.push_back(m);
      return true;
    }));
    for (auto& m : batch) {
      auto it = shown.find(attempt(m));
      if (it != shown.end()) {
        // The rest of an attempt that was shown live: its log starts with
        // what was shown (the live part is the log's untruncated start).
        const uint64_t off = std::min<uint64_t>(it->second.second, m.message().size());
        m.set_offset(off);
        m.set_message(m.message().substr(off));
        shown.erase(it);
      }
      RETURN_IF_ERROR(fn(m));
    }
    if (!follow || cancelled()) return absl::OkStatus();
    std::vector<LogMessage> live;
    {
      absl::MutexLock l(&mu_);
      for (const auto& [lease, l] : live_) {
        if (l.head.pipeline() != pipeline || !wanted(l.head)) continue;
        auto& [shown_lease, n] = shown[attempt(l.head)];
        if (shown_lease != lease) {  // a new lease of the attempt: its output anew
          shown_lease = lease;
          n = 0;
        }
        if (l.text.size() <= n) continue;
        LogMessage& m = live.emplace_back(l.head);
        m.set_partial(true);
        m.set_offset(n);
        m.set_message(l.text.substr(n));
        n = l.text.size();
      }
    }
    for (const auto& m : live) RETURN_IF_ERROR(fn(m));
    absl::SleepFor(absl::Milliseconds(250));
  }
}

absl::StatusOr<bool> Dispatcher::CommitSetJobsDone(const std::string& commit_set) {
  ASSIGN_OR_RETURN(std::vector<std::string> ids, store_.CommitSetJobs(commit_set));
  for (const auto& id : ids) {
    ASSIGN_OR_RETURN(auto j, FindJob("", id));
    if (j && !Terminal(j->state())) return false;
  }
  return true;
}

}  // namespace tusk::dispatcher
