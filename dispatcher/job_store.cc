#include "dispatcher/job_store.h"

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/proto_util.h"
#include "common/status.h"
#include "pfs/keys.h"

namespace tusk::dispatcher {
namespace {

using namespace pfs::jobkeys;  // NOLINT: the key makers of this store

template <typename T>
absl::StatusOr<T> ParseRecord(absl::string_view key, absl::string_view value) {
  return ParseProto<T>(value, absl::StrCat("index record ", absl::CEscape(key)));
}

// Calls fn with every record under `prefix`, parsed, and the rest of its key;
// stops at the first that does not parse (DataLoss) or fn's first error.
template <typename T>
absl::Status ScanRecords(const pfs::KeySpace& space, const std::string& prefix,
                         const std::function<absl::Status(absl::string_view, T)>& fn) {
  absl::Status status;
  RETURN_IF_ERROR(space.ScanPrefix(prefix, [&](absl::string_view k, absl::string_view v) {
    auto msg = ParseRecord<T>(k, v);
    status = msg.ok() ? fn(k.substr(prefix.size()), *std::move(msg)) : msg.status();
    return status.ok();
  }));
  return status;
}

}  // namespace

absl::StatusOr<uint64_t> JobStore::NextJobSeq(const std::string& pipeline) const {
  uint64_t next = 0;
  RETURN_IF_ERROR(
      space_.ScanPrefix(JobPrefix(pipeline), [&](absl::string_view k, absl::string_view) {
        uint64_t seq = 0;
        if (ParseJobKey(pipeline, k, &seq)) next = std::max(next, seq + 1);
        return true;
      }));
  return next;
}

void JobStore::AddJob(const JobInfo& job, pfs::KvBatch* batch) const {
  PutJob(job, batch);
  space_.Put(batch, JobIndexKey(job.id()), JobIndexValue(job.pipeline(), job.seq()));
  space_.Put(batch, CommitSetJobKey(job.commit_set(), job.id()), "");
}

void JobStore::PutJob(const JobInfo& job, pfs::KvBatch* batch) const {
  space_.Put(batch, JobKey(job.pipeline(), job.seq()), job.SerializeAsString());
}

void JobStore::JobRecords(const JobInfo& job, pfs::RecordChanges* records) const {
  records->put[JobKey(job.pipeline(), job.seq())] = job.SerializeAsString();
  records->put[JobIndexKey(job.id())] = JobIndexValue(job.pipeline(), job.seq());
  records->put[CommitSetJobKey(job.commit_set(), job.id())] = "";
}

absl::StatusOr<std::optional<JobInfo>> JobStore::GetJob(const std::string& pipeline,
                                                        uint64_t seq) const {
  return space_.GetProto<JobInfo>(JobKey(pipeline, seq));
}

absl::Status JobStore::ScanJobs(const std::string& pipeline, uint64_t from,
                                const std::function<bool(const JobInfo&)>& fn) const {
  absl::Status parse;
  RETURN_IF_ERROR(space_.Scan(JobKey(pipeline, from), pfs::PrefixEnd(JobPrefix(pipeline)),
                              [&](absl::string_view k, absl::string_view v) {
                                auto job = ParseRecord<JobInfo>(k, v);
                                if (!job.ok()) {
                                  parse = job.status();
                                  return false;
                                }
                                return fn(*job);
                              }));
  return parse;
}

absl::StatusOr<std::optional<JobInfo>> JobStore::FindJob(const std::string& pipeline,
                                                         const std::string& id_prefix) const {
  if (id_prefix.empty()) return absl::InvalidArgumentError("job id is empty");
  std::vector<std::string> matches;
  RETURN_IF_ERROR(
      space_.ScanPrefix(JobIndexKey(id_prefix), [&](absl::string_view, absl::string_view v) {
        if (pipeline.empty() || absl::StartsWith(v, absl::StrCat(pipeline, pfs::kNul))) {
          matches.emplace_back(v);
        }
        return matches.size() < 2;
      }));
  if (matches.empty()) return std::optional<JobInfo>();
  if (matches.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat("job id prefix '", id_prefix, "' is ambiguous"));
  }
  std::string p;
  uint64_t seq = 0;
  if (!ParseJobIndexValue(matches[0], &p, &seq)) {
    return absl::DataLossError(absl::StrCat("job index record of ", id_prefix, " is corrupt"));
  }
  return GetJob(p, seq);
}

