// Jobs, datums, logs and commit sets.

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/command.h"
#include "cli/command_base.h"
#include "cli/output.h"
#include "cli/spec_file.h"
#include "common/status.h"
#include "common/version.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"

namespace tusk::cli {
namespace {

class JobCommands : public CommandBase {
 public:
  using CommandBase::CommandBase;

  // PIPELINE@JOB from positional `i`.
  bool PipelineJob(size_t i, std::string* pipeline, std::string* job) {
    if (args_.positional.size() <= i) return false;
    const std::string& a = args_.positional[i];
    size_t at = a.find('@');
    if (at == std::string::npos || at == 0 || at + 1 == a.size()) return false;
    *pipeline = a.substr(0, at);
    *job = a.substr(at + 1);
    return true;
  }

  static std::string Duration(const google::protobuf::Timestamp& from,
                              const google::protobuf::Timestamp& to) {
    if (from.seconds() == 0) return "-";
    int64_t end = to.seconds() == 0 ? absl::ToUnixNanos(absl::Now())
                                    : to.seconds() * 1000000000LL + to.nanos();
    double secs = (end - (from.seconds() * 1000000000LL + from.nanos())) / 1e9;
    if (secs < 10) return absl::StrFormat("%.3fs", secs);
    return absl::FormatDuration(absl::Seconds(static_cast<int64_t>(secs)));
  }

  static std::string StatsLine(const ppsv1::ProcessStats& s) {
    auto secs = [](const google::protobuf::Duration& d) {
      return absl::StrFormat("%.3fs", d.seconds() + d.nanos() / 1e9);
    };
    return absl::StrCat("download ", secs(s.download_time()), " (", HumanBytes(s.download_bytes()),
                        "), process ", secs(s.process_time()), ", upload ", secs(s.upload_time()),
                        " (", HumanBytes(s.upload_bytes()), ")");
  }

  static std::string JobStateName(ppsv1::JobState s) {
    std::string n = ppsv1::JobState_Name(s);
    return absl::StartsWith(n, "JOB_") ? n.substr(4) : n;
  }

  static std::string DatumCounts(const ppsv1::JobInfo& j) {
    return absl::StrCat(j.datums_processed(), " + ", j.datums_skipped(), " skipped / ",
                        j.datums_total(),
                        j.datums_failed() ? absl::StrCat(", ", j.datums_failed(), " failed") : "");
  }

  int ListJob() {
    ppsv1::ListJobRequest req;
    req.set_pipeline(args_.Get("-p"));
    if (args_.Has("-n")) {
      uint64_t n = 0;
      if (!absl::SimpleAtoi(args_.Get("-n"), &n)) return UsageError("-n needs a number");
      req.set_limit(n);
    }
    Table t({"PIPELINE", "ID", "STATE", "STARTED", "DURATION", "DATUMS", "INPUTS"});
    grpc::ClientContext ctx;
    auto reader = pps_->ListJob(&ctx, req);
    ppsv1::JobInfo j;
    while (reader->Read(&j)) {
      if (json_) {
        PrintJson(j);
        continue;
      }
      std::vector<std::string> inputs;
      for (const auto& in : j.inputs())
        inputs.push_back(in.repo() + "@" + (in.id().empty() ? "-" : in.id().substr(0, 12)));
      t.Add({j.pipeline(), j.id(), JobStateName(j.state()), Time(j.created()),
             Duration(j.started(), j.finished()), DatumCounts(j), absl::StrJoin(inputs, ",")});
    }
    grpc::Status s = reader->Finish();
    if (!s.ok()) return Fail(s);
    if (!json_) t.Print();
    return kExitOk;
  }

  void PrintJob(const ppsv1::JobInfo& j) {
    if (json_) return PrintJson(j);
    std::cout << "Job: " << j.pipeline() << "@" << j.id() << "\n"
              << "State: " << JobStateName(j.state())
              << (j.reason().empty() ? "" : " (" + j.reason() + ")") << "\n"
              << "Pipeline version: " << j.pipeline_version() << "\n"
              << "Created: " << Time(j.created()) << "\n"
              << "Started: " << Time(j.started()) << "\n"
              << "Finished: " << Time(j.finished()) << "\n"
              << "Duration: " << Duration(j.started(), j.finished()) << "\n"
              << "Datums: " << j.datums_total() << " total, " << j.datums_processed()
              << " processed, " << j.datums_skipped() << " skipped, " << j.datums_failed()
              << " failed, " << j.datums_removed() << " removed\n"
              << "Time in datums: " << StatsLine(j.stats()) << "\n"
              << "Trigger: " << j.trigger().repo() << "@" << j.trigger().id() << "\n";
    for (const auto& in : j.inputs()) {
      std::cout << "Input: " << in.repo() << "@" << (in.id().empty() ? "(no commit)" : in.id())
                << " (" << in.branch() << ")\n";
    }
    std::cout << "Output commit: " << j.output_commit().repo() << "@" << j.output_commit().id()
              << "\n"
              << "Commit set: " << j.commit_set() << "\n";
    if (j.has_egress()) {
      const auto& e = j.egress();
      std::cout << "Egress: " << e.url() << " (" << e.files() << " files, " << e.bytes()
                << " bytes, " << e.attempts() << (e.attempts() == 1 ? " attempt" : " attempts")
                << (e.error().empty() ? "" : "; last error: " + e.error()) << ")\n";
    }
  }

