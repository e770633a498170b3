#include "runner/runner.h"

#include <dirent.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"

extern char** environ;

namespace tusk::runner {
namespace {

using google::protobuf::util::TimeUtil;

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

void RemoveTree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    if (DIR* d = ::opendir(path.c_str())) {
      while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") RemoveTree(path + "/" + n);
      }
      ::closedir(d);
    }
    ::chmod(path.c_str(), 0700);
    ::rmdir(path.c_str());
  } else {
    ::unlink(path.c_str());
  }
}

// Runs argv and reports whether it exited 0 (used to probe for bwrap).
bool RunQuietly(const std::vector<std::string>& argv) {
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Keeps the first and last `cap/2` bytes of a stream.
class BoundedLog {
 public:
  explicit BoundedLog(size_t cap) : half_(cap / 2) {}
  void Append(absl::string_view s) {
    total_ += s.size();
    size_t to_head = std::min(s.size(), half_ - std::min(half_, head_.size()));
    head_.append(s.data(), to_head);
    s.remove_prefix(to_head);
    if (s.empty()) return;
    tail_.append(s.data(), s.size());
    if (tail_.size() > 2 * half_) tail_.erase(0, tail_.size() - half_);
  }
  std::string Get(bool* truncated) const {
    if (tail_.size() > half_) {
      *truncated = true;
      return absl::StrCat(head_, "\n[... ", total_ - head_.size() - half_, " bytes cut ...]\n",
                          tail_.substr(tail_.size() - half_));
    }
    *truncated = false;
    return head_ + tail_;
  }

 private:
  size_t half_;
  size_t total_ = 0;
  std::string head_, tail_;
};

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
        return absl::FailedPreconditionError(absl::StrCat(
            "symlink /pfs/out", r, " points outside /pfs/out (to ", target, ")"));
      } else {
        host = out + rel + "/" + target;
      }
      char resolved[PATH_MAX];
      if (::realpath(host.c_str(), resolved) == nullptr ||
          !absl::StartsWith(std::string(resolved), real_out + "/")) {
        return absl::FailedPreconditionError(absl::StrCat(
            "symlink /pfs/out", r, " points outside /pfs/out (to ", target, ")"));
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

std::string ToPfsDir(const std::string& s, const std::string& pfs_dir) {
  return absl::StrReplaceAll(s, {{"/pfs/", pfs_dir + "/"}});
}

}  // namespace

absl::StatusOr<std::unique_ptr<Runner>> Runner::Open(const RunnerOptions& options) {
  if (options.address.empty()) return absl::InvalidArgumentError("tuskd address is not set");
  if (options.pipeline.empty()) return absl::InvalidArgumentError("pipeline is not set");
  if (options.work_dir.empty()) return absl::InvalidArgumentError("work directory is not set");
  auto r = std::unique_ptr<Runner>(new Runner(options));
  RETURN_IF_ERROR(MkdirAll(options.work_dir));
  if (options.sandbox != "none") {
    // The host's root, entry by entry, so that /pfs can be created on top.
    if (DIR* d = ::opendir("/")) {
      while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n == "." || n == ".." || n == "proc" || n == "dev" || n == "tmp" || n == "pfs") continue;
        std::string p = "/" + n;
        struct stat st;
        if (::lstat(p.c_str(), &st) != 0) continue;
        if (S_ISLNK(st.st_mode)) {
          char buf[4096];
          ssize_t len = ::readlink(p.c_str(), buf, sizeof(buf) - 1);
          if (len <= 0) continue;
          r->root_binds_.insert(r->root_binds_.end(), {"--symlink", std::string(buf, len), p});
        } else if (S_ISDIR(st.st_mode)) {
          r->root_binds_.insert(r->root_binds_.end(), {"--ro-bind", p, p});
        }
      }
      ::closedir(d);
    }
    std::vector<std::string> probe = {"bwrap"};
    probe.insert(probe.end(), r->root_binds_.begin(), r->root_binds_.end());
    probe.insert(probe.end(), {"--dev", "/dev", "--proc", "/proc", "--tmpfs", "/pfs", "true"});
    r->bwrap_ = RunQuietly(probe);
    if (!r->bwrap_) {
      if (options.sandbox == "bwrap") {
        return absl::FailedPreconditionError(
            "bubblewrap (bwrap) is not installed or cannot create a sandbox here");
      }
      TUSK_LOG(WARNING) << "bubblewrap is not available: commands run without a sandbox, with /pfs "
                           "rewritten to the scratch directory";
    }
  }
  auto channel = grpc::CreateChannel(options.address, grpc::InsecureChannelCredentials());
  r->api_ = pfs::v1::API::NewStub(channel);
  r->worker_ = pps::v1::Worker::NewStub(channel);
  return r;
}