absl::StatusOr<std::vector<std::string>> JobStore::CommitSetJobs(
    const std::string& commit_set) const {
  std::vector<std::string> ids;
  std::string prefix = CommitSetJobsPrefix(commit_set);
  RETURN_IF_ERROR(space_.ScanPrefix(prefix, [&](absl::string_view k, absl::string_view) {
    ids.emplace_back(k.substr(prefix.size()));
    return true;
  }));
  return ids;
}

absl::StatusOr<std::optional<DatumInfo>> JobStore::GetJobDatum(const std::string& job,
                                                               const std::string& key) const {
  return space_.GetProto<DatumInfo>(JobDatumKey(job, key));
}

void JobStore::PutJobDatum(const std::string& job, const DatumInfo& datum,
                           pfs::KvBatch* batch) const {
  space_.Put(batch, JobDatumKey(job, datum.key()), datum.SerializeAsString());
}

absl::Status JobStore::ScanJobDatums(
    const std::string& job, const std::function<absl::Status(const DatumInfo&)>& fn) const {
  return ScanRecords<DatumInfo>(space_, JobDatumPrefix(job),
                                [&](absl::string_view, DatumInfo di) { return fn(di); });
}

absl::StatusOr<std::optional<DatumInfo>> JobStore::GetCurrent(const std::string& pipeline,
                                                              const std::string& key) const {
  return space_.GetProto<DatumInfo>(CurrentKey(pipeline, key));
}

absl::StatusOr<std::map<std::string, DatumInfo>> JobStore::AllCurrent(
    const std::string& pipeline) const {
  std::map<std::string, DatumInfo> out;
  RETURN_IF_ERROR(ScanRecords<DatumInfo>(space_, CurrentPrefix(pipeline),
                                         [&](absl::string_view key, DatumInfo di) {
                                           out.emplace(std::string(key), std::move(di));
                                           return absl::OkStatus();
                                         }));
  return out;
}

absl::StatusOr<std::set<std::string>> JobStore::FailedKeys(const std::string& pipeline) const {
  std::set<std::string> keys;
  std::string prefix = FailedPrefix(pipeline);
  RETURN_IF_ERROR(space_.ScanPrefix(prefix, [&](absl::string_view k, absl::string_view) {
    keys.emplace(k.substr(prefix.size()));
    return true;
  }));
  return keys;
}

void JobStore::SetCurrent(const std::string& pipeline, const DatumInfo& datum,
                          pfs::KvBatch* batch) const {
  space_.Put(batch, CurrentKey(pipeline, datum.key()), datum.SerializeAsString());
  if (datum.state() == pps::v1::DATUM_SUCCESS) {
    space_.Delete(batch, FailedKey(pipeline, datum.key()));
  } else {
    space_.Put(batch, FailedKey(pipeline, datum.key()), "");
  }
}

void JobStore::RemoveCurrent(const std::string& pipeline, const std::string& key,
                             pfs::KvBatch* batch) const {
  space_.Delete(batch, CurrentKey(pipeline, key));
  space_.Delete(batch, FailedKey(pipeline, key));
}

absl::StatusOr<std::optional<DatumInfo>> JobStore::GetDone(const std::string& pipeline,
                                                           const Hash& datum_hash) const {
  return space_.GetProto<DatumInfo>(DoneHashKey(pipeline, datum_hash.Raw()));
}

void JobStore::PutDone(const std::string& pipeline, const Hash& datum_hash, const DatumInfo& datum,
                       pfs::KvBatch* batch) const {
  space_.Put(batch, DoneHashKey(pipeline, datum_hash.Raw()), datum.SerializeAsString());
}

void JobStore::DoneRecord(const std::string& pipeline, const Hash& datum_hash,
                          const DatumInfo& datum, pfs::RecordChanges* records) const {
  records->put[DoneHashKey(pipeline, datum_hash.Raw())] = datum.SerializeAsString();
}

