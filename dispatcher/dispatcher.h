#pragma once

// Dispatcher: turns input commits into jobs, jobs into datums, and datums
// into leases for runners; merges the datums' outputs into the job's output
// commit.
//
// - Triggers. The dispatcher is the Pfs's CommitHook: a finished commit on a
//   pipeline's input branch writes a job record (JOB_CREATED) in the same
//   atomic write that finishes the commit, so no trigger is lost in a crash.
//   A pipeline gets one job per commit set: a commit whose set already has
//   an unfinished job of the pipeline wakes that job instead.
// - Jobs of one pipeline run one at a time, in the order they were created,
//   each in a driver thread of its own pipeline. A job resolves its inputs
//   within its commit set (dispatcher_inputs.cc: it waits for the commits
//   of its set still being computed upstream; a failed input commit makes it
//   JOB_UNRUNNABLE, with a failed output commit that keeps its parent's
//   files, so nothing downstream runs on a failure), opens
//   the output commit (id = job id, provenance = the input commits, commit
//   set = the trigger's), and works out which datums changed since the
//   pipeline's previous job: from the input trees' difference when the input
//   is a single pfs input (work proportional to what changed), otherwise by
//   listing every datum and comparing hashes. A changed datum whose hash
//   succeeded before is skipped and its output reused; the rest are leased.
// - Leases. A runner leases one datum at a time and renews the lease with
//   heartbeats; a lease not renewed within lease_ttl, or held by a runner
//   that died (ReleaseRunner), goes back to the queue. A datum that fails
//   datum_tries times is failed; the job fails once every datum is done.
// - Merge. The output commit's tree is the previous one with the changed
//   datums' contributions replaced: per output path, the contributions of
//   every datum in datum-key order, concatenated. The index of contributions,
//   the pipeline's current datums, and the job's final state are written in
//   the same atomic write that finishes the output commit.
// - Restart. Jobs and datum results are in the index; a job that was running
//   resumes with the datums that had not finished.
//
// Its records are in the index's kJobSpace (JobStore; the layout is in
// pfs/keys.h). The parts: JobStore (records), PlanJob (which datums a job
// runs), DatumQueue (leases), PlanMerge/ApplyMerge (the output commit);
// this class drives them, one driver thread per pipeline.
//
// Thread safety: thread-safe. Locks: mu_ guards in-memory job state and is
// never held while calling into Pfs; triggers_mu_ guards job sequence numbers
// and the trigger index and is taken inside Pfs's commit critical section.

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "dispatcher/datum_queue.h"
#include "dispatcher/datums.h"
#include "dispatcher/egress.h"
#include "dispatcher/job_planner.h"
#include "dispatcher/job_store.h"
#include "dispatcher/pipelines.h"
#include "dispatcher/runner_backend.h"
#include "pfs/pfs.h"
#include "proto/pps.pb.h"

namespace tusk::dispatcher {

using pps::v1::DatumInfo;
using pps::v1::JobEgress;
using pps::v1::JobInfo;
using pps::v1::LogMessage;

struct DispatcherOptions {
  absl::Duration lease_ttl = absl::Seconds(20);
  uint32_t heartbeat_ms = 2000;
  // Egress (dispatcher_egress.cc): the writer into an s3:// URL (unset: a
  // pipeline with egress fails its jobs saying so), the attempts per job,
  // and the wait after the first failed attempt (doubling, up to 30 s).
  EgressOpener egress;
  int egress_attempts = 3;
  absl::Duration egress_backoff = absl::Seconds(1);
  // Ended jobs kept per pipeline (0: all). Older ones go with their datums
  // and logs, and so do the outputs of datum hashes they made that no
  // current datum has, which Gc can then reclaim.
  uint64_t job_history = 1000;
};

// What a runner reports for one datum attempt.
struct DatumResult {
  bool success = false;
  bool recovered = false;  // failed, but transform.err_cmd succeeded
  std::string error;       // why it failed
  std::string log;         // the attempt's bounded stdout and stderr
  bool log_truncated = false;
  pfs::DirInfo output;  // for a success: the tree of its /pfs/out
  pps::v1::ProcessStats stats;
};

class Dispatcher;

// Receives one datum attempt's /pfs/out as a tree (a runner's FinishDatum
// stream), then completes the attempt. Not thread-safe; one per stream.
class DatumOutput {
 public:
  absl::Status BeginFile(absl::string_view path) { return upload_->BeginFile(path, false); }
  absl::Status Write(absl::string_view data) { return upload_->Write(data); }
  absl::Status EndFile(uint64_t size) { return upload_->EndFile(size); }
  uint64_t files() const { return upload_->files(); }
  uint64_t bytes() const { return upload_->bytes(); }
  // Completes the attempt with `result` (its output: the tree of what was
  // written, if result.success and `upload_error` is OK; an upload error
  // fails the attempt), and the upload's size and time in its stats.
  // FailedPrecondition if the lease is no longer held.
  absl::Status Finish(DatumResult result, const absl::Status& upload_error);

