#include "dispatcher/dispatcher.h"

#include <deque>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "common/status.h"
#include "dispatcher/spec.h"
#include "google/protobuf/util/time_util.h"
#include "pfs/refs.h"

namespace tusk::dispatcher {
namespace {

using google::protobuf::util::TimeUtil;
using pfs::KvBatch;
using pps::v1::DatumState;
using pps::v1::JobState;
using pps::v1::PipelineRuntime;

const std::string kNul(1, '\0');

std::string Hex16(uint64_t v) { return absl::StrFormat("%016x", v); }
std::string JobPrefix(const std::string& p) { return absl::StrCat("Jj", p, kNul); }
std::string JobKey(const std::string& p, uint64_t seq) { return JobPrefix(p) + Hex16(seq); }
std::string JobIndexKey(const std::string& id) { return absl::StrCat("Ji", id); }
std::string SetKey(const std::string& cs, const std::string& id) {
  return absl::StrCat("Jk", cs, kNul, id);
}
std::string JobDatumPrefix(const std::string& job) { return absl::StrCat("Jd", job, kNul); }
std::string CurPrefix(const std::string& p) { return absl::StrCat("Jc", p, kNul); }
std::string FailPrefix(const std::string& p) { return absl::StrCat("Jf", p, kNul); }
std::string HashPrefix(const std::string& p) { return absl::StrCat("Jh", p, kNul); }
std::string OutPrefix(const std::string& p) { return absl::StrCat("Jo", p, kNul); }
std::string OutPathPrefix(const std::string& p, const std::string& path) {
  return absl::StrCat(OutPrefix(p), path, kNul);
}
std::string RtKey(const std::string& p) { return absl::StrCat("Jr", p); }
std::string LogPrefix(const std::string& p) { return absl::StrCat("Jl", p, kNul); }

google::protobuf::Timestamp Now() {
  return TimeUtil::NanosecondsToTimestamp(absl::GetCurrentTimeNanos());
}

void AddStats(const pps::v1::ProcessStats& s, pps::v1::ProcessStats* sum) {
  *sum->mutable_download_time() += s.download_time();
  *sum->mutable_process_time() += s.process_time();
  *sum->mutable_upload_time() += s.upload_time();
  sum->set_download_bytes(sum->download_bytes() + s.download_bytes());
  sum->set_upload_bytes(sum->upload_bytes() + s.upload_bytes());
}

bool Terminal(JobState s) {
  return s == pps::v1::JOB_SUCCESS || s == pps::v1::JOB_FAILURE || s == pps::v1::JOB_KILLED;
}

template <typename T>
absl::StatusOr<std::optional<T>> GetProto(pfs::Kv* kv, const std::string& key) {
  ASSIGN_OR_RETURN(auto v, kv->Get(key));
  if (!v) return std::optional<T>();
  T msg;
  if (!msg.ParseFromString(*v)) {
    return absl::DataLossError(absl::StrCat("index record ", absl::CEscape(key), " is corrupt"));
  }
  return std::optional<T>(std::move(msg));
}

absl::Status DeletePrefix(pfs::Kv* kv, const std::string& prefix, KvBatch* batch) {
  return kv->ScanPrefix(prefix, [&](absl::string_view k, absl::string_view) {
    batch->Delete(k);
    return true;
  });
}

absl::Status LeaseNotHeld(const std::string& lease) {
  return absl::FailedPreconditionError(
      absl::StrCat("lease ", lease, " is not held (it expired, or its job or pipeline ended)"));
}

absl::StatusOr<Hash> ParseRoot(const std::string& hex) {
  if (hex.empty()) return Hash{};
  return Hash::FromHex(hex);
}

}  // namespace

// A datum of the active job that has to run.
struct Dispatcher::Work {
  DatumInfo info;
  std::string lease;
  std::string runner;
  absl::Time expiry;
};

struct Dispatcher::ActiveJob {
  JobInfo job;
  PipelineSpec spec;
  uint64_t salt = 0;
  ResolvedInputs inputs;
  // Every datum the job touched (to run, skipped by hash, removed), by key.
  std::map<std::string, DatumInfo> touched;
  // Output root of each touched datum in the pipeline's current set ("" if
  // it had none or failed): what the merge replaces.
  std::map<std::string, std::string> old_roots;
  std::map<std::string, Work> work;
  std::deque<std::string> pending;
  size_t remaining = 0;  // work not yet succeeded or failed
  uint64_t to_run = 0;
  absl::Time deadline = absl::InfiniteFuture();
};

struct Dispatcher::Driver {
  std::string name;
  PipelineInfo info;
  std::thread thread;
  bool stop = false;
  bool wake = true;
  uint64_t scan_from = 0;  // jobs before this seq are done
  std::unique_ptr<ActiveJob> active;
};

// ---------------------------------------------------------------------------
// Open / close

Dispatcher::Dispatcher(pfs::Pfs* pfs, Pipelines* pipelines, const DispatcherOptions& options)
    : pfs_(pfs), pipelines_(pipelines), options_(options) {}

absl::StatusOr<std::unique_ptr<Dispatcher>> Dispatcher::Open(pfs::Pfs* pfs, Pipelines* pipelines,
                                                             const DispatcherOptions& options) {
  auto d = std::unique_ptr<Dispatcher>(new Dispatcher(pfs, pipelines, options));
  RETURN_IF_ERROR(d->Load());
  pfs->SetCommitHook(d.get());
  // Datum outputs are live while a record names them: the outputs of
  // succeeded datum hashes (reused by later jobs), the current datums, those
  // of jobs (finished datums of a running job included), and the
  // contributions the merge reads.
  pfs->AddGcSource([pfs](pfs::GcMarker* marker) -> absl::Status {
    for (const char* prefix : {"Jh", "Jc", "Jd"}) {
      std::vector<Hash> roots;
      RETURN_IF_ERROR(pfs->kv()->ScanPrefix(prefix, [&](absl::string_view, absl::string_view v) {
        pps::v1::DatumInfo di;
        if (di.ParseFromString(std::string(v)) && !di.output_root().empty()) {
          auto h = Hash::FromHex(di.output_root());
          if (h.ok()) roots.push_back(*h);
        }
        return true;
      }));
      for (const auto& r : roots) RETURN_IF_ERROR(marker->Tree(r));
    }
    return pfs->kv()->ScanPrefix("Jo", [&](absl::string_view, absl::string_view v) {
      pfs::ChunkList list;
      if (list.ParseFromString(std::string(v))) marker->Chunks(list);
      return true;
    });
  });
  return d;
}

absl::Status Dispatcher::Load() {
  ASSIGN_OR_RETURN(auto all, pipelines_->List());
  RebuildTriggers(all);
  for (const auto& info : all) {
    const std::string& name = info.spec().pipeline().name();
    uint64_t next = 0;
    RETURN_IF_ERROR(
        pfs_->kv()->ScanPrefix(JobPrefix(name), [&](absl::string_view k, absl::string_view) {
          uint64_t seq = 0;
          if (absl::SimpleHexAtoi(k.substr(JobPrefix(name).size()), &seq))
            next = std::max(next, seq + 1);
          return true;
        }));
    {
      absl::MutexLock l(&triggers_mu_);
      next_seq_[name] = next;
    }
    absl::MutexLock l(&mu_);
    StartDriver(info);
  }
  return absl::OkStatus();
}

Dispatcher::~Dispatcher() {
  pfs_->SetCommitHook(nullptr);
  std::vector<std::string> names;
  {
    absl::MutexLock l(&mu_);
    closing_ = true;
    work_cv_.SignalAll();
    job_cv_.SignalAll();
    for (const auto& [name, d] : drivers_) names.push_back(name);
  }
  for (const auto& n : names) StopDriver(n);
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
      for (const auto& [key, w] : d->active->work) {
        if (!w.lease.empty()) leases_.erase(w.lease);
      }
    }
  }
  // Only this function takes a driver out of the map, so `d` stays valid.
  if (d->thread.joinable()) d->thread.join();
  absl::MutexLock l(&mu_);
  drivers_.erase(name);
  work_cv_.SignalAll();
}