  int InspectJob() {
    ppsv1::InspectJobRequest req;
    if (!PipelineJob(0, req.mutable_pipeline(), req.mutable_job())) {
      return UsageError("inspect job needs PIPELINE@JOB");
    }
    grpc::ClientContext ctx;
    auto reader = pps_->InspectJob(&ctx, req);
    ppsv1::JobInfo j;
    while (reader->Read(&j)) PrintJob(j);
    grpc::Status s = reader->Finish();
    return s.ok() ? kExitOk : Fail(s);
  }

  int WaitJob() {
    ppsv1::InspectJobRequest req;
    if (!PipelineJob(0, req.mutable_pipeline(), req.mutable_job())) {
      return UsageError("wait job needs PIPELINE@JOB");
    }
    req.set_wait(true);
    bool tty = ::isatty(STDERR_FILENO) == 1 && !json_;
    grpc::ClientContext ctx;
    auto reader = pps_->InspectJob(&ctx, req);
    ppsv1::JobInfo j;
    bool any = false;
    while (reader->Read(&j)) {
      any = true;
      if (tty && j.datums_total() > 0) {
        uint64_t done = j.datums_processed() + j.datums_skipped() + j.datums_failed();
        int width = 30;
        int filled = static_cast<int>(width * done / j.datums_total());
        std::cerr << "\r[" << std::string(filled, '=') << std::string(width - filled, ' ') << "] "
                  << done << "/" << j.datums_total() << " (" << j.datums_processed()
                  << " processed, " << j.datums_skipped() << " skipped, " << j.datums_failed()
                  << " failed)" << std::flush;
      }
    }
    if (tty && any) std::cerr << "\n";
    grpc::Status s = reader->Finish();
    if (!s.ok()) return Fail(s);
    if (json_) {
      PrintJson(j);
    } else {
      std::cout << "job " << j.pipeline() << "@" << j.id() << " "
                << absl::AsciiStrToLower(JobStateName(j.state()))
                << (j.reason().empty() ? "" : ": " + j.reason()) << " (" << DatumCounts(j) << ", "
                << Duration(j.started(), j.finished()) << ")\n";
    }
    return j.state() == ppsv1::JOB_SUCCESS ? kExitOk : 1;
  }

  static std::string DatumStateName(ppsv1::DatumState s) {
    std::string n = ppsv1::DatumState_Name(s);
    return absl::StartsWith(n, "DATUM_") ? n.substr(6) : n;
  }

  int ListDatum() {
    ppsv1::ListDatumRequest req;
    if (!PipelineJob(0, req.mutable_pipeline(), req.mutable_job())) {
      return UsageError("list datum needs PIPELINE@JOB");
    }
    Table t({"ID", "STATE", "ATTEMPTS", "INPUTS", "ERROR"});
    grpc::ClientContext ctx;
    auto reader = pps_->ListDatum(&ctx, req);
    ppsv1::DatumInfo d;
    while (reader->Read(&d)) {
      if (json_) {
        PrintJson(d);
        continue;
      }
      std::vector<std::string> inputs;
      for (const auto& in : d.inputs()) inputs.push_back(in.name() + ":" + in.path());
      t.Add({d.id().substr(0, 16), DatumStateName(d.state()), absl::StrCat(d.attempts()),
             absl::StrJoin(inputs, " "), d.error()});
    }
    grpc::Status s = reader->Finish();
    if (!s.ok()) return Fail(s);
    if (!json_) t.Print();
    return kExitOk;
  }