 private:
  friend class Dispatcher;
  DatumOutput(Dispatcher* dispatcher, std::string lease, std::unique_ptr<pfs::Upload> upload)
      : dispatcher_(dispatcher),
        lease_(std::move(lease)),
        upload_(std::move(upload)),
        start_(absl::Now()) {}
  Dispatcher* const dispatcher_;
  const std::string lease_;
  std::unique_ptr<pfs::Upload> upload_;
  const absl::Time start_;
};

class Dispatcher : public pfs::CommitHook {
 public:
  // Loads pipelines and unfinished jobs, installs itself as `pfs`'s commit
  // hook and starts a driver per pipeline. Not owned: pfs, pipelines.
  static absl::StatusOr<std::unique_ptr<Dispatcher>> Open(pfs::Pfs* pfs, Pipelines* pipelines,
                                                          const DispatcherOptions& options);
  // Stops the drivers (jobs in flight stay in the index and resume on Open).
  ~Dispatcher() override;
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // pfs::CommitHook
  absl::Status BeforeFinish(const pfs::CommitInfo& commit, pfs::KvBatch* batch) override;
  void AfterFinish(const pfs::CommitInfo& commit) override;

  // Pipelines (through Pipelines, plus jobs): creating or updating a
  // pipeline creates a job on the current input heads, in the commit set of
  // the head it starts from; `reprocess` makes
  // every datum run again.
  absl::StatusOr<PipelineInfo> CreatePipeline(PipelineSpec spec, bool update, bool reprocess);
  absl::Status DeletePipeline(const std::string& name, bool keep_repo);
  absl::StatusOr<PipelineInfo> SetPipelineState(const std::string& name,
                                                pps::v1::PipelineState state);

  // Job control (dispatcher_control.cc).
  // Kills a job that has not ended (JOB_KILLED with `reason`): its driver
  // ends it, its runners lose their leases. Returns the job once ended (or
  // as it is after 30 s). FailedPrecondition if it had ended.
  absl::StatusOr<JobInfo> StopJob(const std::string& pipeline, const std::string& job,
                                  const std::string& reason);
  // Deletes the records of a job that ended (FailedPrecondition if not):
  // the job, its datums, its logs. Its output commit stays.
  absl::Status DeleteJob(const std::string& pipeline, const std::string& job);
  // Runs failed datums of a job again (id prefixes; none: all of them): in
  // the job if it runs, otherwise in a new job over the current inputs.
  // Returns that job. InvalidArgument if a named datum did not fail.
  absl::StatusOr<JobInfo> RestartDatums(const std::string& pipeline, const std::string& job,
                                        const std::vector<std::string>& datums);
  // A new job over the pipeline's current inputs, in a new commit set;
  // `reprocess`: every datum runs. FailedPrecondition if no input has a commit.
  absl::StatusOr<JobInfo> RerunPipeline(const std::string& name, bool reprocess);

