#pragma once

// JobStore: the dispatcher's records in the index (kJobSpace; the layout is
// in pfs/keys.h, namespace jobkeys): jobs, the datums each job touched, each
// pipeline's current datums, the datum hashes that succeeded, the output
// contributions the merge reads, the base of the next incremental job, and
// the logs of datum attempts.
//
// Reads return the records parsed; a record that does not parse is DataLoss
// naming it, never skipped (GC must not take a corrupt record for an absent
// one). Writes go into a KvBatch that the caller writes, often together with
// a commit (FinishOptions.extra), so that a job's state moves atomically with
// its output commit.
//
// What must survive an index rebuild is also a durable record (logged to the
// object store with Pfs::WriteRecords or FinishOptions.records): ended jobs
// (JobRecords), the datum hashes that succeeded with their outputs
// (DoneRecord) and the salt (SaltRecord). The rest (current datums, output
// contributions, the runtime) is rebuilt by the first job after a rebuild,
// which finds the runtime missing (HasRuntime), reruns no datum whose hash
// succeeded, and merges its output from scratch.
//
// Thread-safe (the index is); a value type that does not own the index.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/hash.h"
#include "pfs/key_space.h"
#include "pfs/pfs.h"
#include "proto/pps.pb.h"
#include "proto/storage.pb.h"

namespace tusk::dispatcher {

using pps::v1::DatumInfo;
using pps::v1::JobInfo;
using pps::v1::LogMessage;
using pps::v1::PipelineRuntime;

class JobStore {
 public:
  explicit JobStore(pfs::KeySpace space) : space_(std::move(space)) {}

  // Jobs.
  // One past the highest job sequence number of `pipeline` (0 if none).
  absl::StatusOr<uint64_t> NextJobSeq(const std::string& pipeline) const;
  // A new job: its record, its id's index entry and its commit set's entry.
  void AddJob(const JobInfo& job, pfs::KvBatch* batch) const;
  // The job's record (its state changed).
  void PutJob(const JobInfo& job, pfs::KvBatch* batch) const;
  // The job's record and index entries as durable records (an ended job's).
  void JobRecords(const JobInfo& job, pfs::RecordChanges* records) const;
  absl::StatusOr<std::optional<JobInfo>> GetJob(const std::string& pipeline, uint64_t seq) const;
  // The jobs of `pipeline` from sequence number `from` on, in order, while
  // fn returns true.
  absl::Status ScanJobs(const std::string& pipeline, uint64_t from,
                        const std::function<bool(const JobInfo&)>& fn) const;
  // The job whose id starts with `id_prefix` (of `pipeline`, or of any
  // pipeline if empty); nullopt if none; InvalidArgument if ambiguous.
  absl::StatusOr<std::optional<JobInfo>> FindJob(const std::string& pipeline,
                                                 const std::string& id_prefix) const;
  // Ids of the jobs of a commit set.
  absl::StatusOr<std::vector<std::string>> CommitSetJobs(const std::string& commit_set) const;

  // The datums a job touched, by datum key.
  absl::StatusOr<std::optional<DatumInfo>> GetJobDatum(const std::string& job,
                                                       const std::string& key) const;
  void PutJobDatum(const std::string& job, const DatumInfo& datum, pfs::KvBatch* batch) const;
  absl::Status ScanJobDatums(const std::string& job,
                             const std::function<absl::Status(const DatumInfo&)>& fn) const;

  // The pipeline's current datums (the state its output reflects).
  absl::StatusOr<std::optional<DatumInfo>> GetCurrent(const std::string& pipeline,
                                                      const std::string& key) const;
  absl::StatusOr<std::map<std::string, DatumInfo>> AllCurrent(const std::string& pipeline) const;
  // Keys of the current datums that failed (retried by the next job).
  absl::StatusOr<std::set<std::string>> FailedKeys(const std::string& pipeline) const;
  // Sets a current datum (its state: SUCCESS or FAILED), or removes one.
  void SetCurrent(const std::string& pipeline, const DatumInfo& datum, pfs::KvBatch* batch) const;
  void RemoveCurrent(const std::string& pipeline, const std::string& key,
                     pfs::KvBatch* batch) const;

