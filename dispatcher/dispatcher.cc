// The dispatcher's drivers: triggers, pipelines, and each pipeline's job
// loop (start a job, lease its datums, finish it with the merged output).
// Runner calls are in dispatcher_runners.cc, inspection in
// dispatcher_inspect.cc.

#include "dispatcher/dispatcher.h"

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/proto_util.h"
#include "common/status.h"
#include "dispatcher/dispatcher_internal.h"
#include "dispatcher/output_merge.h"
#include "dispatcher/spec.h"
#include "pfs/keys.h"
#include "pfs/refs.h"

namespace tusk::dispatcher {

using pfs::KvBatch;

// ---------------------------------------------------------------------------
// Open / close

Dispatcher::Dispatcher(pfs::Pfs* pfs, Pipelines* pipelines, const DispatcherOptions& options)
    : pfs_(pfs), pipelines_(pipelines), store_(pfs->Space(pfs::kJobSpace)), options_(options) {}

absl::StatusOr<std::unique_ptr<Dispatcher>> Dispatcher::Open(pfs::Pfs* pfs, Pipelines* pipelines,
                                                             const DispatcherOptions& options) {
  auto d = std::unique_ptr<Dispatcher>(new Dispatcher(pfs, pipelines, options));
  RETURN_IF_ERROR(d->Load());
  pfs->SetCommitHook(d.get());
  d->collector_ = metrics::OnCollect([p = d.get()] { p->CollectMetrics(); });
  d->cron_thread_ = std::thread([p = d.get()] { p->CronLoop(); });
  // Datum outputs are live while a record names them (JobStore::MarkLive).
  pfs->AddGcSource([store = &d->store_](pfs::GcMarker* marker) { return store->MarkLive(marker); });
  return d;
}

absl::Status Dispatcher::Load() {
  ASSIGN_OR_RETURN(auto all, pipelines_->List());
  RebuildTriggers(all);
  for (const auto& info : all) {
    const std::string& name = info.spec().pipeline().name();
    ASSIGN_OR_RETURN(uint64_t next, store_.NextJobSeq(name));
    {
      absl::MutexLock l(&triggers_mu_);
      next_seq_[name] = next;
    }
    absl::MutexLock l(&mu_);
    StartDriver(info);
  }
  for (const auto& info : all) RETURN_IF_ERROR(CatchUpAfterRebuild(info));
  return absl::OkStatus();
}

absl::Status Dispatcher::CatchUpAfterRebuild(const PipelineInfo& info) {
  const std::string& name = info.spec().pipeline().name();
  ASSIGN_OR_RETURN(bool has_runtime, store_.HasRuntime(name));
  if (has_runtime) return absl::OkStatus();
  // A successful job writes the runtime in the same write that ends it, so
  // an ended job without one means the index was rebuilt from the log
  // (ended jobs are durable records, the runtime is not).
  std::optional<JobInfo> last;
  RETURN_IF_ERROR(store_.ScanJobs(name, 0, [&](const JobInfo& j) {
    last = j;
    return true;
  }));
  if (!last || last->state() != pps::v1::JOB_SUCCESS) return absl::OkStatus();
  // Jobs made for input commits before the rebuild were not durable: one job
  // over the heads catches up, rerunning nothing whose hash succeeded.
  ASSIGN_OR_RETURN(auto job, TriggerOnHeads(info, /*new_commit_set=*/true));
  if (job) {
    LOG(INFO) << "pipeline " << name << ": index rebuilt; job " << job->id()
              << " brings the output up to date with the inputs' heads";
  }
  return absl::OkStatus();
}

Dispatcher::~Dispatcher() {
  if (collector_ != 0) metrics::RemoveCollector(collector_);
  pfs_->SetCommitHook(nullptr);
  std::vector<std::string> names;
  {
    absl::MutexLock l(&mu_);
    closing_ = true;
    work_cv_.SignalAll();
    job_cv_.SignalAll();
    for (const auto& [name, d] : drivers_) names.push_back(name);
  }
  if (cron_thread_.joinable()) cron_thread_.join();
  for (const auto& n : names) StopDriver(n);
  Changed();
}

void Dispatcher::StartDriver(const PipelineInfo& info) {
  auto d = std::make_unique<Driver>();
  d->name = info.spec().pipeline().name();
  d->info = info;
  Driver* raw = d.get();
  drivers_[d->name] = std::move(d);
  raw->thread = std::thread([this, raw] { DriverLoop(raw); });
}

void Dispatcher::StopDriver(const std::string& name) {
  Driver* d = nullptr;
  {
    absl::MutexLock l(&mu_);
    auto it = drivers_.find(name);
    if (it == drivers_.end()) return;
    d = it->second.get();
    d->stop = true;
    if (d->active) {
      for (const auto& lease : d->active->queue.Leases()) leases_.erase(lease);
    }
  }
  // Only this function takes a driver out of the map, so `d` stays valid.
  if (d->thread.joinable()) d->thread.join();
  absl::MutexLock l(&mu_);
  drivers_.erase(name);
  work_cv_.SignalAll();
}

void Dispatcher::Wake(const std::string& pipeline) {
  auto d = drivers_.find(pipeline);
  if (d != drivers_.end()) d->second->wake = true;
}

void Dispatcher::Changed() {
  absl::MutexLock l(&changes_mu_);
  changes_++;
}

uint64_t Dispatcher::Changes() {
  absl::MutexLock l(&changes_mu_);
  return changes_;
}

void Dispatcher::AwaitChange(uint64_t seen, absl::Time deadline) {
  absl::MutexLock l(&changes_mu_);
  auto moved = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(changes_mu_) { return changes_ != seen; };
  changes_mu_.AwaitWithDeadline(absl::Condition(&moved), deadline);
}

void Dispatcher::RebuildTriggers(const std::vector<PipelineInfo>& all) {
  absl::MutexLock l(&triggers_mu_);
  triggers_.clear();
  for (const auto& info : all) {
    for (const PFSInput* in : PfsInputs(info.spec().input())) {
      // A pinned input (pfs.commit) reads one commit: its branch triggers nothing.
      if (!in->commit().empty()) continue;
      triggers_[{in->repo(), in->branch()}].insert(info.spec().pipeline().name());
    }
  }
}

// ---------------------------------------------------------------------------
// Triggers

JobInfo Dispatcher::NewJob(const std::string& pipeline, const pfs::v1::CommitRef& trigger,
                           const std::string& commit_set, KvBatch* batch) {
  JobInfo job;
  job.set_id(pfs::NewCommitId());
  job.set_pipeline(pipeline);
  job.set_state(pps::v1::JOB_CREATED);
  *job.mutable_trigger() = trigger;
  job.set_commit_set(commit_set.empty() ? job.id() : commit_set);
  *job.mutable_created() = NowTimestamp();
  job.set_seq(next_seq_[pipeline]++);
  store_.AddJob(job, batch);
  return job;
}

absl::Status Dispatcher::BeforeFinish(const pfs::CommitInfo& commit, KvBatch* batch) {
  // A failed commit triggers too: the jobs it makes end JOB_UNRUNNABLE, so
  // that everything downstream of a failure says so in the commit set.
  absl::MutexLock l(&triggers_mu_);
  pfs::v1::CommitRef trigger;
  trigger.set_repo(commit.repo());
  trigger.set_id(commit.id());
  trigger.set_branch(commit.branch());
  return TriggerJobs(trigger, commit.commit_set(), batch).status();
}

void Dispatcher::AfterFinish(const pfs::CommitInfo& commit) {
  Changed();
  std::set<std::string> wake;
  {
    absl::MutexLock l(&triggers_mu_);
    auto it = triggers_.find({commit.repo(), commit.branch()});
    if (it == triggers_.end()) return;
    wake = it->second;
  }
  absl::MutexLock l(&mu_);
  for (const auto& p : wake) Wake(p);
}

absl::StatusOr<std::optional<JobInfo>> Dispatcher::TriggerOnHeads(const PipelineInfo& info,
                                                                  bool new_commit_set) {
  const std::string& name = info.spec().pipeline().name();
  for (const PFSInput* in : PfsInputs(info.spec().input())) {
    std::string head = in->commit();
    if (head.empty()) {
      auto b = pfs_->InspectBranch(in->repo(), in->branch());
      if (b.status().code() == absl::StatusCode::kNotFound) continue;
      RETURN_IF_ERROR(b.status());
      head = b->head();
    }
    if (head.empty()) continue;
    pfs::v1::CommitRef trigger;
    trigger.set_repo(in->repo());
    trigger.set_id(head);
    trigger.set_branch(in->branch());
    // A new pipeline's job joins the head's commit set: what is derived from
    // that commit now includes this pipeline's output. An update's job starts
    // a set of its own (as in Pachyderm), so that what is downstream of it
    // runs again in that set.
    ASSIGN_OR_RETURN(pfs::CommitInfo commit, pfs_->InspectCommit(in->repo(), head));
    KvBatch batch;
    JobInfo job;
    {
      absl::MutexLock l(&triggers_mu_);
      job = NewJob(name, trigger, new_commit_set ? "" : commit.commit_set(), &batch);
      RETURN_IF_ERROR(store_.Write(&batch, /*sync=*/true));
      LOG(INFO) << "pipeline " << name << ": job " << job.id() << " on the current head of "
                << in->repo() << "@" << in->branch();
    }
    absl::MutexLock l(&mu_);
    Wake(name);
    return job;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// Pipelines

absl::StatusOr<PipelineInfo> Dispatcher::CreatePipeline(PipelineSpec spec, bool update,
                                                        bool reprocess) {
  std::string old_branch;
  if (update) {
    auto old = pipelines_->Inspect(spec.pipeline().name());
    if (old.ok()) {
      old_branch = old->spec().output_branch();
      // A new salt makes every datum new.
      if (old->spec().salt() != spec.salt()) reprocess = true;
    }
  }
  // A cron input's repo is made with the pipeline (its ticks go there).
  {
    PipelineSpec normal = spec;
    if (NormalizePipelineSpec(&normal).ok()) {
      for (const auto* cron : CronInputs(normal.input())) {
        auto repo = pfs_->InspectRepo(cron->repo());
        if (repo.status().code() != absl::StatusCode::kNotFound) continue;
        RETURN_IF_ERROR(
            pfs_->CreateRepo(cron->repo(), absl::StrCat("cron ticks (", cron->spec(),
                                                        ") of pipeline ", normal.pipeline().name()))
                .status());
      }
    }
  }
  ASSIGN_OR_RETURN(PipelineInfo info, pipelines_->Create(std::move(spec), update));
  const std::string& name = info.spec().pipeline().name();
  // The output branch's provenance: the input branches, each once.
  std::vector<pfs::v1::BranchRef> provenance;
  std::set<std::pair<std::string, std::string>> seen;
  for (const PFSInput* in : PfsInputs(info.spec().input())) {
    if (!seen.insert({in->repo(), in->branch()}).second) continue;
    pfs::v1::BranchRef& ref = provenance.emplace_back();
    ref.set_repo(in->repo());
    ref.set_name(in->branch());
  }
  const std::string& branch = info.spec().output_branch();
  RETURN_IF_ERROR(pfs_->SetBranchProvenance(name, branch, provenance).status());
  if (!old_branch.empty() && old_branch != branch) {
    RETURN_IF_ERROR(pfs_->SetBranchProvenance(name, old_branch, {}).status());
  }
  if (reprocess) RETURN_IF_ERROR(Reprocess(name));
  ASSIGN_OR_RETURN(auto all, pipelines_->List());
  RebuildTriggers(all);
  {
    absl::MutexLock l(&triggers_mu_);
    next_seq_.emplace(name, 0);
  }
  {
    absl::MutexLock l(&mu_);
    auto it = drivers_.find(name);
    if (it == drivers_.end()) {
      StartDriver(info);
    } else {
      it->second->info = info;
      it->second->wake = true;
    }
  }
  RETURN_IF_ERROR(TriggerOnHeads(info, /*new_commit_set=*/update).status());
  LOG(INFO) << (update ? "updated" : "created") << " pipeline " << name << " (version "
            << info.version() << (reprocess ? ", reprocess" : "") << ")";
  return info;
}

absl::Status Dispatcher::DeletePipeline(const std::string& name, bool keep_repo) {
  ASSIGN_OR_RETURN(PipelineInfo info, pipelines_->Inspect(name));
  // Refuse before stopping anything if another pipeline reads this one.
  ASSIGN_OR_RETURN(auto all, pipelines_->List());
  for (const auto& other : all) {
    for (const PFSInput* in : PfsInputs(other.spec().input())) {
      if (in->repo() == name && other.spec().pipeline().name() != name) {
        return absl::FailedPreconditionError(
            absl::StrCat("pipeline ", other.spec().pipeline().name(),
                         " reads the output of pipeline ", name, "; delete it first"));
      }
    }
  }
  StopDriver(name);
  RETURN_IF_ERROR(pipelines_->Delete(name, keep_repo));
  ASSIGN_OR_RETURN(all, pipelines_->List());
  RebuildTriggers(all);
  KvBatch batch;
  pfs::RecordChanges records;
  ASSIGN_OR_RETURN(std::vector<JobInfo> jobs, store_.DeletePipeline(name, &batch, &records));
  for (const auto& j : jobs) {
    if (keep_repo && j.state() == pps::v1::JOB_RUNNING) {
      pfs::FinishOptions fo;
      fo.error = "pipeline deleted";
      auto st = pfs_->FinishCommit(name, j.id(), fo);
      if (!st.ok())
        LOG(WARNING) << "closing output commit of job " << j.id() << ": " << st.status();
    }
  }
  RETURN_IF_ERROR(pfs_->WriteRecords(records, &batch));
  if (keep_repo) {
    // The kept repo is an ordinary repo now: nothing computes it.
    RETURN_IF_ERROR(pfs_->SetBranchProvenance(name, info.spec().output_branch(), {}).status());
  }
  absl::MutexLock l(&triggers_mu_);
  next_seq_.erase(name);
  return absl::OkStatus();
}

absl::StatusOr<PipelineInfo> Dispatcher::SetPipelineState(const std::string& name,
                                                          pps::v1::PipelineState state) {
  ASSIGN_OR_RETURN(PipelineInfo info, pipelines_->SetState(name, state));
  absl::MutexLock l(&mu_);
  auto it = drivers_.find(name);
  if (it != drivers_.end()) {
    it->second->info = info;
    it->second->wake = true;
  }
  work_cv_.SignalAll();
  return info;
}

// ---------------------------------------------------------------------------
// Driver

void Dispatcher::DriverLoop(Driver* d) {
  absl::Duration backoff = absl::Milliseconds(200);
  while (true) {
    {
      absl::MutexLock l(&mu_);
      auto ready = [d] { return d->stop || d->wake; };
      mu_.AwaitWithTimeout(absl::Condition(&ready), backoff);
      if (d->stop) return;
      d->wake = false;
    }
    bool more = false;
    absl::Status st = DriverStep(d, &more);
    if (!st.ok()) {
      LOG(ERROR) << "pipeline " << d->name << ": " << st;
      backoff = std::min(backoff * 2, absl::Seconds(5));
      continue;
    }
    backoff = absl::Milliseconds(200);
    if (more) {
      absl::MutexLock l(&mu_);
      d->wake = true;
    }
  }
}

absl::Status Dispatcher::DriverStep(Driver* d, bool* more) {
  RETURN_IF_ERROR(ProcessKills(d));
  bool finish = false, start = false, active = false;
  {
    absl::MutexLock l(&mu_);
    active = d->active != nullptr;
    if (active) {
      CheckLeases(d);
      CheckDeadline(d);
      finish = d->active->queue.remaining() == 0;
    } else {
      start = d->info.state() != pps::v1::PAUSED;
    }
  }
  if (finish) {
    // A finished job may have a successor.
    *more = true;
    ASSIGN_OR_RETURN(uint64_t seq, FinishJob(d));
    PruneJobs(d->name, seq);
    return absl::OkStatus();
  }
  if (active) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::optional<JobInfo> next, NextJob(d));
  if (!next) return absl::OkStatus();
  if (next->state() == pps::v1::JOB_EGRESSING) {
    // Its output commit is done: the copy goes on even if the pipeline is paused.
    *more = true;
    return RunEgress(d, *next);
  }
  if (!start) return absl::OkStatus();
  absl::Status st = StartJob(d, *next);
  if (!st.ok() && st.code() != absl::StatusCode::kUnavailable) {
    st = FailJobEarly(d, *next, std::string(st.message()));
  }
  RETURN_IF_ERROR(st);
  absl::MutexLock l(&mu_);
  *more = d->active != nullptr;
  return absl::OkStatus();
}

void Dispatcher::CheckDeadline(Driver* d) {
  ActiveJob* a = d->active.get();
  if (a->queue.remaining() == 0 || absl::Now() <= a->deadline) return;
  LOG(WARNING) << "pipeline " << d->name << ": job " << a->job.id() << " timed out";
  a->job.set_reason("job timed out");
  uint64_t failed = 0;
  for (const auto& lease : a->queue.FailAll("job timed out", &failed)) leases_.erase(lease);
  a->job.set_datums_failed(a->job.datums_failed() + failed);
}

void Dispatcher::CheckLeases(Driver* d) {
  for (const auto& r : d->active->queue.Expire(absl::Now())) {
    LOG(WARNING) << "pipeline " << d->name << ": lease of datum " << r.datum.substr(0, 12)
                 << " on runner " << r.runner << " expired; leasing it again";
    leases_.erase(r.lease);
    work_cv_.SignalAll();
  }
}

absl::StatusOr<std::optional<JobInfo>> Dispatcher::NextJob(Driver* d) {
  uint64_t scan_from;
  {
    absl::MutexLock l(&mu_);
    scan_from = d->scan_from;
  }
  std::optional<JobInfo> found;
  uint64_t first_open = scan_from;
  RETURN_IF_ERROR(store_.ScanJobs(d->name, scan_from, [&](const JobInfo& j) {
    if (Terminal(j.state())) {
      if (!found) first_open = j.seq() + 1;
      return true;
    }
    found = j;
    return false;
  }));
  absl::MutexLock l(&mu_);
  d->scan_from = first_open;
  return found;
}

absl::Status Dispatcher::FailJobEarly(Driver* d, JobInfo job, const std::string& reason,
                                      pps::v1::JobState state,
                                      const std::vector<pfs::v1::CommitRef>& provenance) {
  LOG(WARNING) << "pipeline " << d->name << ": job " << job.id()
               << (state == pps::v1::JOB_UNRUNNABLE ? " cannot run: " : " failed: ") << reason;
  job.set_state(state);
  job.set_reason(reason);
  *job.mutable_finished() = NowTimestamp();
  job.mutable_output_commit()->set_repo(d->name);
  job.mutable_output_commit()->set_id(job.id());
  CountJob(d->name, job.state());
  KvBatch batch;
  store_.PutJob(job, &batch);
  pfs::RecordChanges records;
  store_.JobRecords(job, &records);
  // Its output commit, marked failed, with its parent's files.
  PipelineSpec spec;
  {
    absl::MutexLock l(&mu_);
    spec = d->info.spec();
  }
  job.mutable_output_commit()->set_branch(spec.output_branch());
  auto opened = OpenOutputCommit(d->name, job, spec, provenance);
  if (!opened.ok()) LOG(WARNING) << "opening output commit of job " << job.id() << ": " << opened;
  auto c = pfs_->InspectCommit(d->name, job.id());
  if (c.ok() && c->state() == pfs::v1::OPEN) {
    pfs::FinishOptions fo;
    fo.error = reason;
    fo.extra = &batch;
    fo.records = &records;
    RETURN_IF_ERROR(pfs_->FinishCommit(d->name, job.id(), fo).status());
  } else {
    RETURN_IF_ERROR(pfs_->WriteRecords(records, &batch));
  }
  Changed();
  absl::MutexLock l(&mu_);
  if (d->active && d->active->job.id() == job.id()) d->active.reset();
  job_cv_.SignalAll();
  return absl::OkStatus();
}

absl::Status Dispatcher::OpenOutputCommit(const std::string& pipeline, const JobInfo& job,
                                          const PipelineSpec& spec,
                                          const std::vector<pfs::v1::CommitRef>& provenance) {
  // Its id is the job's, so a restart finds it again.
  pfs::CommitOptions co;
  co.provenance = provenance;
  co.commit_set = job.commit_set();
  co.id = job.id();
  auto existing = pfs_->InspectCommit(pipeline, job.id());
  if (existing.ok()) {
    // Resumed after a restart: the output commit is already open.
    if (existing->state() != pfs::v1::OPEN) {
      return absl::DataLossError(
          absl::StrCat("output commit ", job.id(), " is finished but job ", job.id(), " is not"));
    }
    return absl::OkStatus();
  }
  if (existing.status().code() != absl::StatusCode::kNotFound) return existing.status();
  return pfs_
      ->StartCommit(pipeline, spec.output_branch(), absl::StrCat("job ", job.id()),
                    pfs::v1::PIPELINE, {}, co)
      .status();
}

absl::Status Dispatcher::StartJob(Driver* d, JobInfo job) {
  ASSIGN_OR_RETURN(PipelineInfo info, pipelines_->Inspect(d->name));
  auto a = std::make_unique<ActiveJob>();
  a->spec = info.spec();
  const PipelineSpec& spec = a->spec;
  if (job.state() == pps::v1::JOB_CREATED) job.set_pipeline_version(info.version());
  ASSIGN_OR_RETURN(Resolution inputs, ResolveInputs(&job, a.get()));
  if (!inputs.waiting.empty()) {
    // Not yet: the driver tries again when an input branch moves.
    if (job.reason() != inputs.waiting) {
      LOG(INFO) << "pipeline " << d->name << ": job " << job.id() << " " << inputs.waiting;
      job.set_reason(inputs.waiting);
      KvBatch batch;
      store_.PutJob(job, &batch);
      RETURN_IF_ERROR(store_.Write(&batch, /*sync=*/false));
    }
    return absl::OkStatus();
  }
  job.clear_reason();
  if (!inputs.blocked.empty()) {
    return FailJobEarly(d, job, inputs.blocked, pps::v1::JOB_UNRUNNABLE, inputs.provenance);
  }
  const auto& provenance = inputs.provenance;
  RETURN_IF_ERROR(OpenOutputCommit(d->name, job, spec, provenance));
  job.mutable_output_commit()->set_repo(d->name);
  job.mutable_output_commit()->set_id(job.id());
  job.mutable_output_commit()->set_branch(spec.output_branch());

  // reprocess_spec every_job: each new job runs every datum.
  if (job.state() == pps::v1::JOB_CREATED && spec.reprocess_spec() == "every_job") {
    RETURN_IF_ERROR(Reprocess(d->name));
  }
  // Which datums changed since the pipeline's previous job.
  ASSIGN_OR_RETURN(PipelineRuntime rt, store_.Runtime(d->name));
  job.set_salt(rt.salt());
  ASSIGN_OR_RETURN(a->plan, PlanJob(pfs_->nodes(), store_, d->name, spec, job.id(), a->inputs, rt));

  // Persist what the job touched (kept on resume) and the job as running.
  job.set_state(pps::v1::JOB_RUNNING);
  if (!job.has_started()) *job.mutable_started() = NowTimestamp();
  job.set_datums_total(a->plan.total);
  job.set_datums_removed(a->plan.removed);
  uint64_t processed = 0, failed = 0, recovered = 0, to_run = 0;
  KvBatch batch;
  for (const auto& [key, di] : a->plan.touched) {
    auto s = di.state();
    if (s == pps::v1::DATUM_PENDING || s == pps::v1::DATUM_SUCCESS || s == pps::v1::DATUM_FAILED ||
        s == pps::v1::DATUM_RECOVERED) {
      to_run++;
    }
    if (s == pps::v1::DATUM_SUCCESS) processed++;
    if (s == pps::v1::DATUM_FAILED) failed++;
    if (s == pps::v1::DATUM_RECOVERED) recovered++;
    store_.PutJobDatum(job.id(), di, &batch);
    if (batch.ByteSize() > (4 << 20)) {
      RETURN_IF_ERROR(store_.Write(&batch, /*sync=*/false));
      batch.Clear();
    }
  }
  job.set_datums_processed(processed);
  job.set_datums_failed(failed);
  job.set_datums_recovered(recovered);
  job.set_datums_skipped(a->plan.total - to_run);
  CountDatums(d->name, "skipped", job.datums_skipped());
  store_.PutJob(job, &batch);
  RETURN_IF_ERROR(store_.Write(&batch, /*sync=*/true));
  if (spec.has_job_timeout() && FromDuration(spec.job_timeout()) > absl::ZeroDuration()) {
    a->deadline = FromTimestamp(job.started()) + FromDuration(spec.job_timeout());
  }
  a->job = job;
  for (const auto& [key, di] : a->plan.touched) {
    if (di.state() == pps::v1::DATUM_PENDING) a->queue.Add(di);
  }
  LOG(INFO) << "pipeline " << d->name << ": job " << job.id() << " started: " << a->plan.total
            << " datums, " << a->queue.remaining() << " to run, " << a->plan.removed << " removed"
            << (a->plan.incremental ? " (incremental)" : "");
  absl::MutexLock l(&mu_);
  d->active = std::move(a);
  d->wake = true;
  work_cv_.SignalAll();
  job_cv_.SignalAll();
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Dispatcher::FinishJob(Driver* d) {
  // Snapshot the outcome; nothing changes it now (no work is outstanding).
  JobInfo job;
  std::map<std::string, DatumInfo> touched;
  std::map<std::string, std::string> old_roots;
  PipelineRuntime base;  // what the next incremental job starts from
  std::string egress_url;
  {
    absl::MutexLock l(&mu_);
    ActiveJob* a = d->active.get();
    job = a->job;
    touched = a->plan.touched;
    a->queue.CopyTo(&touched);
    old_roots = a->plan.old_roots;
    for (const auto& [name, r] : a->inputs) {
      (*base.mutable_base_roots())[name] = r.root.IsZero() ? "" : r.root.Hex();
    }
    base.set_input_spec(a->spec.input().SerializeAsString());
    egress_url = EgressUrl(a->spec);
  }
  const std::string& p = d->name;
  uint64_t processed = 0, failed = 0, recovered = 0;
  for (const auto& [key, di] : touched) {
    if (di.state() == pps::v1::DATUM_SUCCESS) processed++;
    if (di.state() == pps::v1::DATUM_FAILED) failed++;
    if (di.state() == pps::v1::DATUM_RECOVERED) recovered++;
  }
  job.set_datums_processed(processed);
  job.set_datums_failed(failed);
  job.set_datums_recovered(recovered);
  job.set_datums_skipped(job.datums_total() - processed - failed - recovered);

  KvBatch batch;
  ASSIGN_OR_RETURN(MergePlan merge,
                   PlanMerge(pfs_->nodes(), store_, p, touched, old_roots, &batch));
  // Without a runtime (the first job, or the first after an index rebuild)
  // nothing says which datums made the previous output: it is made anew
  // from this job's datums, the skipped ones' reused outputs included.
  ASSIGN_OR_RETURN(bool has_runtime, store_.HasRuntime(p));
  merge.clear = !has_runtime;
  std::string error;
  {
    ASSIGN_OR_RETURN(auto up, pfs_->BeginUpload(p, job.id()));
    ASSIGN_OR_RETURN(error, ApplyMerge(merge, up.get()));
  }
  if (!error.empty()) {
    // Keep the pipeline's datum state as it was; only the job fails.
    batch.Clear();
  } else {
    ASSIGN_OR_RETURN(PipelineRuntime rt, store_.Runtime(p));
    rt.set_has_base(true);
    *rt.mutable_base_roots() = base.base_roots();
    rt.set_input_spec(base.input_spec());
    rt.set_total(job.datums_total());
    store_.PutRuntime(p, rt, &batch);
    if (failed > 0) {
      error = job.reason().empty()
                  ? absl::StrCat(failed, " datum", failed == 1 ? "" : "s", " failed")
                  : job.reason();
    }
  }
  // With egress the job goes on (RunEgress) once its output commit is finished.
  const bool egress = error.empty() && !egress_url.empty();
  job.set_state(error.empty() ? (egress ? pps::v1::JOB_EGRESSING : pps::v1::JOB_SUCCESS)
                              : pps::v1::JOB_FAILURE);
  job.set_reason(error);
  if (egress) {
    job.mutable_egress()->set_url(egress_url);
  } else {
    CountJob(p, job.state());
    *job.mutable_finished() = NowTimestamp();
  }
  for (const auto& [key, di] : touched) {
    if (di.state() == pps::v1::DATUM_SUCCESS || di.state() == pps::v1::DATUM_FAILED ||
        di.state() == pps::v1::DATUM_RECOVERED) {
      store_.PutJobDatum(job.id(), di, &batch);
    }
  }
  store_.PutJob(job, &batch);
  // Durable, for an index rebuild: the job, and the datum hashes it made
  // succeed with their outputs (so that a rebuilt index skips them too).
  pfs::RecordChanges records;
  store_.JobRecords(job, &records);
  for (const auto& [key, di] : touched) {
    if (di.state() != pps::v1::DATUM_SUCCESS) continue;
    auto h = Hash::FromHex(di.id());
    if (!h.ok()) continue;  // CompleteDatum recorded no hash either
    // The same value CompleteDatum put in the index (PutDone).
    store_.DoneRecord(p, *h, di, &records);
  }
  pfs::FinishOptions fo;
  fo.error = error;
  fo.extra = &batch;
  fo.records = &records;
  // After a failed merge nothing was staged: the commit keeps its parent's tree.
  RETURN_IF_ERROR(pfs_->FinishCommit(p, job.id(), fo).status());
  LOG(INFO) << "pipeline " << p << ": job " << job.id() << " "
            << (egress          ? "output done, egress to " + egress_url + " next"
                : error.empty() ? "succeeded"
                                : "failed: " + error)
            << " (" << processed << " processed, " << job.datums_skipped() << " skipped, " << failed
            << " failed, " << job.datums_removed() << " removed)";
  absl::MutexLock l(&mu_);
  d->active.reset();
  d->scan_from = egress ? job.seq() : job.seq() + 1;
  job_cv_.SignalAll();
  return job.seq();
}

}  // namespace tusk::dispatcher