void Dispatcher::RebuildTriggers(const std::vector<PipelineInfo>& all) {
  absl::MutexLock l(&triggers_mu_);
  triggers_.clear();
  for (const auto& info : all) {
    for (const PFSInput* in : PfsInputs(info.spec().input())) {
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
  job.set_commit_set(commit_set);
  *job.mutable_created() = Now();
  job.set_seq(next_seq_[pipeline]++);
  batch->Put(JobKey(pipeline, job.seq()), job.SerializeAsString());
  batch->Put(JobIndexKey(job.id()), absl::StrCat(pipeline, kNul, Hex16(job.seq())));
  batch->Put(SetKey(commit_set, job.id()), "");
  return job;
}

absl::Status Dispatcher::BeforeFinish(const pfs::CommitInfo& commit, KvBatch* batch) {
  if (!commit.error().empty()) return absl::OkStatus();  // failed output: nothing downstream
  absl::MutexLock l(&triggers_mu_);
  auto it = triggers_.find({commit.repo(), commit.branch()});
  if (it == triggers_.end()) return absl::OkStatus();
  pfs::v1::CommitRef trigger;
  trigger.set_repo(commit.repo());
  trigger.set_id(commit.id());
  trigger.set_branch(commit.branch());
  for (const auto& p : it->second) NewJob(p, trigger, commit.commit_set(), batch);
  return absl::OkStatus();
}

void Dispatcher::AfterFinish(const pfs::CommitInfo& commit) {
  std::set<std::string> wake;
  {
    absl::MutexLock l(&triggers_mu_);
    auto it = triggers_.find({commit.repo(), commit.branch()});
    if (it == triggers_.end()) return;
    wake = it->second;
  }
  absl::MutexLock l(&mu_);
  for (const auto& p : wake) {
    auto d = drivers_.find(p);
    if (d != drivers_.end()) d->second->wake = true;
  }
}

absl::Status Dispatcher::TriggerOnHeads(const PipelineInfo& info) {
  const std::string& name = info.spec().pipeline().name();
  for (const PFSInput* in : PfsInputs(info.spec().input())) {
    auto b = pfs_->InspectBranch(in->repo(), in->branch());
    if (b.status().code() == absl::StatusCode::kNotFound) continue;
    RETURN_IF_ERROR(b.status());
    if (b->head().empty()) continue;
    pfs::v1::CommitRef trigger;
    trigger.set_repo(in->repo());
    trigger.set_id(b->head());
    trigger.set_branch(in->branch());
    // The job joins the head's commit set: what is derived from that commit
    // now includes this pipeline's output.
    ASSIGN_OR_RETURN(pfs::CommitInfo head, pfs_->InspectCommit(in->repo(), b->head()));
    KvBatch batch;
    {
      absl::MutexLock l(&triggers_mu_);
      JobInfo job = NewJob(name, trigger, head.commit_set(), &batch);
      RETURN_IF_ERROR(pfs_->kv()->Write(&batch, /*sync=*/true));
      TUSK_LOG(INFO) << "pipeline " << name << ": job " << job.id() << " on the current head of "
                     << in->repo() << "@" << in->branch();
    }
    absl::MutexLock l(&mu_);
    auto d = drivers_.find(name);
    if (d != drivers_.end()) d->second->wake = true;
    return absl::OkStatus();
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Pipelines

absl::StatusOr<PipelineInfo> Dispatcher::CreatePipeline(PipelineSpec spec, bool update,
                                                        bool reprocess) {
  std::string old_branch;
  if (update) {
    auto old = pipelines_->Inspect(spec.pipeline().name());
    if (old.ok()) old_branch = old->spec().output_branch();
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
  if (reprocess) {
    ASSIGN_OR_RETURN(auto rt, GetProto<PipelineRuntime>(pfs_->kv(), RtKey(name)));
    PipelineRuntime r = rt.value_or(PipelineRuntime());
    r.set_salt(r.salt() + 1);
    RETURN_IF_ERROR(pfs_->kv()->Put(RtKey(name), r.SerializeAsString(), /*sync=*/true));
  }
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
  RETURN_IF_ERROR(TriggerOnHeads(info));
  TUSK_LOG(INFO) << (update ? "updated" : "created") << " pipeline " << name << " (version "
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
  std::vector<JobInfo> jobs;
  RETURN_IF_ERROR(
      pfs_->kv()->ScanPrefix(JobPrefix(name), [&](absl::string_view k, absl::string_view v) {
        JobInfo j;
        if (j.ParseFromString(std::string(v))) jobs.push_back(std::move(j));
        batch.Delete(k);
        return true;
      }));
  for (const auto& j : jobs) {
    batch.Delete(JobIndexKey(j.id()));
    batch.Delete(SetKey(j.commit_set(), j.id()));
    RETURN_IF_ERROR(DeletePrefix(pfs_->kv(), JobDatumPrefix(j.id()), &batch));
    if (keep_repo && j.state() == pps::v1::JOB_RUNNING) {
      pfs::FinishOptions fo;
      fo.error = "pipeline deleted";
      auto st = pfs_->FinishCommit(name, j.id(), fo);
      if (!st.ok())
        TUSK_LOG(WARNING) << "closing output commit of job " << j.id() << ": " << st.status();
    }
  }
  for (const auto& prefix :
       {CurPrefix(name), FailPrefix(name), HashPrefix(name), OutPrefix(name), LogPrefix(name)}) {
    RETURN_IF_ERROR(DeletePrefix(pfs_->kv(), prefix, &batch));
  }
  batch.Delete(RtKey(name));
  RETURN_IF_ERROR(pfs_->kv()->Write(&batch, /*sync=*/true));
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
    bool finish = false, start = false;
    {
      absl::MutexLock l(&mu_);
      auto ready = [d] { return d->stop || d->wake; };
      mu_.AwaitWithTimeout(absl::Condition(&ready), backoff);
      if (d->stop) return;
      d->wake = false;
      if (d->active) {
        CheckLeases(d);
        ActiveJob* a = d->active.get();
        if (a->remaining > 0 && absl::Now() > a->deadline) {
          TUSK_LOG(WARNING) << "pipeline " << d->name << ": job " << a->job.id() << " timed out";
          a->job.set_reason("job timed out");
          for (auto& [key, w] : a->work) {
            if (w.info.state() == pps::v1::DATUM_SUCCESS || w.info.state() == pps::v1::DATUM_FAILED)
              continue;
            if (!w.lease.empty()) leases_.erase(w.lease);
            w.lease.clear();
            w.info.set_state(pps::v1::DATUM_FAILED);
            w.info.set_error("job timed out");
            a->touched[key] = w.info;
            a->job.set_datums_failed(a->job.datums_failed() + 1);
          }
          a->pending.clear();
          a->remaining = 0;
        }
        finish = a->remaining == 0;
      } else {
        start = d->info.state() != pps::v1::PAUSED;
      }
    }
    absl::Status st;
    if (finish) {
      st = FinishJob(d);
    } else if (start) {
      auto next = NextJob(d);
      st = next.status();
      if (st.ok() && *next) {
        JobInfo job = **next;
        st = StartJob(d, job);
        if (!st.ok() && st.code() != absl::StatusCode::kUnavailable) {
          st = FailJobEarly(d, job, std::string(st.message()));
        }
      }
    }
    if (!st.ok()) {
      TUSK_LOG(ERROR) << "pipeline " << d->name << ": " << st;
      backoff = std::min(backoff * 2, absl::Seconds(5));
    } else {
      backoff = absl::Milliseconds(200);
      absl::MutexLock l(&mu_);
      // More to do at once: a finished job may have a successor.
      if (finish || (start && d->active)) d->wake = true;
    }
  }
}

absl::StatusOr<std::optional<JobInfo>> Dispatcher::NextJob(Driver* d) {
  std::optional<JobInfo> found;
  absl::Status parse;
  uint64_t scan_from;
  {
    absl::MutexLock l(&mu_);
    scan_from = d->scan_from;
  }
  uint64_t first_open = scan_from;
  bool all_done = true;
  RETURN_IF_ERROR(pfs_->kv()->Scan(JobKey(d->name, scan_from), pfs::PrefixEnd(JobPrefix(d->name)),
                                   [&](absl::string_view, absl::string_view v) {
                                     JobInfo j;
                                     if (!j.ParseFromString(std::string(v))) {
                                       parse = absl::DataLossError("job record is corrupt");
                                       return false;
                                     }
                                     if (Terminal(j.state())) {
                                       if (all_done) first_open = j.seq() + 1;
                                       return true;
                                     }
                                     all_done = false;
                                     found = std::move(j);
                                     return false;
                                   }));
  RETURN_IF_ERROR(parse);
  absl::MutexLock l(&mu_);
  d->scan_from = first_open;
  return found;
}

absl::Status Dispatcher::PutJob(const JobInfo& job, KvBatch* batch) {
  batch->Put(JobKey(job.pipeline(), job.seq()), job.SerializeAsString());
  return absl::OkStatus();
}

absl::Status Dispatcher::FailJobEarly(Driver* d, JobInfo job, const std::string& reason) {
  TUSK_LOG(WARNING) << "pipeline " << d->name << ": job " << job.id() << " failed: " << reason;
  job.set_state(pps::v1::JOB_FAILURE);
  job.set_reason(reason);
  *job.mutable_finished() = Now();
  KvBatch batch;
  RETURN_IF_ERROR(PutJob(job, &batch));
  // Close its output commit if it was opened, marked failed.
  auto c = pfs_->InspectCommit(d->name, job.id());
  if (c.ok() && c->state() == pfs::v1::OPEN) {
    pfs::FinishOptions fo;
    fo.error = reason;
    fo.extra = &batch;
    RETURN_IF_ERROR(pfs_->FinishCommit(d->name, job.id(), fo).status());
  } else {
    RETURN_IF_ERROR(pfs_->kv()->Write(&batch, /*sync=*/true));
  }
  absl::MutexLock l(&mu_);
  d->active.reset();
  job_cv_.SignalAll();
  return absl::OkStatus();
}

absl::Status Dispatcher::StartJob(Driver* d, JobInfo job) {
  ASSIGN_OR_RETURN(PipelineInfo info, pipelines_->Inspect(d->name));
  auto a = std::make_unique<ActiveJob>();
  a->spec = info.spec();
  const PipelineSpec& spec = a->spec;
  if (job.state() == pps::v1::JOB_CREATED) job.set_pipeline_version(info.version());

  // Inputs: the trigger commit for its branch, the head of every other.
  std::vector<pfs::v1::CommitRef> provenance;
  job.clear_inputs();
  for (const PFSInput* in : PfsInputs(spec.input())) {
    if (a->inputs.count(in->name())) continue;  // a union may name an input twice
    pfs::v1::CommitRef ref;
    ref.set_repo(in->repo());
    ref.set_branch(in->branch());
    std::string id;
    if (job.trigger().repo() == in->repo() && job.trigger().branch() == in->branch()) {
      id = job.trigger().id();
    } else {
      auto b = pfs_->InspectBranch(in->repo(), in->branch());
      if (b.ok()) {
        id = b->head();
      } else if (b.status().code() != absl::StatusCode::kNotFound) {
        return b.status();
      }
    }
    ResolvedInput r;
    if (!id.empty()) {
      ASSIGN_OR_RETURN(pfs::CommitInfo c, pfs_->InspectCommit(in->repo(), id));
      ASSIGN_OR_RETURN(r.root, ParseRoot(c.root()));
      r.commit = id;
      ref.set_id(id);
      provenance.push_back(ref);
    }
    a->inputs[in->name()] = r;
    *job.add_inputs() = ref;
  }

  // The output commit: id = job id, so a restart finds it again.
  pfs::CommitOptions co;
  co.provenance = provenance;
  co.commit_set = job.commit_set();
  co.id = job.id();
  auto existing = pfs_->InspectCommit(d->name, job.id());
  if (existing.ok()) {
    // Resumed after a restart: the output commit is already open.
    if (existing->state() != pfs::v1::OPEN) {
      return absl::DataLossError(
          absl::StrCat("output commit ", job.id(), " is finished but job ", job.id(), " is not"));
    }
  } else if (existing.status().code() == absl::StatusCode::kNotFound) {
    RETURN_IF_ERROR(pfs_->StartCommit(d->name, spec.output_branch(), absl::StrCat("job ", job.id()),
                                      pfs::v1::PIPELINE, {}, co)
                        .status());
  } else {
    return existing.status();
  }
  job.mutable_output_commit()->set_repo(d->name);
  job.mutable_output_commit()->set_id(job.id());
  job.mutable_output_commit()->set_branch(spec.output_branch());

  // Which datums changed since the pipeline's previous job.
  ASSIGN_OR_RETURN(auto rt_opt, GetProto<PipelineRuntime>(pfs_->kv(), RtKey(d->name)));
  PipelineRuntime rt = rt_opt.value_or(PipelineRuntime());
  a->salt = rt.salt();
  job.set_salt(rt.salt());
  std::string input_spec = spec.input().SerializeAsString();
  bool incremental = spec.input().has_pfs() && rt.has_base() && rt.input_spec() == input_spec;
  pfs::NodeStore* nodes = pfs_->nodes();
  pfs::Kv* kv = pfs_->kv();
  uint64_t added = 0, removed = 0;

  auto touch = [&](const Datum& datum, const std::optional<DatumInfo>& cur) -> absl::Status {
    Hash h = DatumHash(a->salt, datum);
    bool cur_ok = cur && cur->state() == pps::v1::DATUM_SUCCESS;
    if (cur_ok && cur->id() == h.Hex()) return absl::OkStatus();  // unchanged
    a->old_roots[datum.key] = cur_ok ? cur->output_root() : "";
    if (!cur) added++;
    DatumInfo di;
    di.set_id(h.Hex());
    di.set_job(job.id());
    di.set_pipeline(d->name);
    di.set_key(datum.key);
    for (const auto& in : datum.inputs) *di.add_inputs() = in;
    ASSIGN_OR_RETURN(auto prior, GetProto<DatumInfo>(kv, JobDatumPrefix(job.id()) + datum.key));
    if (prior &&
        (prior->state() == pps::v1::DATUM_SUCCESS || prior->state() == pps::v1::DATUM_FAILED ||
         prior->state() == pps::v1::DATUM_SKIPPED)) {
      di = *prior;  // resumed: this datum was done before the restart
    } else {
      ASSIGN_OR_RETURN(auto done, GetProto<DatumInfo>(kv, HashPrefix(d->name) + h.Raw()));
      if (done) {
        di.set_state(pps::v1::DATUM_SKIPPED);
        di.set_output_root(done->output_root());
        di.set_output_files(done->output_files());
        di.set_output_bytes(done->output_bytes());
      } else {
        di.set_state(pps::v1::DATUM_PENDING);
        if (prior) di.set_attempts(prior->attempts());
      }
    }
    a->touched[datum.key] = di;
    return absl::OkStatus();
  };
  auto remove = [&](const DatumInfo& cur) {
    DatumInfo di = cur;
    di.set_job(job.id());
    di.set_state(pps::v1::DATUM_REMOVED);
    di.clear_error();
    a->touched[cur.key()] = di;
    a->old_roots[cur.key()] = cur.state() == pps::v1::DATUM_SUCCESS ? cur.output_root() : "";
    removed++;
  };

  uint64_t total = 0;
  if (incremental) {
    const PFSInput& in = spec.input().pfs();
    ASSIGN_OR_RETURN(Hash old_root,
                     ParseRoot(rt.base_roots().count(in.name()) ? rt.base_roots().at(in.name())
                                                                : std::string()));
    const ResolvedInput& now = a->inputs[in.name()];
    ASSIGN_OR_RETURN(std::set<std::string> keys, ChangedDatumKeys(nodes, in, old_root, now.root));
    RETURN_IF_ERROR(
        kv->ScanPrefix(FailPrefix(d->name), [&](absl::string_view k, absl::string_view) {
          keys.insert(std::string(k.substr(FailPrefix(d->name).size())));
          return true;
        }));
    for (const auto& key : keys) {
      ASSIGN_OR_RETURN(auto datum, LookupDatum(nodes, in, now, key));
      ASSIGN_OR_RETURN(auto cur, GetProto<DatumInfo>(kv, CurPrefix(d->name) + key));
      if (!datum) {
        if (cur) remove(*cur);
        continue;
      }
      RETURN_IF_ERROR(touch(*datum, cur));
    }
    total = rt.total() + added - removed;
  } else {
    ASSIGN_OR_RETURN(std::vector<Datum> all,
                     ::tusk::dispatcher::ListDatums(nodes, spec.input(), a->inputs));
    std::map<std::string, DatumInfo> current;
    absl::Status parse;
    RETURN_IF_ERROR(
        kv->ScanPrefix(CurPrefix(d->name), [&](absl::string_view k, absl::string_view v) {
          DatumInfo di;
          if (!di.ParseFromString(std::string(v))) {
            parse = absl::DataLossError("current datum record is corrupt");
            return false;
          }
          current[std::string(k.substr(CurPrefix(d->name).size()))] = std::move(di);
          return true;
        }));
    RETURN_IF_ERROR(parse);
    for (const Datum& datum : all) {
      auto it = current.find(datum.key);
      std::optional<DatumInfo> cur;
      if (it != current.end()) {
        cur = it->second;
        current.erase(it);
      }
      RETURN_IF_ERROR(touch(datum, cur));
    }
    for (const auto& [key, cur] : current) remove(cur);
    total = all.size();
  }

  // Persist what the job touched (kept on resume) and the job as running.
  job.set_state(pps::v1::JOB_RUNNING);
  if (!job.has_started()) *job.mutable_started() = Now();
  job.set_datums_total(total);
  job.set_datums_removed(removed);
  uint64_t processed = 0, failed = 0, to_run = 0;
  KvBatch batch;
  for (auto& [key, di] : a->touched) {
    if (di.state() == pps::v1::DATUM_PENDING || di.state() == pps::v1::DATUM_SUCCESS ||
        di.state() == pps::v1::DATUM_FAILED) {
      to_run++;
    }
    if (di.state() == pps::v1::DATUM_SUCCESS) processed++;
    if (di.state() == pps::v1::DATUM_FAILED) failed++;
    batch.Put(JobDatumPrefix(job.id()) + key, di.SerializeAsString());
    if (batch.ByteSize() > (4 << 20)) {
      RETURN_IF_ERROR(kv->Write(&batch, /*sync=*/false));
      batch.Clear();
    }
  }
  a->to_run = to_run;
  job.set_datums_processed(processed);
  job.set_datums_failed(failed);
  job.set_datums_skipped(total - to_run);
  RETURN_IF_ERROR(PutJob(job, &batch));
  RETURN_IF_ERROR(kv->Write(&batch, /*sync=*/true));
  if (spec.has_job_timeout() && TimeUtil::DurationToNanoseconds(spec.job_timeout()) > 0) {
    a->deadline = absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(job.started())) +
                  absl::Nanoseconds(TimeUtil::DurationToNanoseconds(spec.job_timeout()));
  }
  a->job = job;
  for (const auto& [key, di] : a->touched) {
    if (di.state() != pps::v1::DATUM_PENDING) continue;
    Work w;
    w.info = di;
    a->work[key] = std::move(w);
    a->pending.push_back(key);
  }
  a->remaining = a->pending.size();
  TUSK_LOG(INFO) << "pipeline " << d->name << ": job " << job.id() << " started: " << total
                 << " datums, " << a->remaining << " to run, " << removed << " removed"
                 << (incremental ? " (incremental)" : "");
  absl::MutexLock l(&mu_);
  d->active = std::move(a);
  d->wake = true;
  work_cv_.SignalAll();
  job_cv_.SignalAll();
  return absl::OkStatus();
}

void Dispatcher::CheckLeases(Driver* d) {
  // Walks the leases (a few per runner), not the job's datums: the driver
  // wakes on every finished datum, and a job may have millions of them.
  ActiveJob* a = d->active.get();
  absl::Time now = absl::Now();
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second.first != d->name) {
      ++it;
      continue;
    }
    auto w = a->work.find(it->second.second);
    if (w == a->work.end() || w->second.expiry > now) {
      ++it;
      continue;
    }
    TUSK_LOG(WARNING) << "pipeline " << d->name << ": lease of datum "
                      << w->second.info.id().substr(0, 12) << " on runner " << w->second.runner
                      << " expired; leasing it again";
    it = leases_.erase(it);
    w->second.lease.clear();
    w->second.info.set_state(pps::v1::DATUM_PENDING);
    a->pending.push_front(w->first);
    work_cv_.SignalAll();
  }
}

absl::Status Dispatcher::FinishJob(Driver* d) {
  // Snapshot the outcome; nothing changes it now (no work is outstanding).
  JobInfo job;
  std::map<std::string, DatumInfo> touched;
  std::map<std::string, std::string> old_roots;
  {
    absl::MutexLock l(&mu_);
    ActiveJob* a = d->active.get();
    job = a->job;
    for (auto& [key, w] : a->work) a->touched[key] = w.info;
    touched = a->touched;
    old_roots = a->old_roots;
  }
  const std::string& p = d->name;
  pfs::Kv* kv = pfs_->kv();
  pfs::NodeStore* nodes = pfs_->nodes();
  uint64_t processed = 0, failed = 0;
  for (const auto& [key, di] : touched) {
    if (di.state() == pps::v1::DATUM_SUCCESS) processed++;
    if (di.state() == pps::v1::DATUM_FAILED) failed++;
  }
  job.set_datums_processed(processed);
  job.set_datums_failed(failed);
  job.set_datums_skipped(job.datums_total() - processed - failed);

  // Contributions that change, by output path: datum key -> chunks (nullopt: gone).
  std::map<std::string, std::map<std::string, std::optional<pfs::ChunkList>>> delta;
  KvBatch batch;
  auto walk = [&](const std::string& root_hex, const std::string& key, bool add) -> absl::Status {
    ASSIGN_OR_RETURN(Hash root, ParseRoot(root_hex));
    if (root.IsZero()) return absl::OkStatus();
    return pfs::WalkFiles(nodes, root, "/", [&](const std::string& path, const pfs::Entry& e) {
      if (!add) {
        delta[path].emplace(key, std::nullopt);  // an add of the same key wins
        return absl::OkStatus();
      }
      ASSIGN_OR_RETURN(pfs::ChunkList chunks, nodes->GetChunks(e));
      delta[path][key] = std::move(chunks);
      return absl::OkStatus();
    });
  };
  for (const auto& [key, di] : touched) {
    const std::string& old_root = old_roots[key];
    bool ok = di.state() == pps::v1::DATUM_SUCCESS || di.state() == pps::v1::DATUM_SKIPPED;
    std::string new_root = ok ? di.output_root() : "";
    if (old_root != new_root) {
      RETURN_IF_ERROR(walk(new_root, key, true));
      RETURN_IF_ERROR(walk(old_root, key, false));
    }
    if (di.state() == pps::v1::DATUM_REMOVED) {
      batch.Delete(CurPrefix(p) + key);
      batch.Delete(FailPrefix(p) + key);
      continue;
    }
    DatumInfo c = di;
    c.set_state(ok ? pps::v1::DATUM_SUCCESS : pps::v1::DATUM_FAILED);
    c.set_output_root(new_root);
    batch.Put(CurPrefix(p) + key, c.SerializeAsString());
    if (ok) {
      batch.Delete(FailPrefix(p) + key);
    } else {
      batch.Put(FailPrefix(p) + key, "");
    }
  }

  // New content of each affected path: all its contributions in key order.
  std::vector<std::string> deletes;
  std::vector<std::pair<std::string, std::vector<pfs::ChunkRef>>> puts;
  for (auto& [path, changes] : delta) {
    std::map<std::string, pfs::ChunkList> contributions;
    std::string prefix = OutPathPrefix(p, path);
    absl::Status parse;
    RETURN_IF_ERROR(kv->ScanPrefix(prefix, [&](absl::string_view k, absl::string_view v) {
      pfs::ChunkList list;
      if (!list.ParseFromString(std::string(v))) {
        parse = absl::DataLossError(absl::StrCat("output record of ", path, " is corrupt"));
        return false;
      }
      contributions[std::string(k.substr(prefix.size()))] = std::move(list);
      return true;
    }));
    RETURN_IF_ERROR(parse);
    for (auto& [key, chunks] : changes) {
      if (chunks) {
        batch.Put(prefix + key, chunks->SerializeAsString());
        contributions[key] = std::move(*chunks);
      } else {
        batch.Delete(prefix + key);
        contributions.erase(key);
      }
    }
    if (contributions.empty()) {
      deletes.push_back(path);
      continue;
    }
    std::vector<pfs::ChunkRef> all;
    for (const auto& [key, list] : contributions) {
      for (const auto& c : list.chunks()) all.push_back(c);
    }
    puts.emplace_back(path, std::move(all));
  }
  std::string merge_error;
  {
    ASSIGN_OR_RETURN(auto up, pfs_->BeginUpload(p, job.id()));
    for (const auto& path : deletes) {
      absl::Status s = up->Delete(path);
      if (!s.ok() && s.code() != absl::StatusCode::kNotFound) {
        merge_error = std::string(s.message());
        break;
      }
    }
    for (size_t i = 0; merge_error.empty() && i < puts.size(); ++i) {
      absl::Status s = up->PutChunks(puts[i].first, puts[i].second);
      if (!s.ok()) merge_error = absl::StrCat("merging the datums' outputs: ", s.message());
    }
    if (merge_error.empty()) RETURN_IF_ERROR(up->Close().status());
  }

  std::string error;
  if (!merge_error.empty()) {
    // Keep the pipeline's datum state as it was; only the job fails.
    batch.Clear();
    error = merge_error;
  } else {
    PipelineRuntime rt;
    ASSIGN_OR_RETURN(auto rt_opt, GetProto<PipelineRuntime>(kv, RtKey(p)));
    if (rt_opt) rt = *rt_opt;
    rt.set_has_base(true);
    rt.clear_base_roots();
    {
      absl::MutexLock l(&mu_);
      for (const auto& [name, r] : d->active->inputs) {
        (*rt.mutable_base_roots())[name] = r.root.IsZero() ? "" : r.root.Hex();
      }
      rt.set_input_spec(d->active->spec.input().SerializeAsString());
    }
    rt.set_total(job.datums_total());
    batch.Put(RtKey(p), rt.SerializeAsString());
    if (failed > 0) {
      error = job.reason().empty()
                  ? absl::StrCat(failed, " datum", failed == 1 ? "" : "s", " failed")
                  : job.reason();
    }
  }
  job.set_state(error.empty() ? pps::v1::JOB_SUCCESS : pps::v1::JOB_FAILURE);
  job.set_reason(error);
  *job.mutable_finished() = Now();
  for (const auto& [key, di] : touched) {
    if (di.state() == pps::v1::DATUM_SUCCESS || di.state() == pps::v1::DATUM_FAILED) {
      batch.Put(JobDatumPrefix(job.id()) + key, di.SerializeAsString());
    }
  }
  RETURN_IF_ERROR(PutJob(job, &batch));
  pfs::FinishOptions fo;
  fo.error = error;
  fo.extra = &batch;
  // After a failed merge nothing was staged: the commit keeps its parent's tree.
  RETURN_IF_ERROR(pfs_->FinishCommit(p, job.id(), fo).status());
  TUSK_LOG(INFO) << "pipeline " << p << ": job " << job.id() << " "
                 << (error.empty() ? "succeeded" : "failed: " + error) << " (" << processed
                 << " processed, " << job.datums_skipped() << " skipped, " << failed << " failed, "
                 << job.datums_removed() << " removed)";
  absl::MutexLock l(&mu_);
  d->active.reset();
  d->scan_from = job.seq() + 1;
  job_cv_.SignalAll();
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Runner protocol

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
    ActiveJob* a = d->active.get();
    while (a && !d->stop && !a->pending.empty()) {
      std::string key = a->pending.front();
      a->pending.pop_front();
      auto w = a->work.find(key);
      if (w == a->work.end() || w->second.info.state() != pps::v1::DATUM_PENDING) continue;
      Work& work = w->second;
      work.lease = pfs::NewCommitId();
      work.runner = req.runner();
      work.expiry = absl::Now() + options_.lease_ttl;
      work.info.set_state(pps::v1::DATUM_RUNNING);
      *work.info.mutable_started() = Now();
      leases_[work.lease] = {d->name, key};
      pps::v1::LeaseResponse resp;
      resp.set_lease(work.lease);
      resp.set_job(a->job.id());
      *resp.mutable_datum() = work.info;
      *resp.mutable_transform() = a->spec.transform();
      if (a->spec.has_datum_timeout()) *resp.mutable_datum_timeout() = a->spec.datum_timeout();
      resp.set_heartbeat_ms(options_.heartbeat_ms);
      *resp.mutable_output_commit() = a->job.output_commit();
      return resp;
    }
    if (work_cv_.WaitWithDeadline(&mu_, deadline)) return pps::v1::LeaseResponse();
  }
}

