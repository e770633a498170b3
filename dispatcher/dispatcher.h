#pragma once

// Dispatcher: turns input commits into jobs, jobs into datums, and datums
// into leases for runners; merges the datums' outputs into the job's output
// commit.
//
// - Triggers. The dispatcher is the Pfs's CommitHook: a finished commit on a
//   pipeline's input branch writes a job record (JOB_CREATED) in the same
//   atomic write that finishes the commit, so no trigger is lost in a crash.
//   A failed output commit (CommitInfo.error) triggers nothing downstream.
// - Jobs of one pipeline run one at a time, in the order they were created,
//   each in a driver thread of its own pipeline. A job resolves its inputs
//   (the trigger commit, and the heads of the other input branches), opens
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
// Index records (prefix "J"; values are pps/storage protos or empty):
//   Jj<pipeline>\0<seq 16 hex>         JobInfo
//   Ji<job id>                        <pipeline>\0<seq 16 hex>
//   Jk<commit set>\0<job id>          (jobs of a commit set)
//   Jd<job id>\0<datum key>           DatumInfo of a datum the job touched
//   Jc<pipeline>\0<datum key>         DatumInfo: the pipeline's current datums
//   Jf<pipeline>\0<datum key>         (current datums that failed)
//   Jh<pipeline>\0<datum hash>        DatumInfo: a datum hash that succeeded
//   Jo<pipeline>\0<path>\0<datum key> ChunkList: a datum's output at a path
//   Jr<pipeline>                      PipelineRuntime (base of the next diff)
//   Jl<pipeline>\0<job>\0<datum>\0<n>  LogMessage of attempt n
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
#include "dispatcher/datums.h"
#include "dispatcher/pipelines.h"
#include "pfs/pfs.h"
#include "proto/pps.pb.h"

namespace tusk::dispatcher {

using pps::v1::DatumInfo;
using pps::v1::JobInfo;
using pps::v1::LogMessage;

struct DispatcherOptions {
  absl::Duration lease_ttl = absl::Seconds(20);
  uint32_t heartbeat_ms = 2000;
};

// What a runner reports for one datum attempt.
struct DatumResult {
  bool success = false;
  std::string error;  // why it failed
  std::string log;    // the attempt's bounded stdout and stderr
  bool log_truncated = false;
  pfs::DirInfo output;  // for a success: the tree of its /pfs/out
  pps::v1::ProcessStats stats;
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

  // Runner protocol.
  absl::StatusOr<pps::v1::LeaseResponse> Lease(const pps::v1::LeaseRequest& req);
  pps::v1::HeartbeatResponse Heartbeat(const pps::v1::HeartbeatRequest& req);
  // FailedPrecondition if `lease` is not held (expired, or its job ended).
  absl::Status CheckLease(const std::string& lease);
  // Records a datum attempt's result. For a success, `blobs` holds the
  // records of the output tree's new blobs (written together with the result).
  absl::Status CompleteDatum(const std::string& lease, const DatumResult& result,
                             pfs::KvBatch* blobs);
  // A runner process ended: its leases go back to the queue at once.
  void ReleaseRunner(const std::string& runner);

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

  // Pipelines that want runners, with how many (running ones: parallelism).
  std::map<std::string, int> RunnerDemand();

 private:
  struct Work;
  struct ActiveJob;
  struct Driver;

  Dispatcher(pfs::Pfs* pfs, Pipelines* pipelines, const DispatcherOptions& options);

  absl::Status Load();
  void StartDriver(const PipelineInfo& info) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StopDriver(const std::string& name);
  void DriverLoop(Driver* d);
  // Index of which pipelines read which branch.
  void RebuildTriggers(const std::vector<PipelineInfo>& all);
  // Writes a new JOB_CREATED job of `pipeline` to `batch`.
  JobInfo NewJob(const std::string& pipeline, const pfs::v1::CommitRef& trigger,
                 const std::string& commit_set, pfs::KvBatch* batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(triggers_mu_);
  // Creates a job on the pipeline's current input heads (create/update).
  absl::Status TriggerOnHeads(const PipelineInfo& info);

  // Driver steps (driver thread; mu_ not held unless noted).
  absl::StatusOr<std::optional<JobInfo>> NextJob(Driver* d);
  absl::Status StartJob(Driver* d, JobInfo job);
  absl::Status FinishJob(Driver* d);
  absl::Status FailJobEarly(Driver* d, JobInfo job, const std::string& reason);
  void CheckLeases(Driver* d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::optional<JobInfo>> FindJob(const std::string& pipeline,
                                                 const std::string& job);
  absl::Status PutJob(const JobInfo& job, pfs::KvBatch* batch);

  pfs::Pfs* const pfs_;
  Pipelines* const pipelines_;
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
  // lease id -> (pipeline, datum key)
  std::map<std::string, std::pair<std::string, std::string>> leases_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace tusk::dispatcher