  int InspectDatum() {
    ppsv1::InspectDatumRequest req;
    if (!PipelineJob(0, req.mutable_pipeline(), req.mutable_job()) ||
        args_.positional.size() != 2) {
      return UsageError("inspect datum needs PIPELINE@JOB DATUM");
    }
    req.set_datum(args_.positional[1]);
    return CallOn(pps_, &ppsv1::Pps::Stub::InspectDatum, req, [&](const ppsv1::DatumInfo& d) {
      std::cout << "Datum: " << d.id() << "\nJob: " << d.pipeline() << "@" << d.job()
                << "\nState: " << DatumStateName(d.state()) << "\nAttempts: " << d.attempts()
                << "\n";
      if (!d.error().empty()) std::cout << "Error: " << d.error() << "\n";
      for (const auto& in : d.inputs()) {
        std::cout << "Input: " << in.name() << " " << in.repo() << "@" << in.commit() << ":"
                  << in.path() << (in.dir() ? " (dir)" : "") << "\n";
      }
      std::cout << "Output: " << d.output_files() << " files, " << HumanBytes(d.output_bytes())
                << "\n"
                << "Started: " << Time(d.started()) << "\nFinished: " << Time(d.finished()) << "\n";
      if (d.has_stats()) std::cout << "Time: " << StatsLine(d.stats()) << "\n";
    });
  }

  int Logs() {
    ppsv1::GetLogsRequest req;
    req.set_pipeline(args_.Get("-p"));
    if (req.pipeline().empty()) return UsageError("logs needs -p PIPELINE");
    req.set_job(args_.Get("--job"));
    req.set_datum(args_.Get("--datum"));
    req.set_follow(args_.Has("--follow"));
    grpc::ClientContext ctx;
    auto reader = pps_->GetLogs(&ctx, req);
    ppsv1::LogMessage m;
    // An attempt followed live comes in pieces: its header once, unless
    // another attempt's lines came in between.
    std::string last;
    bool line_open = false;
    while (reader->Read(&m)) {
      if (json_) {
        PrintJson(m);
        continue;
      }
      std::string attempt = absl::StrCat(m.job(), "/", m.datum(), "/", m.attempt());
      if (attempt != last || m.offset() == 0) {
        if (line_open) std::cout << "\n";
        std::cout << "--- job " << m.job().substr(0, 12) << " datum " << m.datum().substr(0, 12)
                  << " attempt " << m.attempt() << " on " << m.runner() << " at " << Time(m.time())
                  << (m.partial() ? " (running)" : "") << (m.offset() > 0 ? " (continued)" : "")
                  << (m.truncated() ? " (truncated)" : "") << "\n";
        line_open = false;
      }
      last = attempt;
      std::cout << m.message();
      line_open = !m.message().empty() && m.message().back() != '\n';
      if (!m.partial() && line_open) {
        std::cout << "\n";
        line_open = false;
      }
      std::cout << std::flush;
    }
    grpc::Status s = reader->Finish();
    return s.ok() ? kExitOk : Fail(s);
  }

  int StopJob() {
    ppsv1::StopJobRequest req;
    if (!PipelineJob(0, req.mutable_pipeline(), req.mutable_job())) {
      return UsageError("stop job needs PIPELINE@JOB");
    }
    req.set_reason(args_.Get("--reason"));
    return CallOn(pps_, &ppsv1::Pps::Stub::StopJob, req, [&](const ppsv1::JobInfo& j) {
      std::cout << "job " << j.pipeline() << "@" << j.id() << " "
                << absl::AsciiStrToLower(JobStateName(j.state()))
                << (j.reason().empty() ? "" : ": " + j.reason()) << "\n";
    });
  }

  int DeleteJob() {
    ppsv1::DeleteJobRequest req;
    if (!PipelineJob(0, req.mutable_pipeline(), req.mutable_job())) {
      return UsageError("delete job needs PIPELINE@JOB");
    }
    return CallOn(pps_, &ppsv1::Pps::Stub::DeleteJob, req, [&](const ppsv1::DeleteJobResponse&) {
      std::cout << "deleted job " << req.pipeline() << "@" << req.job() << "\n";
    });
  }

  int RestartDatum() {
    ppsv1::RestartDatumRequest req;
    if (!PipelineJob(0, req.mutable_pipeline(), req.mutable_job())) {
      return UsageError("restart datum needs PIPELINE@JOB [DATUM...]");
    }
    for (size_t i = 1; i < args_.positional.size(); i++) req.add_datums(args_.positional[i]);
    return CallOn(pps_, &ppsv1::Pps::Stub::RestartDatum, req, [&](const ppsv1::JobInfo& j) {
      if (j.id() == req.job() || absl::StartsWith(j.id(), req.job())) {
        std::cout << "failed datums of job " << j.pipeline() << "@" << j.id() << " queued again\n";
      } else {
        std::cout << "job " << j.pipeline() << "@" << j.id()
                  << " runs the failed datums again (commit set " << j.commit_set() << ")\n";
      }
    });
  }