absl::StatusOr<std::vector<std::string>> JobStore::StaleDoneKeys(
    const std::string& pipeline, const std::set<std::string>& jobs) const {
  ASSIGN_OR_RETURN(auto current, AllCurrent(pipeline));
  std::set<std::string> live;
  for (const auto& [key, di] : current) live.insert(di.id());
  std::vector<std::string> stale;
  const std::string prefix = DoneHashPrefix(pipeline);
  RETURN_IF_ERROR(ScanRecords<DatumInfo>(space_, prefix, [&](absl::string_view rest, DatumInfo di) {
    if (jobs.count(di.job()) && !live.count(di.id())) {
      stale.push_back(absl::StrCat(prefix, rest));
    }
    return absl::OkStatus();
  }));
  return stale;
}

absl::StatusOr<std::map<std::string, pfs::ChunkList>> JobStore::Contributions(
    const std::string& pipeline, const std::string& path) const {
  std::map<std::string, pfs::ChunkList> out;
  RETURN_IF_ERROR(ScanRecords<pfs::ChunkList>(space_, OutputPathPrefix(pipeline, path),
                                              [&](absl::string_view key, pfs::ChunkList list) {
                                                out.emplace(std::string(key), std::move(list));
                                                return absl::OkStatus();
                                              }));
  return out;
}

void JobStore::PutContribution(const std::string& pipeline, const std::string& path,
                               const std::string& key, const pfs::ChunkList& chunks,
                               pfs::KvBatch* batch) const {
  space_.Put(batch, OutputPathPrefix(pipeline, path) + key, chunks.SerializeAsString());
}

void JobStore::DeleteContribution(const std::string& pipeline, const std::string& path,
                                  const std::string& key, pfs::KvBatch* batch) const {
  space_.Delete(batch, OutputPathPrefix(pipeline, path) + key);
}

absl::StatusOr<PipelineRuntime> JobStore::Runtime(const std::string& pipeline) const {
  ASSIGN_OR_RETURN(auto rt, space_.GetProto<PipelineRuntime>(RuntimeKey(pipeline)));
  if (rt) return *rt;
  PipelineRuntime fresh;
  ASSIGN_OR_RETURN(auto salt, space_.Get(SaltKey(pipeline)));
  uint64_t n = 0;
  if (salt && !absl::SimpleAtoi(*salt, &n)) {
    return absl::DataLossError(
        absl::StrCat("the salt record of pipeline ", pipeline, " is corrupt"));
  }
  fresh.set_salt(n);
  return fresh;
}

absl::StatusOr<bool> JobStore::HasRuntime(const std::string& pipeline) const {
  ASSIGN_OR_RETURN(auto rt, space_.Get(RuntimeKey(pipeline)));
  return rt.has_value();
}

void JobStore::SaltRecord(const std::string& pipeline, uint64_t salt,
                          pfs::RecordChanges* records) const {
  records->put[SaltKey(pipeline)] = absl::StrCat(salt);
}

void JobStore::PutRuntime(const std::string& pipeline, const PipelineRuntime& rt,
                          pfs::KvBatch* batch) const {
  space_.Put(batch, RuntimeKey(pipeline), rt.SerializeAsString());
}

void JobStore::PutLog(const LogMessage& log, pfs::KvBatch* batch) const {
  space_.Put(batch,
             LogKey(log.pipeline(), absl::ToUnixMicros(FromTimestamp(log.time())), log.job(),
                    log.datum(), log.attempt()),
             log.SerializeAsString());
}

absl::Status JobStore::ScanLogs(const std::string& pipeline, absl::Time from, std::string* after,
                                const std::function<bool(const LogMessage&)>& fn) const {
  const std::string prefix = LogPrefix(pipeline);
  std::string begin = !after->empty() ? *after + std::string(1, '\0')
                      : from == absl::InfinitePast()
                          ? prefix
                          : LogTimeKey(pipeline, absl::ToUnixMicros(from));
  absl::Status parse;
  RETURN_IF_ERROR(
      space_.Scan(begin, pfs::PrefixEnd(prefix), [&](absl::string_view k, absl::string_view v) {
        auto m = ParseRecord<LogMessage>(k, v);
        if (!m.ok()) {
          parse = m.status();
          return false;
        }
        *after = std::string(k);
        return fn(*m);
      }));
  return parse;
}