  // Datum hashes that succeeded: their outputs are reused.
  absl::StatusOr<std::optional<DatumInfo>> GetDone(const std::string& pipeline,
                                                   const Hash& datum_hash) const;
  void PutDone(const std::string& pipeline, const Hash& datum_hash, const DatumInfo& datum,
               pfs::KvBatch* batch) const;
  // The same as a durable record.
  void DoneRecord(const std::string& pipeline, const Hash& datum_hash, const DatumInfo& datum,
                  pfs::RecordChanges* records) const;
  // Succeeded datum hashes that are not the current datums' and were made
  // by one of `jobs`: what job history retention lets go.
  absl::StatusOr<std::vector<std::string>> StaleDoneKeys(const std::string& pipeline,
                                                         const std::set<std::string>& jobs) const;

  // Each datum's output at one path (its contribution to the merged file),
  // by datum key.
  absl::StatusOr<std::map<std::string, pfs::ChunkList>> Contributions(
      const std::string& pipeline, const std::string& path) const;
  void PutContribution(const std::string& pipeline, const std::string& path, const std::string& key,
                       const pfs::ChunkList& chunks, pfs::KvBatch* batch) const;
  void DeleteContribution(const std::string& pipeline, const std::string& path,
                          const std::string& key, pfs::KvBatch* batch) const;

  // The base of the next incremental job (default if none, with the salt
  // of the durable salt record).
  absl::StatusOr<PipelineRuntime> Runtime(const std::string& pipeline) const;
  // Whether the pipeline has a runtime record: false before its first job
  // finished, and after an index rebuild.
  absl::StatusOr<bool> HasRuntime(const std::string& pipeline) const;
  void SaltRecord(const std::string& pipeline, uint64_t salt, pfs::RecordChanges* records) const;
  void PutRuntime(const std::string& pipeline, const PipelineRuntime& rt,
                  pfs::KvBatch* batch) const;

  // Logs of datum attempts, kept in the order of log.time(): the caller
  // gives each log of a pipeline a time later than the last one's and
  // writes them in that order, so that a reader following from the last key
  // it read misses none.
  void PutLog(const LogMessage& log, pfs::KvBatch* batch) const;
  // Logs of `pipeline` in time order after the one whose key is `*after`
  // (empty: from time `from`), while fn returns true; sets `*after` to the
  // last key read.
  absl::Status ScanLogs(const std::string& pipeline, absl::Time from, std::string* after,
                        const std::function<bool(const LogMessage&)>& fn) const;

  // A job's records: the job, its index entries, its datums and its logs
  // (the durable ones' deletions into `records`).
  absl::Status DeleteJob(const JobInfo& job, pfs::KvBatch* batch,
                         pfs::RecordChanges* records) const;

  // Every record of `pipeline`: its jobs (returned, for closing their output
  // commits), their datums, its datums, outputs, logs and runtime (the
  // durable ones' deletions into `records`).
  absl::StatusOr<std::vector<JobInfo>> DeletePipeline(const std::string& pipeline,
                                                      pfs::KvBatch* batch,
                                                      pfs::RecordChanges* records) const;

  // Marks what the records keep alive for Pfs::Gc: the output trees of
  // succeeded datum hashes (reused by later jobs), of the current datums and
  // of jobs' datums (finished datums of a running job included), and the
  // contributions the merge reads. DataLoss if a record does not parse.
  absl::Status MarkLive(pfs::GcMarker* marker) const;

  absl::Status Write(pfs::KvBatch* batch, bool sync) const { return space_.Write(batch, sync); }

 private:
  const pfs::KeySpace space_;
};

}  // namespace tusk::dispatcher
