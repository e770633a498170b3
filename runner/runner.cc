#include "runner/runner.h"

#include <dirent.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/flag_values.h"
#include "common/fs.h"
#include "common/grpc_channel.h"
#include "common/grpc_status.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/proto_util.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"
#include "runner/bounded_log.h"
#include "runner/runner_internal.h"
#include "runner/secrets.h"

extern char** environ;

namespace tusk::runner {
namespace {

using google::protobuf::util::TimeUtil;

// Removes a datum's directory tree; what cannot be removed is logged (the
// next runner in this work directory tries again).
void RemoveTree(const std::string& path) {
  absl::Status s = RemoveAll(path);
  if (!s.ok()) LOG(WARNING) << s;
}

// Processes whose command line names something under `dir`, or whose
// working directory is under it (the command of an earlier attempt, in
// bubblewrap or not).
std::vector<pid_t> ProcessesUsing(const std::string& dir) {
  std::vector<pid_t> found;
  const pid_t self = ::getpid();
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return found;
  auto under = [&](absl::string_view p) { return p == dir || absl::StartsWith(p, dir + "/"); };
  while (dirent* e = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || pid <= 0 || pid == self) continue;
    std::string base = absl::StrCat("/proc/", pid);
    bool hit = false;
    char cwd[PATH_MAX];
    ssize_t n = ::readlink((base + "/cwd").c_str(), cwd, sizeof(cwd) - 1);
    if (n > 0) hit = under(absl::string_view(cwd, n));
    if (!hit) {
      std::ifstream f(base + "/cmdline", std::ios::binary);
      std::string arg;
      while (!hit && std::getline(f, arg, '\0')) hit = under(arg);
    }
    if (hit) found.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(proc);
  return found;
}

google::protobuf::Duration Since(absl::Time t) {
  return TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(absl::Now() - t));
}

struct OutFile {
  std::string path;   // in /pfs/out, absolute ("/a/b")
  std::string local;  // on this machine
};

// Files under `out` in path order; symlinks resolved within `out`.
absl::Status ListOutput(const std::string& out, const std::string& real_out, const std::string& rel,
                        std::vector<OutFile>* files) {
  std::string dir = out + rel;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return Errno("open /pfs/out" + rel);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    std::string r = rel + "/" + n;
    std::string local = out + r;
    struct stat st;
    if (::lstat(local.c_str(), &st) != 0) return Errno("stat /pfs/out" + r);
    if (S_ISDIR(st.st_mode)) {
      RETURN_IF_ERROR(ListOutput(out, real_out, r, files));
    } else if (S_ISREG(st.st_mode)) {
      files->push_back({r, local});
    } else if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      ssize_t len = ::readlink(local.c_str(), buf, sizeof(buf) - 1);
      if (len < 0) return Errno("readlink /pfs/out" + r);
      std::string target(buf, len);
      // The command saw /pfs/out at its sandbox path; map that prefix back.
      std::string host;
      if (absl::StartsWith(target, "/pfs/out/")) {
        host = out + target.substr(8);
      } else if (target[0] == '/') {
        return absl::FailedPreconditionError(
            absl::StrCat("symlink /pfs/out", r, " points outside /pfs/out (to ", target, ")"));
      } else {
        host = out + rel + "/" + target;
      }
      char resolved[PATH_MAX];
      if (::realpath(host.c_str(), resolved) == nullptr ||
          !absl::StartsWith(std::string(resolved), real_out + "/")) {
        return absl::FailedPreconditionError(
            absl::StrCat("symlink /pfs/out", r, " points outside /pfs/out (to ", target, ")"));
      }
      struct stat ts;
      if (::stat(resolved, &ts) != 0 || !S_ISREG(ts.st_mode)) {
        return absl::FailedPreconditionError(
            absl::StrCat("symlink /pfs/out", r, " does not point to a regular file"));
      }
      files->push_back({r, resolved});
    } else {
      return absl::FailedPreconditionError(
          absl::StrCat("/pfs/out", r, " is not a regular file, directory or symlink"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Runner>> Runner::Open(const RunnerOptions& options) {
  if (options.address.empty()) return absl::InvalidArgumentError("tuskd address is not set");
  if (options.pipeline.empty()) return absl::InvalidArgumentError("pipeline is not set");
  if (options.work_dir.empty()) return absl::InvalidArgumentError("work directory is not set");
  RETURN_IF_ERROR(MkdirAll(options.work_dir));
  // Absolute, because the command runs in a datum directory and /pfs paths
  // are rewritten to work_dir paths when there is no sandbox.
  RunnerOptions absolute = options;
  char real[PATH_MAX];
  if (::realpath(options.work_dir.c_str(), real) == nullptr)
    return Errno("resolve " + options.work_dir);
  absolute.work_dir = real;
  if (options.exec_agent.empty() && Sandbox::DropsUid(options.sandbox)) {
    // The sandbox's user must reach the attempts' directories: where it
    // cannot pass through work_dir's parents (a private data directory),
    // the attempts go to a place of their own.
    if (!OthersCanReach(absolute.work_dir)) {
      std::string base = "/var/tmp/tusk-sandbox";
      RETURN_IF_ERROR(MkdirAll(base));
      ::chmod(base.c_str(), 0711);
      absolute.work_dir = absl::StrCat(base, "/", Sha256(real).ShortHex());
      RETURN_IF_ERROR(MkdirAll(absolute.work_dir));
      LOG(INFO) << "runner " << options.name << ": datums run in " << absolute.work_dir << " ("
                << real << " is not reachable by the sandbox's user)";
    }
    ::chmod(absolute.work_dir.c_str(), 0711);
  }
  auto r = std::unique_ptr<Runner>(new Runner(absolute));
  if (!options.exec_agent.empty()) {
    // The user's container is the sandbox; commands see /pfs as it mounts it.
    if (options.pfs_dir.empty()) {
      return absl::InvalidArgumentError("--exec-agent needs --pfs-dir (the volume at /pfs)");
    }
    r->bwrap_ = true;
    LOG(INFO) << "runner " << options.name << " runs commands through the exec agent at "
              << options.exec_agent;
  } else {
    SandboxOptions so;
    so.mode = options.sandbox;
    so.hide = options.hide;
    so.work_dir = absolute.work_dir;
    so.runner_name = options.name;
    auto sandbox = Sandbox::Open(so);
    if (!sandbox.ok()) return sandbox.status();
    r->sandbox_ = std::move(*sandbox);
    r->bwrap_ = r->sandbox_->isolated();
    LOG(INFO) << "runner " << options.name << " sandbox: " << r->sandbox_->Describe();
  }
  int reaped = r->ReapEarlierAttempts();
  if (reaped > 0) {
    LOG(WARNING) << "killed " << reaped << " processes left running by an earlier runner in "
                 << r->options_.work_dir;
  }
  auto channel = NewChannel(options.address, options.channel);
  if (!channel.ok()) return channel.status();
  r->api_ = pfs::v1::API::NewStub(*channel);
  r->worker_ = pps::v1::Worker::NewStub(*channel);
  return r;
}

absl::Status Runner::Run(const std::atomic<bool>* stop) {
  absl::Duration backoff = absl::Milliseconds(100);
  while (!stop->load()) {
    // No lease before the user's container listens: it would fail at once.
    if (!options_.exec_agent.empty() && !AwaitAgent()) continue;
    pps::v1::LeaseRequest req;
    req.set_pipeline(options_.pipeline);
    req.set_runner(options_.name);
    req.set_pipeline_version(options_.pipeline_version);
    req.set_wait_ms(options_.lease_wait_ms);
    req.set_max_datums(options_.max_datums);
    req.set_sandbox(sandbox_
                        ? sandbox_->Describe()
                        : "the pipeline's image (tusk-exec-agent at " + options_.exec_agent + ")");
    pps::v1::LeaseResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(options_.lease_wait_ms + 10000));
    grpc::Status s = worker_->Lease(&ctx, req, &resp);
    if (!s.ok()) {
      absl::Status st = FromGrpcStatus(s);
      if (st.code() == absl::StatusCode::kNotFound ||
          st.code() == absl::StatusCode::kFailedPrecondition ||
          st.code() == absl::StatusCode::kPermissionDenied ||
          st.code() == absl::StatusCode::kUnauthenticated) {
        return st;
      }
      LOG(WARNING) << "lease from " << options_.address << ": " << st << "; retrying";
      absl::SleepFor(backoff);
      backoff = std::min(backoff * 2, absl::Seconds(5));
      continue;
    }
    backoff = absl::Milliseconds(100);
    if (resp.lease().empty()) continue;
    // A datum set: each datum in turn under its own lease; those waiting
    // are renewed with every heartbeat.
    std::vector<pps::v1::LeaseResponse> set = {resp};
    set[0].clear_more();
    for (const auto& m : resp.more()) {
      pps::v1::LeaseResponse& one = set.emplace_back(set[0]);
      one.set_lease(m.lease());
      *one.mutable_datum() = m.datum();
    }
    waiting_.clear();
    lost_.clear();
    for (size_t i = 1; i < set.size(); i++) waiting_.push_back(set[i].lease());
    for (size_t i = 0; i < set.size() && !stop->load(); i++) {
      const auto& one = set[i];
      if (i > 0) waiting_.erase(waiting_.begin());
      if (lost_.count(one.lease())) continue;
      const absl::Duration beat = absl::Milliseconds(std::max<uint32_t>(200, one.heartbeat_ms()));
      if (absl::Now() - last_beat_ > beat && LeaseLost(one)) continue;
      absl::Status st = RunDatum(one);
      if (!st.ok()) LOG(WARNING) << "datum " << one.datum().id().substr(0, 12) << ": " << st;
    }
    waiting_.clear();
  }
  return absl::OkStatus();
}

int Runner::ReapEarlierAttempts() {
  int killed = 0;
  std::vector<std::string> dirs;
  if (DIR* d = ::opendir(options_.work_dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (absl::StartsWith(n, "attempt-") || n == "datum")
        dirs.push_back(options_.work_dir + "/" + n);
    }
    ::closedir(d);
  }
  for (const auto& dir : dirs) {
    // Twice: a process may have been starting a child when the first pass
    // killed it.
    for (int pass = 0; pass < 2; ++pass) {
      for (pid_t pid : ProcessesUsing(dir)) {
        pid_t group = ::getpgid(pid);
        if (group > 1 && group != ::getpgrp()) ::kill(-group, SIGKILL);
        if (::kill(pid, SIGKILL) == 0) ++killed;
      }
    }
    RemoveTree(dir);
  }
  return killed;
}

absl::Status Runner::RunDatum(const pps::v1::LeaseResponse& lease) {
  // A fresh directory per attempt: nothing an earlier attempt left running
  // can write into this one's /pfs/out.
  std::string dir;
  for (;;) {
    dir = absl::StrCat(options_.work_dir, "/attempt-", ++attempts_, "-",
                       absl::Hex(::random() & 0xffffff));
    // 0711: the sandbox's user passes through to /pfs, but cannot list.
    if (::mkdir(dir.c_str(), 0711) == 0) break;
    if (errno != EEXIST) return Errno("mkdir " + dir);
  }
  struct Cleanup {
    std::string dir;
    ~Cleanup() { RemoveTree(dir); }
  } cleanup{dir};
  std::string pfs_dir = dir + "/pfs";
  if (!options_.exec_agent.empty()) {
    // The user's container mounts this volume at /pfs: emptied per attempt.
    pfs_dir = options_.pfs_dir;
    RETURN_IF_ERROR(EmptyDir(pfs_dir));
  }
  struct EmptyAfter {
    std::string dir;
    ~EmptyAfter() {
      if (!dir.empty()) EmptyDir(dir).IgnoreError();  // the next attempt empties it again
    }
  } empty_after{options_.exec_agent.empty() ? "" : pfs_dir};
  RETURN_IF_ERROR(MkdirAll(pfs_dir + "/out"));
  std::string log;
  bool truncated = false;
  std::string failure;
  bool recovered = false;
  pps::v1::ProcessStats stats;
  absl::Time t0 = absl::Now();
  uint64_t bytes = 0;
  absl::Status st = Materialize(lease.datum(), pfs_dir, &bytes);
  *stats.mutable_download_time() = Since(t0);
  const absl::Duration t1_download = absl::Now() - t0;
  stats.set_download_bytes(bytes);
  if (!st.ok()) {
    failure = absl::StrCat("materializing inputs: ", st.message());
  } else {
    absl::Time t1 = absl::Now();
    auto run = Execute(lease, pfs_dir, &log, &truncated);
    if (!run.ok()) return run.status();  // the lease was lost: someone else runs it now
    failure = *run;
    if (!failure.empty() && !lease.transform().err_cmd().empty()) {
      // Pachyderm's err_cmd: if it succeeds, the datum is recovered (no
      // output, and it does not fail the job).
      pps::v1::LeaseResponse err = lease;
      *err.mutable_transform()->mutable_cmd() = lease.transform().err_cmd();
      *err.mutable_transform()->mutable_stdin() = lease.transform().err_stdin();
      err.mutable_transform()->clear_accept_return_code();
      std::string err_log;
      bool err_truncated = false;
      auto handled = Execute(err, pfs_dir, &err_log, &err_truncated);
      if (!handled.ok()) return handled.status();
      log += absl::StrCat("\n--- err_cmd", handled->empty() ? "" : ": " + *handled, "\n", err_log);
      truncated = truncated || err_truncated;
      recovered = handled->empty();
    }
    *stats.mutable_process_time() = Since(t1);
  }
  absl::Time t2 = absl::Now();
  absl::Status sent = SendResult(lease, failure.empty(), failure, log, truncated, stats,
                                 pfs_dir + "/out", recovered);
  const metrics::Labels l = {{"pipeline", options_.pipeline}};
  metrics::GetCounter("tusk_runner_datums_total", "Datum attempts this runner ran, by result",
                      {{"pipeline", options_.pipeline},
                       {"result", failure.empty() ? "success"
                                  : recovered     ? "recovered"
                                                  : "failure"}})
      ->Inc();
  metrics::GetCounter("tusk_runner_downloaded_bytes_total", "Input bytes materialized", l)
      ->Inc(static_cast<double>(bytes));
  const char* help = "Time of this runner's datum attempts by phase";
  for (auto [phase, secs] :
       {std::pair<const char*, double>{"download", absl::ToDoubleSeconds(t1_download)},
        {"command", absl::ToDoubleSeconds(FromDuration(stats.process_time()))},
        {"upload", absl::ToDoubleSeconds(absl::Now() - t2)}}) {
    metrics::GetHistogram("tusk_runner_datum_phase_seconds", help, metrics::SecondsBuckets(),
                          {{"pipeline", options_.pipeline}, {"phase", phase}})
        ->Observe(secs);
  }
  return sent;
}

absl::Status Runner::MaterializeNames(const pps::v1::DatumInput& in, const std::string& base) {
  pfs::v1::GlobFileRequest req;
  req.set_repo(in.repo());
  req.set_ref(in.commit());
  req.set_pattern(in.dir() ? (in.path() == "/" ? "/**" : in.path() + "/**") : in.path());
  grpc::ClientContext ctx;
  auto reader = api_->GlobFile(&ctx, req);
  pfs::v1::FileInfo f;
  absl::Status st;
  while (st.ok() && reader->Read(&f)) {
    const std::string local = base + f.path();
    if (f.type() == pfs::v1::DIR) {
      st = MkdirAll(local);
      continue;
    }
    st = MkdirAll(local.substr(0, local.rfind('/')));
    if (!st.ok()) break;
    int fd = ::open(local.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) st = Errno("create " + local);
    if (fd >= 0) ::close(fd);
  }
  if (!st.ok()) {
    ctx.TryCancel();
    (void)reader->Finish();  // the local error is the one to report
    return st;
  }
  return FromGrpcStatus(reader->Finish());
}

absl::Status Runner::Materialize(const pps::v1::DatumInfo& datum, const std::string& pfs_dir,
                                 uint64_t* bytes) {
  for (const auto& in : datum.inputs()) {
    std::string base = pfs_dir + "/" + in.name();
    RETURN_IF_ERROR(MkdirAll(base));
    if (in.commit().empty()) continue;
    if (in.dir()) RETURN_IF_ERROR(MkdirAll(base + (in.path() == "/" ? "" : in.path())));
    if (in.empty_files()) {
      RETURN_IF_ERROR(MaterializeNames(in, base));
      continue;
    }
    pfs::v1::GetFileRequest req;
    req.set_repo(in.repo());
    req.set_ref(in.commit());
    req.set_path(in.path());
    grpc::ClientContext ctx;
    auto reader = api_->GetFile(&ctx, req);
    pfs::v1::GetFileResponse msg;
    int fd = -1;
    std::string local;
    absl::Status st;
    while (st.ok() && reader->Read(&msg)) {
      if (msg.has_file()) {
        if (fd >= 0) ::close(fd);
        local = base + msg.file().path();
        fd = ::open(local.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 && errno == ENOENT) {
          st = MkdirAll(local.substr(0, local.rfind('/')));
          if (st.ok()) fd = ::open(local.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        }
        if (st.ok() && fd < 0) st = Errno("create " + local);
      }
      const std::string& data = msg.data();
      for (size_t off = 0; st.ok() && off < data.size();) {
        ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          st = Errno("write " + local);
          break;
        }
        off += n;
      }
      *bytes += data.size();
    }
    if (fd >= 0) ::close(fd);
    if (!st.ok()) {
      ctx.TryCancel();
      (void)reader->Finish();  // the local error is the one to report
      return st;
    }
    RETURN_IF_ERROR(FromGrpcStatus(reader->Finish()));
  }
  return absl::OkStatus();
}

absl::Status Runner::SendResult(const pps::v1::LeaseResponse& lease, bool success,
                                const std::string& error, const std::string& log, bool truncated,
                                const pps::v1::ProcessStats& stats, const std::string& out_dir,
                                bool recovered) {
  std::vector<OutFile> files;
  std::string failure = error;
  if (success) {
    char real[PATH_MAX];
    if (::realpath(out_dir.c_str(), real) == nullptr) return Errno("realpath " + out_dir);
    absl::Status st = ListOutput(out_dir, real, "", &files);
    if (!st.ok()) {
      success = false;
      failure = std::string(st.message());
      files.clear();
    }
  }
  grpc::ClientContext ctx;
  pps::v1::FinishDatumResponse resp;
  auto writer = worker_->FinishDatum(&ctx, &resp);
  // The result and the first file share a message, a small file is one
  // message (path, data, eof), a large one spans messages of about
  // kMessageBytes; the last carries close. A datum with one small output is
  // one message.
  constexpr size_t kMessageBytes = 1 << 20;
  pps::v1::FinishDatumRequest msg;
  msg.set_lease(lease.lease());
  msg.set_success(success);
  msg.set_error(failure);
  msg.set_log(log);
  msg.set_log_truncated(truncated);
  msg.set_recovered(recovered);
  *msg.mutable_stats() = stats;
  size_t pending = msg.ByteSizeLong();
  bool ok = true;
  auto flush = [&] {
    ok = writer->Write(msg);
    msg.Clear();
    pending = 0;
  };
  if (buf_.empty()) buf_.resize(kMessageBytes);
  for (size_t i = 0; ok && i < files.size(); ++i) {
    // A message holds at most one file's start: the server applies a
    // message's path, then its data, then its eof.
    if (!msg.path().empty() || msg.eof() || !msg.data().empty()) flush();
    if (!ok) break;
    int fd = ::open(files[i].local.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      ok = false;
      break;
    }
    msg.set_path(files[i].path);
    uint64_t size = 0;
    while (ok) {
      ssize_t n = ::read(fd, buf_.data(), buf_.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        ok = false;
        break;
      }
      if (n == 0) break;
      msg.mutable_data()->append(buf_.data(), n);
      size += n;
      pending += n;
      if (pending >= kMessageBytes) flush();
    }
    ::close(fd);
    if (!ok) break;
    msg.set_eof(true);
    msg.set_size(size);
    pending += 16;
  }
  if (ok) {
    msg.set_close(true);
    writer->WriteLast(msg, grpc::WriteOptions());  // also ends the writes
  } else {
    writer->WritesDone();
  }
  return FromGrpcStatus(writer->Finish());
}

}  // namespace tusk::runner