absl::Status JobStore::DeleteJob(const JobInfo& job, pfs::KvBatch* batch,
                                 pfs::RecordChanges* records) const {
  for (const auto& key : {JobKey(job.pipeline(), job.seq()), JobIndexKey(job.id()),
                          CommitSetJobKey(job.commit_set(), job.id())}) {
    space_.Delete(batch, key);
    records->deleted.push_back(key);
  }
  RETURN_IF_ERROR(space_.DeletePrefix(JobDatumPrefix(job.id()), batch));
  // Its logs: written between its creation and its end.
  std::string after;
  const absl::Time end = job.has_finished() ? FromTimestamp(job.finished()) + absl::Seconds(1)
                                            : absl::InfiniteFuture();
  return ScanLogs(job.pipeline(), FromTimestamp(job.created()) - absl::Seconds(1), &after,
                  [&](const LogMessage& m) {
                    if (FromTimestamp(m.time()) > end) return false;
                    if (m.job() == job.id()) space_.Delete(batch, after);
                    return true;
                  });
}

absl::StatusOr<std::vector<JobInfo>> JobStore::DeletePipeline(const std::string& pipeline,
                                                              pfs::KvBatch* batch,
                                                              pfs::RecordChanges* records) const {
  std::vector<JobInfo> jobs;
  // A job record that does not parse is deleted all the same: deleting the
  // pipeline is how a user gets rid of it.
  RETURN_IF_ERROR(
      space_.ScanPrefix(JobPrefix(pipeline), [&](absl::string_view k, absl::string_view v) {
        JobInfo j;
        if (j.ParseFromString(std::string(v))) jobs.push_back(std::move(j));
        space_.Delete(batch, k);
        return true;
      }));
  for (const auto& j : jobs) {
    space_.Delete(batch, JobIndexKey(j.id()));
    space_.Delete(batch, CommitSetJobKey(j.commit_set(), j.id()));
    records->deleted.push_back(JobIndexKey(j.id()));
    records->deleted.push_back(CommitSetJobKey(j.commit_set(), j.id()));
    RETURN_IF_ERROR(space_.DeletePrefix(JobDatumPrefix(j.id()), batch));
  }
  records->deleted_prefixes.push_back(JobPrefix(pipeline));
  records->deleted_prefixes.push_back(DoneHashPrefix(pipeline));
  records->deleted.push_back(SaltKey(pipeline));
  space_.Delete(batch, SaltKey(pipeline));
  for (const auto& prefix :
       {CurrentPrefix(pipeline), FailedPrefix(pipeline), DoneHashPrefix(pipeline),
        OutputPrefix(pipeline), LogPrefix(pipeline)}) {
    RETURN_IF_ERROR(space_.DeletePrefix(prefix, batch));
  }
  space_.Delete(batch, RuntimeKey(pipeline));
  return jobs;
}

absl::Status JobStore::MarkLive(pfs::GcMarker* marker) const {
  for (absl::string_view prefix : kDatumRecordSpaces) {
    std::vector<Hash> roots;
    RETURN_IF_ERROR(ScanRecords<DatumInfo>(
        space_, std::string(prefix), [&](absl::string_view, DatumInfo di) -> absl::Status {
          if (di.output_root().empty()) return absl::OkStatus();
          auto h = Hash::FromHex(di.output_root());
          if (!h.ok()) {
            return absl::DataLossError(absl::StrCat("datum ", di.key(), " of pipeline ",
                                                    di.pipeline(), " has a malformed output root"));
          }
          roots.push_back(*h);
          return absl::OkStatus();
        }));
    for (const auto& r : roots) RETURN_IF_ERROR(marker->Tree(r));
  }
  return ScanRecords<pfs::ChunkList>(space_, kOutputSpace,
                                     [&](absl::string_view, pfs::ChunkList list) {
                                       marker->Chunks(list);
                                       return absl::OkStatus();
                                     });
}

}  // namespace tusk::dispatcher