  int WaitCommitSet() {
    if (!NeedPositional(1, "commit set id")) return kExitUsage;
    InspectCommitSetRequest req;
    req.set_commit_set(args_.positional[0]);
    req.set_wait(true);
    Table t({"REPO", "ID", "BRANCH", "STATE", "ORIGIN", "ERROR"});
    bool failed = false;
    int rc = Stream(&API::Stub::InspectCommitSet, req, [&](const CommitInfo& c) {
      failed = failed || !c.error().empty();
      if (json_) {
        PrintJson(c);
      } else {
        t.Add({c.repo(), c.id(), c.branch(), CommitState_Name(c.state()), Origin_Name(c.origin()),
               c.error()});
      }
    });
    if (rc != kExitOk) return rc;
    if (!json_) t.Print();
    return failed ? 1 : kExitOk;
  }
};

}  // namespace

void AddJobCommands(CommandTable* table) {
  table->Add({"list job",
              "Jobs and datums",
              "list job [-p PIPELINE] [-n N]",
              "  Jobs, newest first: state, datums (processed / skipped / failed of total),\n"
              "  duration and input commits.\n",
              0,
              0,
              {{"-p", true, false, "--pipeline"}, {"-n", true, false, "--number"}},
              Run<JobCommands, &JobCommands::ListJob>});
  table->Add({"inspect job",
              "Jobs and datums",
              "inspect job PIPELINE@JOB",
              "  JOB is a job id or a unique prefix of one.\n",
              1,
              1,
              {},
              Run<JobCommands, &JobCommands::InspectJob>});
  table->Add({"wait job",
              "Jobs and datums",
              "wait job PIPELINE@JOB",
              "  Waits until the job is done, with a progress bar of datums on a terminal.\n"
              "  Exit code 0 if it succeeded, 1 if it failed.\n",
              1,
              1,
              {},
              Run<JobCommands, &JobCommands::WaitJob>});
  table->Add({"list datum",
              "Jobs and datums",
              "list datum PIPELINE@JOB",
              "  Every datum of the job, in datum order, with its state: processed (success),\n"
              "  failed, removed, or skipped (processed by an earlier job, its output reused).\n"
              "  After the pipeline was updated, an older job lists the datums it touched.\n",
              1,
              1,
              {},
              Run<JobCommands, &JobCommands::ListDatum>});
  table->Add({"inspect datum",
              "Jobs and datums",
              "inspect datum PIPELINE@JOB DATUM",
              "  DATUM is a datum id or a unique prefix.\n",
              2,
              2,
              {},
              Run<JobCommands, &JobCommands::InspectDatum>});
  table->Add({"logs",
              "Jobs and datums",
              "logs -p PIPELINE [--job JOB] [--datum DATUM] [-f]",
              "  The logs (stdout and stderr) of datum attempts; -f keeps following.\n",
              0,
              0,
              {{"-p", true, false, "--pipeline"},
               {"--job", true, false},
               {"--datum", true, false},
               {"--follow", false, false, "-f"}},
              Run<JobCommands, &JobCommands::Logs>});
  table->Add({"stop job",
              "Jobs and datums",
              "stop job PIPELINE@JOB [--reason TEXT]",
              "  Kills a job that has not ended (killed, with its reason): its runners stop its\n"
              "  datums, its output commit is marked failed and keeps the previous files, and\n"
              "  what is downstream of it in its commit set does not run. Datums it finished\n"
              "  are reused by the next job.\n",
              1,
              1,
              {{"--reason", true, false}},
              Run<JobCommands, &JobCommands::StopJob>});
  table->Add({"delete job",
              "Jobs and datums",
              "delete job PIPELINE@JOB",
              "  Deletes the records of a job that ended: the job, its datums and its logs.\n"
              "  Its output commit stays (delete commit removes a commit).\n",
              1,
              1,
              {},
              Run<JobCommands, &JobCommands::DeleteJob>});
  table->Add({"restart datum",
              "Jobs and datums",
              "restart datum PIPELINE@JOB [DATUM...]",
              "  Runs the job's failed datums again (those named, by id prefix; default: all):\n"
              "  in the job if it still runs, otherwise in a new job over the pipeline's\n"
              "  current inputs (which runs every failed datum again and reuses the rest).\n",
              1,
              1000,
              {},
              Run<JobCommands, &JobCommands::RestartDatum>});
  table->Add({"wait commitset",
              "Jobs and datums",
              "wait commitset ID",
              "  Waits until every commit of the commit set (an input commit and all that\n"
              "  pipelines derive from it) is finished and every job of the set has ended\n"
              "  (egress included), then lists the commits. Exit code 1 if a commit of the\n"
              "  set failed (its job failed, or an upstream one did).\n",
              1,
              1,
              {},
              Run<JobCommands, &JobCommands::WaitCommitSet>});
}

}  // namespace tusk::cli