absl::Status Runner::Run(const std::atomic<bool>* stop) {
  absl::Duration backoff = absl::Milliseconds(100);
  while (!stop->load()) {
    pps::v1::LeaseRequest req;
    req.set_pipeline(options_.pipeline);
    req.set_runner(options_.name);
    req.set_wait_ms(options_.lease_wait_ms);
    pps::v1::LeaseResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(options_.lease_wait_ms + 10000));
    grpc::Status s = worker_->Lease(&ctx, req, &resp);
    if (!s.ok()) {
      absl::Status st = FromGrpcStatus(s);
      if (st.code() == absl::StatusCode::kNotFound) return st;
      TUSK_LOG(WARNING) << "lease from " << options_.address << ": " << st << "; retrying";
      absl::SleepFor(backoff);
      backoff = std::min(backoff * 2, absl::Seconds(5));
      continue;
    }
    backoff = absl::Milliseconds(100);
    if (resp.lease().empty()) continue;
    absl::Status st = RunDatum(resp);
    if (!st.ok()) TUSK_LOG(WARNING) << "datum " << resp.datum().id().substr(0, 12) << ": " << st;
  }
  return absl::OkStatus();
}

absl::Status Runner::RunDatum(const pps::v1::LeaseResponse& lease) {
  std::string dir = absl::StrCat(options_.work_dir, "/", lease.lease());
  std::string pfs_dir = dir + "/pfs";
  RemoveTree(dir);
  RETURN_IF_ERROR(MkdirAll(pfs_dir + "/out"));
  std::string log;
  bool truncated = false;
  std::string failure;
  absl::Status st = Materialize(lease.datum(), pfs_dir);
  if (!st.ok()) {
    failure = absl::StrCat("materializing inputs: ", st.message());
  } else {
    auto run = Execute(lease, pfs_dir, &log, &truncated);
    if (!run.ok()) {
      RemoveTree(dir);
      return run.status();  // the lease was lost: someone else runs it now
    }
    failure = *run;
  }
  st = SendResult(lease, failure.empty(), failure, log, truncated, pfs_dir + "/out");
  RemoveTree(dir);
  return st;
}