pps::v1::HeartbeatResponse Dispatcher::Heartbeat(const pps::v1::HeartbeatRequest& req) {
  pps::v1::HeartbeatResponse resp;
  absl::MutexLock l(&mu_);
  for (const auto& lease : req.leases()) {
    auto it = leases_.find(lease);
    bool held = false;
    if (it != leases_.end()) {
      auto d = drivers_.find(it->second.first);
      if (d != drivers_.end() && d->second->active) {
        auto w = d->second->active->work.find(it->second.second);
        if (w != d->second->active->work.end() && w->second.lease == lease &&
            w->second.runner == req.runner()) {
          w->second.expiry = absl::Now() + options_.lease_ttl;
          held = true;
        }
      }
    }
    if (!held) resp.add_lost(lease);
  }
  return resp;
}

absl::Status Dispatcher::CheckLease(const std::string& lease) {
  absl::MutexLock l(&mu_);
  if (!leases_.count(lease)) {
    return LeaseNotHeld(lease);
  }
  return absl::OkStatus();
}

absl::Status Dispatcher::CompleteDatum(const std::string& lease, const DatumResult& result,
                                       KvBatch* blobs) {
  const bool success = result.success;
  const pfs::DirInfo& output = result.output;
  absl::MutexLock l(&mu_);
  auto it = leases_.find(lease);
  if (it == leases_.end()) {
    return LeaseNotHeld(lease);
  }
  auto [pipeline, key] = it->second;
  Driver* d = drivers_[pipeline].get();
  ActiveJob* a = d->active.get();
  Work& w = a->work[key];
  DatumInfo info = w.info;
  info.set_attempts(info.attempts() + 1);
  *info.mutable_finished() = Now();
  *info.mutable_stats() = result.stats;
  LogMessage msg;
  msg.set_pipeline(pipeline);
  msg.set_job(a->job.id());
  msg.set_datum(info.id());
  msg.set_attempt(info.attempts());
  msg.set_runner(w.runner);
  *msg.mutable_time() = Now();
  msg.set_message(result.log);
  msg.set_truncated(result.log_truncated);
  blobs->Put(absl::StrCat(LogPrefix(pipeline), a->job.id(), kNul, info.id(), kNul,
                          absl::StrFormat("%08x", info.attempts())),
             msg.SerializeAsString());
  bool requeue = false;
  if (success) {
    info.set_state(pps::v1::DATUM_SUCCESS);
    info.clear_error();
    info.set_output_root(output.hash.IsZero() ? "" : output.hash.Hex());
    info.set_output_files(output.file_count);
    info.set_output_bytes(output.size);
    Hash h;
    auto parsed = Hash::FromHex(info.id());
    if (parsed.ok()) h = *parsed;
    blobs->Put(HashPrefix(pipeline) + h.Raw(), info.SerializeAsString());
  } else {
    info.set_error(result.error);
    if (static_cast<int64_t>(info.attempts()) >= std::max<int64_t>(1, a->spec.datum_tries())) {
      info.set_state(pps::v1::DATUM_FAILED);
    } else {
      info.set_state(pps::v1::DATUM_PENDING);
      requeue = true;
    }
  }
  blobs->Put(JobDatumPrefix(a->job.id()) + key, info.SerializeAsString());
  RETURN_IF_ERROR(pfs_->kv()->Write(blobs, /*sync=*/false));
  leases_.erase(it);
  w.lease.clear();
  w.info = info;
  if (requeue) {
    TUSK_LOG(INFO) << "pipeline " << pipeline << ": datum " << info.id().substr(0, 12)
                   << " failed (attempt " << info.attempts() << "): " << result.error
                   << "; retrying";
    a->pending.push_back(key);
    work_cv_.SignalAll();
  } else {
    a->remaining--;
    if (success) {
      a->job.set_datums_processed(a->job.datums_processed() + 1);
      AddStats(result.stats, a->job.mutable_stats());
    } else {
      TUSK_LOG(WARNING) << "pipeline " << pipeline << ": datum " << info.id().substr(0, 12)
                        << " failed " << info.attempts() << " times: " << result.error;
      a->job.set_datums_failed(a->job.datums_failed() + 1);
    }
  }
  d->wake = true;
  job_cv_.SignalAll();
  return absl::OkStatus();
}

