// Inspection: jobs, datums, logs, commit sets.

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/proto_util.h"
#include "common/status.h"
#include "dispatcher/dispatcher.h"
#include "dispatcher/dispatcher_internal.h"
#include "dispatcher/spec.h"

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
  // The datums the job did not touch (unchanged, so skipped), from its
  // input commits, when the pipeline's spec is still the job's.
  std::map<std::string, DatumInfo> all;
  for (auto& di : out) all[di.key()] = std::move(di);
  ASSIGN_OR_RETURN(auto skipped, UntouchedDatums(j, all));
  for (auto& di : skipped) all[di.key()] = std::move(di);
  for (const auto& [key, di] : all) RETURN_IF_ERROR(fn(di));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<DatumInfo>> Dispatcher::UntouchedDatums(
    const JobInfo& j, const std::map<std::string, DatumInfo>& touched) {
  std::vector<DatumInfo> out;
  ASSIGN_OR_RETURN(PipelineInfo info, pipelines_->Inspect(j.pipeline()));
  if (info.version() != j.pipeline_version() || j.inputs().empty()) return out;
  // The job's inputs: one per pfs input name, in spec order (ResolveInputs).
  ResolvedInputs resolved;
  int i = 0;
  for (const PFSInput* in : PfsInputs(info.spec().input())) {
    if (resolved.count(in->name())) continue;
    if (i >= j.inputs_size()) return out;  // not the job's inputs after all
    const auto& ref = j.inputs(i++);
    ResolvedInput r;
    if (!ref.id().empty()) {
      ASSIGN_OR_RETURN(pfs::CommitInfo c, pfs_->InspectCommit(ref.repo(), ref.id()));
      if (!c.root().empty()) {
        ASSIGN_OR_RETURN(r.root, Hash::FromHex(c.root()));
      }
      r.commit = ref.id();
    }
    resolved[in->name()] = r;
  }
  ASSIGN_OR_RETURN(std::vector<Datum> datums,
                   dispatcher::ListDatums(pfs_->nodes(), info.spec().input(), resolved));
  for (const auto& d : datums) {
    if (touched.count(d.key)) continue;
    DatumInfo& di = out.emplace_back();
    di.set_id(DatumHash(j.salt(), d).Hex());
    di.set_job(j.id());
    di.set_pipeline(j.pipeline());
    di.set_key(d.key);
    di.set_state(pps::v1::DATUM_SKIPPED);
    for (const auto& in : d.inputs) *di.add_inputs() = in;
  }
  return out;
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

absl::Status Dispatcher::CheckUserWrite(const std::string& repo, const std::string& branch) {
  auto info = pipelines_->Inspect(repo);
  if (info.status().code() == absl::StatusCode::kNotFound) return absl::OkStatus();
  RETURN_IF_ERROR(info.status());
  if (info->spec().output_branch() != branch) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      repo, "@", branch, " is the output of pipeline ", repo,
      ": its files are computed, and its next job would replace what is written by hand "
      "(write to another branch, or use --force)"));
}

absl::Status Dispatcher::CheckRepoDelete(const std::string& repo) {
  ASSIGN_OR_RETURN(auto all, pipelines_->List());
  std::vector<std::string> readers;
  for (const auto& p : all) {
    const std::string& name = p.spec().pipeline().name();
    if (name == repo) {
      return absl::FailedPreconditionError(
          absl::StrCat("repo ", repo, " is the output of pipeline ", repo, "; delete pipeline ",
                       repo, " instead (or delete repo --force)"));
    }
    for (const PFSInput* in : PfsInputs(p.spec().input())) {
      if (in->repo() == repo) {
        readers.push_back(name);
        break;
      }
    }
  }
  if (readers.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "repo ", repo, " is an input of pipeline", readers.size() > 1 ? "s " : " ",
      absl::StrJoin(readers, ", "), "; delete or update them first (or delete repo --force)"));
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