absl::Status Runner::Materialize(const pps::v1::DatumInfo& datum, const std::string& pfs_dir) {
  for (const auto& in : datum.inputs()) {
    std::string base = pfs_dir + "/" + in.name();
    RETURN_IF_ERROR(MkdirAll(base));
    if (in.commit().empty()) continue;
    if (in.dir()) RETURN_IF_ERROR(MkdirAll(base + (in.path() == "/" ? "" : in.path())));
    pfs::v1::GetFileRequest req;
    req.set_repo(in.repo());
    req.set_ref(in.commit());
    req.set_path(in.path());
    grpc::ClientContext ctx;
    auto reader = api_->GetFile(&ctx, req);
    pfs::v1::GetFileResponse msg;
    std::ofstream f;
    while (reader->Read(&msg)) {
      if (msg.has_file()) {
        if (f.is_open()) f.close();
        std::string local = base + msg.file().path();
        RETURN_IF_ERROR(MkdirAll(local.substr(0, local.rfind('/'))));
        f.open(local, std::ios::binary | std::ios::trunc);
        if (!f) return Errno("create " + local);
      }
      if (!msg.data().empty()) f.write(msg.data().data(), msg.data().size());
    }
    if (f.is_open()) f.close();
    RETURN_IF_ERROR(FromGrpcStatus(reader->Finish()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Runner::Execute(const pps::v1::LeaseResponse& lease,
                                            const std::string& pfs_dir, std::string* log,
                                            bool* truncated) {
  const auto& t = lease.transform();
  if (t.cmd().empty()) return std::string("the transform has no cmd");
  // argv
  std::vector<std::string> argv;
  std::string workdir = t.working_dir().empty() ? "/pfs" : t.working_dir();
  if (bwrap_) {
    argv = {"bwrap"};
    argv.insert(argv.end(), root_binds_.begin(), root_binds_.end());
    argv.insert(argv.end(), {"--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"});
    for (const auto& h : options_.hide) {
      struct stat st;
      if (!absl::StartsWith(h, "/tmp/") && ::stat(h.c_str(), &st) == 0) {
        argv.insert(argv.end(), {"--tmpfs", h});
      }
    }
    std::set<std::string> names;
    for (const auto& in : lease.datum().inputs()) names.insert(in.name());
    for (const auto& n : names) {
      argv.insert(argv.end(), {"--ro-bind", pfs_dir + "/" + n, "/pfs/" + n});
    }
    argv.insert(argv.end(), {"--bind", pfs_dir + "/out", "/pfs/out", "--chdir", workdir,
                             "--unshare-pid", "--die-with-parent", "--"});
    for (const auto& c : t.cmd()) argv.push_back(c);
  } else {
    for (const auto& c : t.cmd()) argv.push_back(ToPfsDir(c, pfs_dir));
    workdir = ToPfsDir(workdir == "/pfs" ? "/pfs/" : workdir, pfs_dir);
  }
  // Environment: PATH and locale from here, then the spec's, then ours.
  std::map<std::string, std::string> env;
  for (const char* keep : {"PATH", "LANG", "LC_ALL", "TZ"}) {
    if (const char* v = ::getenv(keep)) env[keep] = v;
  }
  if (!env.count("PATH")) env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  env["HOME"] = "/tmp";
  for (const auto& [k, v] : t.env()) env[k] = v;
  std::string pfs_root = bwrap_ ? "/pfs" : pfs_dir;
  for (const auto& in : lease.datum().inputs()) {
    env[in.name()] = pfs_root + "/" + in.name() + (in.path() == "/" ? "" : in.path());
  }
  env["TUSK_JOB_ID"] = env["PACH_JOB_ID"] = lease.job();
  env["TUSK_DATUM_ID"] = env["PACH_DATUM_ID"] = lease.datum().id();
  env["TUSK_OUTPUT_COMMIT"] = env["PACH_OUTPUT_COMMIT_ID"] = lease.output_commit().id();
  env["TUSK_PFS"] = pfs_root;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);

  // stdin from a file, so a large stdin cannot deadlock against the output pipe.
  std::string stdin_path = pfs_dir + "/../stdin";
  {
    std::ofstream f(stdin_path, std::ios::binary | std::ios::trunc);
    for (const auto& line : t.stdin()) f << (bwrap_ ? line : ToPfsDir(line, pfs_dir)) << "\n";
  }
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return Errno("pipe");
  pid_t pid = ::fork();
  if (pid < 0) return Errno("fork");
  if (pid == 0) {
    ::setsid();
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    int in = ::open(stdin_path.c_str(), O_RDONLY);
    ::dup2(in, 0);
    ::dup2(pipefd[1], 1);
    ::dup2(pipefd[1], 2);
    if (!bwrap_ && ::chdir(workdir.c_str()) != 0) ::_exit(126);
    std::vector<char*> args, envp;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    ::execvpe(args[0], args.data(), envp.data());
    std::string msg = absl::StrCat("cannot run ", argv[0], ": ", std::strerror(errno), "\n");
    (void)!::write(2, msg.data(), msg.size());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  BoundedLog out(options_.max_log_bytes);
  absl::Time start = absl::Now();
  absl::Duration timeout = absl::InfiniteDuration();
  if (lease.has_datum_timeout()) {
    int64_t ns = TimeUtil::DurationToNanoseconds(lease.datum_timeout());
    if (ns > 0) timeout = absl::Nanoseconds(ns);
  }
  absl::Duration beat = absl::Milliseconds(std::max<uint32_t>(200, lease.heartbeat_ms()));
  absl::Time next_beat = absl::Now() + beat;
  bool timed_out = false, lost = false;
  char buf[16384];
  while (true) {
    pollfd p{pipefd[0], POLLIN, 0};
    int n = ::poll(&p, 1, 100);
    if (n > 0) {
      ssize_t r = ::read(pipefd[0], buf, sizeof(buf));
      if (r > 0) {
        out.Append(absl::string_view(buf, r));
        continue;
      }
      if (r == 0) break;  // every writer closed: the command ended
      if (errno != EINTR && errno != EAGAIN) break;
    }
    absl::Time now = absl::Now();
    if (!timed_out && now - start > timeout) {
      timed_out = true;
      ::kill(-pid, SIGKILL);
    }
    if (now >= next_beat) {
      next_beat = now + beat;
      pps::v1::HeartbeatRequest hb;
      hb.set_runner(options_.name);
      hb.add_leases(lease.lease());
      pps::v1::HeartbeatResponse hr;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      if (worker_->Heartbeat(&ctx, hb, &hr).ok() && hr.lost_size() > 0) {
        lost = true;
        ::kill(-pid, SIGKILL);
      }
    }
  }
  ::close(pipefd[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ::kill(-pid, SIGKILL);  // anything the command left behind in its session
  *log = out.Get(truncated);
  if (lost) return absl::AbortedError("lease lost while the command ran");
  if (timed_out) {
    return absl::StrCat("timed out after ", absl::FormatDuration(timeout));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return std::string();
  if (WIFEXITED(status)) return absl::StrCat("command exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("command killed by signal ", WTERMSIG(status));
  return std::string("command ended abnormally");
}

absl::Status Runner::SendResult(const pps::v1::LeaseResponse& lease, bool success,
                                const std::string& error, const std::string& log, bool truncated,
                                const std::string& out_dir) {
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
  pps::v1::FinishDatumRequest first;
  first.set_lease(lease.lease());
  first.set_success(success);
  first.set_error(failure);
  first.set_log(log);
  first.set_log_truncated(truncated);
  bool ok = writer->Write(first);
  std::string buf(1 << 20, '\0');
  for (size_t i = 0; ok && i < files.size(); ++i) {
    std::ifstream f(files[i].local, std::ios::binary);
    if (!f) {
      ok = false;
      break;
    }
    pps::v1::FinishDatumRequest msg;
    msg.set_path(files[i].path);
    uint64_t size = 0;
    while (f) {
      f.read(buf.data(), buf.size());
      std::streamsize n = f.gcount();
      if (n <= 0) break;
      msg.set_data(buf.data(), n);
      size += n;
      if (!(ok = writer->Write(msg))) break;
      msg.Clear();
    }
    if (!ok) break;
    msg.set_eof(true);
    msg.set_size(size);
    ok = writer->Write(msg);
  }
  if (ok) {
    pps::v1::FinishDatumRequest close;
    close.set_close(true);
    writer->Write(close);
  }
  writer->WritesDone();
  return FromGrpcStatus(writer->Finish());
}

}  // namespace tusk::runner