void Dispatcher::ReleaseRunner(const std::string& runner) {
  absl::MutexLock l(&mu_);
  for (auto it = leases_.begin(); it != leases_.end();) {
    auto d = drivers_.find(it->second.first);
    if (d == drivers_.end() || !d->second->active) {
      ++it;
      continue;
    }
    ActiveJob* a = d->second->active.get();
    auto w = a->work.find(it->second.second);
    if (w == a->work.end() || w->second.runner != runner) {
      ++it;
      continue;
    }
    TUSK_LOG(WARNING) << "runner " << runner << " ended while running datum "
                      << w->second.info.id().substr(0, 12) << "; leasing it again";
    w->second.lease.clear();
    w->second.info.set_state(pps::v1::DATUM_PENDING);
    a->pending.push_front(w->first);
    it = leases_.erase(it);
    work_cv_.SignalAll();
  }
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

// ---------------------------------------------------------------------------
// Inspection

absl::StatusOr<std::optional<JobInfo>> Dispatcher::FindJob(const std::string& pipeline,
                                                           const std::string& job) {
  if (job.empty()) return absl::InvalidArgumentError("job id is empty");
  std::vector<std::string> matches;
  RETURN_IF_ERROR(
      pfs_->kv()->ScanPrefix(JobIndexKey(job), [&](absl::string_view, absl::string_view v) {
        if (absl::StartsWith(v, pipeline + kNul) || pipeline.empty()) matches.emplace_back(v);
        return matches.size() < 2;
      }));
  if (matches.empty()) return std::optional<JobInfo>();
  if (matches.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat("job id prefix '", job, "' is ambiguous"));
  }
  size_t nul = matches[0].find('\0');
  uint64_t seq = 0;
  if (nul == std::string::npos || !absl::SimpleHexAtoi(matches[0].substr(nul + 1), &seq)) {
    return absl::DataLossError(absl::StrCat("job index record of ", job, " is corrupt"));
  }
  std::string p = matches[0].substr(0, nul);
  ASSIGN_OR_RETURN(auto j, GetProto<JobInfo>(pfs_->kv(), JobKey(p, seq)));
  if (!j) return j;
  // A running job's live counts are in memory.
  absl::MutexLock l(&mu_);
  auto d = drivers_.find(p);
  if (d != drivers_.end() && d->second->active && d->second->active->job.id() == j->id()) {
    return std::optional<JobInfo>(d->second->active->job);
  }
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
    RETURN_IF_ERROR(
        pfs_->kv()->ScanPrefix(JobPrefix(name), [&](absl::string_view, absl::string_view v) {
          JobInfo j;
          if (j.ParseFromString(std::string(v))) jobs.push_back(std::move(j));
          return true;
        }));
  }
  {
    absl::MutexLock l(&mu_);
    for (auto& j : jobs) {
      auto d = drivers_.find(j.pipeline());
      if (d != drivers_.end() && d->second->active && d->second->active->job.id() == j.id()) {
        j = d->second->active->job;
      }
    }
  }
  // Newest first.
  std::sort(jobs.begin(), jobs.end(), [](const JobInfo& a, const JobInfo& b) {
    return TimeUtil::TimestampToNanoseconds(a.created()) >
           TimeUtil::TimestampToNanoseconds(b.created());
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
  if (!j)
    return absl::NotFoundError(absl::StrCat("job ", job, " of pipeline ", pipeline, " not found"));
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
        if (closing_) return true;
        auto d = drivers_.find(j.pipeline());
        return d == drivers_.end() || !d->second->active || d->second->active->job.id() != j.id();
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
  RETURN_IF_ERROR(
      pfs_->kv()->ScanPrefix(JobDatumPrefix(j.id()), [&](absl::string_view, absl::string_view v) {
        DatumInfo di;
        if (di.ParseFromString(std::string(v))) out.push_back(std::move(di));
        return true;
      }));
  {
    absl::MutexLock l(&mu_);
    auto d = drivers_.find(j.pipeline());
    if (d != drivers_.end() && d->second->active && d->second->active->job.id() == j.id()) {
      for (auto& di : out) {
        auto w = d->second->active->work.find(di.key());
        if (w != d->second->active->work.end()) di = w->second.info;
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
  std::string prefix = LogPrefix(pipeline);
  if (!job.empty()) {
    ASSIGN_OR_RETURN(JobInfo j, InspectJob(pipeline, job));
    prefix += j.id() + kNul;
  }
  std::string after;  // last key sent
  while (true) {
    std::vector<LogMessage> batch;
    std::string begin = after.empty() ? prefix : after + std::string(1, '\0');
    RETURN_IF_ERROR(pfs_->kv()->Scan(
        begin, pfs::PrefixEnd(prefix), [&](absl::string_view k, absl::string_view v) {
          after = std::string(k);
          LogMessage m;
          if (m.ParseFromString(std::string(v)) && absl::StartsWith(m.datum(), datum)) {
            batch.push_back(std::move(m));
          }
          return true;
        }));
    for (const auto& m : batch) RETURN_IF_ERROR(fn(m));
    if (!follow || cancelled()) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(300));
  }
}

absl::StatusOr<bool> Dispatcher::CommitSetJobsDone(const std::string& commit_set) {
  std::vector<std::string> ids;
  std::string prefix = absl::StrCat("Jk", commit_set, kNul);
  RETURN_IF_ERROR(pfs_->kv()->ScanPrefix(prefix, [&](absl::string_view k, absl::string_view) {
    ids.emplace_back(k.substr(prefix.size()));
    return true;
  }));
  for (const auto& id : ids) {
    ASSIGN_OR_RETURN(auto j, FindJob("", id));
    if (j && !Terminal(j->state())) return false;
  }
  return true;
}

}  // namespace tusk::dispatcher
