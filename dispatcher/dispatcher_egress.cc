// Egress (PipelineSpec.egress): after a job's output commit is finished, its
// files are copied to the spec's S3 URL, and only then does the job end.
//
// FinishJob leaves such a job JOB_EGRESSING, in the same atomic write that
// finishes the output commit, so a restart finds it again and copies anew
// (every object is written whole, so a repeated copy is harmless). The
// pipeline's driver runs the copy before its next job, like the jobs of a
// pipeline, one at a time. An attempt that fails is retried after a backoff
// (doubling up to 30 s), up to DispatcherOptions::egress_attempts; then the
// job fails, naming the URL and the last error. Its output commit stays as it
// is: the data is good, only the copy did not happen.

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/proto_util.h"
#include "common/status.h"
#include "dispatcher/dispatcher.h"
#include "dispatcher/dispatcher_internal.h"

namespace tusk::dispatcher {

using pfs::KvBatch;

absl::Status Dispatcher::CopyToEgress(const std::string& pipeline, const std::string& commit,
                                      const std::string& url,
                                      const std::function<bool()>& cancelled, uint64_t* files,
                                      uint64_t* bytes) {
  if (!options_.egress) {
    return absl::FailedPreconditionError("this tuskd has no egress to S3 configured");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<EgressWriter> w, options_.egress(url));
  bool open = false;
  absl::Status st = pfs_->GetFile(
      pipeline, commit, "/",
      [&](const pfs::FileInfo& f) -> absl::Status {
        if (cancelled()) return absl::CancelledError("egress stopped");
        if (open) RETURN_IF_ERROR(w->End());
        open = false;
        RETURN_IF_ERROR(w->Begin(f.path().substr(1), f.size_bytes()));
        open = true;
        ++*files;
        *bytes += f.size_bytes();
        return absl::OkStatus();
      },
      [&](std::string data) { return w->Write(std::move(data)); });
  // An output with no files at all has no root to read.
  if (st.code() == absl::StatusCode::kNotFound && *files == 0) st = absl::OkStatus();
  if (st.ok() && open) st = w->End();
  RETURN_IF_ERROR(st);
  return w->Finish();
}

absl::Status Dispatcher::WriteEndedJob(const std::string& pipeline, const JobInfo& job) {
  CountJob(pipeline, job.state());
  KvBatch batch;
  store_.PutJob(job, &batch);
  pfs::RecordChanges records;  // an ended job is durable
  store_.JobRecords(job, &records);
  RETURN_IF_ERROR(pfs_->WriteRecords(records, &batch));
  Changed();
  absl::MutexLock l(&mu_);
  job_cv_.SignalAll();
  return absl::OkStatus();
}

absl::Status Dispatcher::RunEgress(Driver* d, JobInfo job) {
  const std::string& p = d->name;
  const std::string url = job.egress().url();
  const std::string id = job.id();
  auto interrupted = [d, &id]() { return d->stop || d->kill.count(id) > 0; };
  auto cancelled = [&]() {
    absl::MutexLock l(&mu_);
    return interrupted();
  };
  absl::Duration backoff = options_.egress_backoff;
  while (true) {
    // A stop (ProcessKills) or shutdown ends the copy; the job stays
    // JOB_EGRESSING for the next start, or is killed.
    if (cancelled()) return absl::OkStatus();
    JobEgress* e = job.mutable_egress();
    e->set_attempts(e->attempts() + 1);
    LOG(INFO) << "pipeline " << p << ": job " << id << ": egress to " << url << " (attempt "
              << e->attempts() << ")";
    const absl::Time start = absl::Now();
    uint64_t files = 0, bytes = 0;
    absl::Status st = CopyToEgress(p, id, url, cancelled, &files, &bytes);
    if (!st.ok() && cancelled()) return absl::OkStatus();
    e->set_files(files);
    e->set_bytes(bytes);
    if (st.ok()) {
      e->clear_error();
      *e->mutable_duration() = ToDuration(absl::Now() - start);
      job.set_state(pps::v1::JOB_SUCCESS);
    } else {
      e->set_error(std::string(st.message()));
      if (e->attempts() >= static_cast<uint32_t>(std::max(1, options_.egress_attempts))) {
        job.set_state(pps::v1::JOB_FAILURE);
        job.set_reason(absl::StrCat("egress to ", url, " failed (", e->attempts(),
                                    " attempts): ", st.message()));
      }
    }
    if (job.state() != pps::v1::JOB_EGRESSING) {
      *job.mutable_finished() = NowTimestamp();
      RETURN_IF_ERROR(WriteEndedJob(p, job));
      {
        absl::MutexLock l(&mu_);
        d->scan_from = job.seq() + 1;
      }
      if (st.ok()) {
        LOG(INFO) << "pipeline " << p << ": job " << id << " succeeded: egress of " << files
                  << " files, " << bytes << " bytes to " << url << " in "
                  << absl::FormatDuration(absl::Now() - start);
      } else {
        LOG(WARNING) << "pipeline " << p << ": job " << id << " failed: " << job.reason();
      }
      return absl::OkStatus();
    }
    KvBatch batch;  // the attempt, for inspect job; not durable
    store_.PutJob(job, &batch);
    RETURN_IF_ERROR(store_.Write(&batch, /*sync=*/false));
    Changed();
    LOG(WARNING) << "pipeline " << p << ": job " << id << ": egress to " << url << " failed: " << st
                 << "; trying again in " << backoff;
    {
      absl::MutexLock l(&mu_);
      job_cv_.SignalAll();
      auto woken = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return interrupted(); };
      mu_.AwaitWithTimeout(absl::Condition(&woken), backoff);
    }
    backoff = std::min(backoff * 2, absl::Seconds(30));
  }
}

}  // namespace tusk::dispatcher