  // Runner protocol.
  absl::StatusOr<pps::v1::LeaseResponse> Lease(const pps::v1::LeaseRequest& req);
  pps::v1::HeartbeatResponse Heartbeat(const pps::v1::HeartbeatRequest& req);
  // FailedPrecondition if `lease` is not held (expired, or its job ended).
  absl::Status CheckLease(const std::string& lease);
  // The pipeline whose datum `lease` holds (FailedPrecondition as CheckLease).
  absl::StatusOr<std::string> LeasePipeline(const std::string& lease);
  // Receives the output of the attempt under `lease` (FailedPrecondition if
  // it is not held).
  absl::StatusOr<std::unique_ptr<DatumOutput>> BeginDatumOutput(const std::string& lease);
  // Records a datum attempt's result. For a success, `blobs` holds the
  // records of the output tree's new blobs (written together with the result).
  absl::Status CompleteDatum(const std::string& lease, const DatumResult& result,
                             pfs::KvBatch* blobs);
  // A runner process ended: its leases go back to the queue at once. With
  // `reason` (OOMKilled: ...), each of its datums counts a failed attempt
  // with that error instead.
  void ReleaseRunner(const std::string& runner, const std::string& reason = "");

  // Inspection.
  absl::Status ListJobs(const std::string& pipeline, uint64_t limit,
                        const std::function<absl::Status(const JobInfo&)>& fn);
  absl::StatusOr<JobInfo> InspectJob(const std::string& pipeline, const std::string& job);
  // Calls fn with the job now and on progress, until it is done, fn fails,
  // `cancelled` returns true (checked at least twice a second: Cancelled) or
  // the dispatcher closes (Unavailable).
  absl::Status WaitJob(const std::string& pipeline, const std::string& job,
                       const std::function<bool()>& cancelled,
                       const std::function<absl::Status(const JobInfo&)>& fn);
  absl::Status ListDatums(const std::string& pipeline, const std::string& job,
                          const std::function<absl::Status(const DatumInfo&)>& fn);
  absl::StatusOr<DatumInfo> InspectDatum(const std::string& pipeline, const std::string& job,
                                         const std::string& datum);
  // Logs of attempts, oldest first, filtered by job and datum (id prefixes).
  // With `follow`, keeps sending new ones until `cancelled` returns true.
  absl::Status GetLogs(const std::string& pipeline, const std::string& job,
                       const std::string& datum, bool follow,
                       const std::function<bool()>& cancelled,
                       const std::function<absl::Status(const LogMessage&)>& fn);
  // Whether every job of the commit set is done.
  absl::StatusOr<bool> CommitSetJobsDone(const std::string& commit_set);
  // A count that moves whenever a commit finishes or a job ends.
  uint64_t Changes();
  // Waits until Changes() passes `seen`, or `deadline`.
  void AwaitChange(uint64_t seen, absl::Time deadline);

  // Guards for users' writes (the API's, before any change): FailedPrecondition
  // naming the pipeline if `repo@branch` is a pipeline's output branch (what
  // is there is computed, and the next job would overwrite a user's files),
  // or if deleting `repo` would break a pipeline (it reads it, or it is its
  // output). The API's --force skips them.
  absl::Status CheckUserWrite(const std::string& repo, const std::string& branch);
  absl::Status CheckRepoDelete(const std::string& repo);

  // Pipelines that want runners, with how many (running ones: parallelism).
  std::map<std::string, int> RunnerDemand();
  // Every pipeline with its version, spec and work (for runner backends).
  std::vector<RunnerWant> RunnerWants();
  // How `pipeline`'s runners contain its command, as the last lease request
  // said; empty if none has asked since tuskd started.
  std::string RunnerSandbox(const std::string& pipeline);

 private:
  struct ActiveJob;
  struct Driver;

  Dispatcher(pfs::Pfs* pfs, Pipelines* pipelines, const DispatcherOptions& options);

  absl::Status Load();
  // After an index rebuild, a job over the pipeline's input heads (the jobs
  // made before it were not durable).
  absl::Status CatchUpAfterRebuild(const PipelineInfo& info);
  void StartDriver(const PipelineInfo& info) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StopDriver(const std::string& name);
  void DriverLoop(Driver* d);
  // One turn of a driver: finish its job, or start the next one.
  absl::Status DriverStep(Driver* d, bool* more);
  // Index of which pipelines read which branch.
  void RebuildTriggers(const std::vector<PipelineInfo>& all);
  // Writes a new JOB_CREATED job of `pipeline` to `batch`; an empty
  // `commit_set` starts a new one (the job's id).
  JobInfo NewJob(const std::string& pipeline, const pfs::v1::CommitRef& trigger,
                 const std::string& commit_set, pfs::KvBatch* batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(triggers_mu_);
  // Creates a job on the pipeline's current input heads: in the commit set
  // of the head it starts from (create), or in a new one (update, rerun).
  // nullopt if no input has a commit.
  absl::StatusOr<std::optional<JobInfo>> TriggerOnHeads(const PipelineInfo& info,
                                                        bool new_commit_set);
  // A new salt: every datum of the pipeline's next job runs.
  absl::Status Reprocess(const std::string& pipeline);
  // Ends the jobs that StopJob marked (driver thread).
  absl::Status ProcessKills(Driver* d);
  // Deletes the oldest ended jobs beyond options_.job_history (driver
  // thread, after job `newest` ends; a failure is logged and tried next time).
  void PruneJobs(const std::string& pipeline, uint64_t newest);
  // Cron inputs (dispatcher_cron.cc): the thread that ticks, and one tick
  // of `cron` if one is due at `now`.
  void CronLoop();
  absl::Status Tick(const PipelineInfo& info, const pps::v1::CronInput& cron, absl::Time now);
  // Moves `in`'s branch to its trigger branch's head if the trigger's
  // conditions hold, and makes the jobs that reads it (cron thread).
  struct TriggerState {
    absl::Time last_move = absl::InfinitePast();  // for cron_spec
  };
  absl::Status FollowTrigger(const PFSInput& in, absl::Time now, TriggerState* ts);
  std::map<std::string, TriggerState> trigger_state_;  // cron thread only
  void Wake(const std::string& pipeline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Changed();

  // Driver steps (driver thread; mu_ not held unless noted).
  absl::StatusOr<std::optional<JobInfo>> NextJob(Driver* d);
  absl::Status StartJob(Driver* d, JobInfo job);
  // Which commits a job reads (dispatcher_inputs.cc has the rules).
  struct Resolution {
    std::vector<pfs::v1::CommitRef> provenance;
    std::string waiting;  // not empty: an input's commit in the job's set is still to come
    std::string blocked;  // not empty: an input commit failed; why the job cannot run
  };
  // Resolves the job's inputs (into `a` and job->inputs) unless it waits.
  absl::StatusOr<Resolution> ResolveInputs(JobInfo* job, ActiveJob* a);
  // Writes to `batch` a job in `commit_set` for each pipeline that reads the
  // trigger's branch and has no unfinished job in the set yet; returns the
  // pipelines that read the branch (to wake).
  absl::StatusOr<std::set<std::string>> TriggerJobs(const pfs::v1::CommitRef& trigger,
                                                    const std::string& commit_set,
                                                    pfs::KvBatch* batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(triggers_mu_);
  // Opens the job's output commit, or finds it open after a restart.
  absl::Status OpenOutputCommit(const std::string& pipeline, const JobInfo& job,
                                const PipelineSpec& spec,
                                const std::vector<pfs::v1::CommitRef>& provenance);
  // Returns the job's sequence number.
  absl::StatusOr<uint64_t> FinishJob(Driver* d);
  // Writes a job that has just ended (its state, finish time and reason set)
  // as durable records, counts it and wakes its waiters.
  absl::Status WriteEndedJob(const std::string& pipeline, const JobInfo& job);
  // Copies a JOB_EGRESSING job's output commit to its egress URL, with
  // retries, and ends the job (dispatcher_egress.cc). Returns early, the job
  // still egressing, if the driver stops or the job is to be killed.
  absl::Status RunEgress(Driver* d, JobInfo job);
  // One attempt: every file of `pipeline`@`commit` to `url`.
  absl::Status CopyToEgress(const std::string& pipeline, const std::string& commit,
                            const std::string& url, const std::function<bool()>& cancelled,
                            uint64_t* files, uint64_t* bytes);
  // Ends a job that cannot run (JOB_FAILURE, or JOB_UNRUNNABLE for a failed
  // input) with its output commit finished failed, opened first if need be
  // so that what is downstream of it in the commit set sees the failure.
  absl::Status FailJobEarly(Driver* d, JobInfo job, const std::string& reason,
                            pps::v1::JobState state = pps::v1::JOB_FAILURE,
                            const std::vector<pfs::v1::CommitRef>& provenance = {});
  // Times out a job past its deadline.
  void CheckDeadline(Driver* d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CheckLeases(Driver* d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The datums of job `j`'s inputs that it did not touch (skipped as
  // unchanged), if the pipeline's spec is still the job's; none otherwise.
  absl::StatusOr<std::vector<DatumInfo>> UntouchedDatums(
      const JobInfo& j, const std::map<std::string, DatumInfo>& touched);
  // How many datums a lease of `a` carries for a runner that takes up to
  // `runner_max` (datum_set_spec, or a share of the queue).
  uint32_t DatumSetSize(ActiveJob* a, uint32_t runner_max) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The job with its live counts if it is running.
  absl::StatusOr<std::optional<JobInfo>> FindJob(const std::string& pipeline,
                                                 const std::string& job);
  // The driver's active job if it is `job_id`; nullptr if not.
  ActiveJob* Active(const std::string& pipeline, const std::string& job_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  pfs::Pfs* const pfs_;
  Pipelines* const pipelines_;
  const JobStore store_;
  const DispatcherOptions options_;

  absl::Mutex triggers_mu_;
  // (repo, branch) -> pipelines reading it.
  std::map<std::pair<std::string, std::string>, std::set<std::string>> triggers_
      ABSL_GUARDED_BY(triggers_mu_);
  std::map<std::string, uint64_t> next_seq_ ABSL_GUARDED_BY(triggers_mu_);

  absl::Mutex mu_;
  absl::CondVar work_cv_;  // new datums to lease
  absl::CondVar job_cv_;   // job progress
  std::map<std::string, std::unique_ptr<Driver>> drivers_ ABSL_GUARDED_BY(mu_);
  // lease id -> pipeline (whose active job's queue holds the lease)
  std::map<std::string, std::string> leases_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;

  // Running attempts' output so far (HeartbeatRequest.live), by lease, for
  // logs -f; an entry goes when its attempt ends or its lease is lost.
  struct LiveLog {
    LogMessage head;  // pipeline, job, datum, attempt, runner, start
    std::string text;
  };
  std::map<std::string, LiveLog> live_ ABSL_GUARDED_BY(mu_);
  // The time of the last log written: each is later (JobStore::PutLog).
  absl::Time last_log_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  void AddLive(const pps::v1::LiveLog& live, const std::string& runner)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex changes_mu_;
  uint64_t changes_ ABSL_GUARDED_BY(changes_mu_) = 0;
  std::thread cron_thread_;

  // Metrics (dispatcher_metrics.cc).
  struct RunnerSeen {
    std::string pipeline;
    absl::Time at;
  };
  void NoteRunner(const std::string& runner, const std::string& pipeline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CollectMetrics();
  std::map<std::string, RunnerSeen> runners_ ABSL_GUARDED_BY(mu_);
  int collector_ = 0;
};

// Metrics of datums and jobs as they end (dispatcher_metrics.cc).
void CountDatums(const std::string& pipeline, const char* result, uint64_t n);
void ObserveDatumPhases(const std::string& pipeline, const pps::v1::ProcessStats& stats);
void CountJob(const std::string& pipeline, pps::v1::JobState state);

}  // namespace tusk::dispatcher
