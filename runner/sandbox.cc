#include "runner/sandbox.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/flag_values.h"
#include "common/log.h"
#include "common/sandbox_paths.h"

namespace tusk::runner {
namespace {

// The host user sandboxed commands run as when the runner is root.
constexpr uid_t kSandboxUid = 65534;

// Joins the cgroups named before "--" (their cgroup.procs files), then runs
// the rest: every process the command starts is born inside the limits.
// Runs argv with stdout and stderr discarded; whether it exited 0.
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
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

std::string SandboxedCommand::LimitReason(bool failed) const {
  if (group_) {
    if (group_->OomKilled()) {
      return absl::StrCat("OOMKilled: the command went over its memory limit of ",
                          FormatMemoryLimit(memory_), " (resource_limits.memory) and was killed");
    }
    if (failed && group_->HitProcessLimit()) {
      return absl::StrCat("the command reached its limit of ", processes_,
                          " processes (resource_limits.processes): a fork failed");
    }
    return "";
  }
  if (failed && memory_ > 0) {
    return absl::StrCat("memory is limited to ", FormatMemoryLimit(memory_),
                        " of address space (RLIMIT_AS; resource_limits.memory): an allocation "
                        "past it fails");
  }
  return "";
}

bool OthersCanReach(const std::string& dir) {
  std::string p;
  for (absl::string_view part : absl::StrSplit(dir, '/', absl::SkipEmpty())) {
    p = absl::StrCat(p, "/", part);
    struct stat st;
    if (::stat(p.c_str(), &st) != 0 || !(st.st_mode & S_IXOTH)) return false;
  }
  return true;
}

bool Sandbox::DropsUid(const std::string& mode) { return mode != "none" && ::geteuid() == 0; }

absl::StatusOr<std::unique_ptr<Sandbox>> Sandbox::Open(const SandboxOptions& options) {
  auto s = std::unique_ptr<Sandbox>(new Sandbox(options));
  s->cgroups_ = Cgroups::Probe(options.runner_name);
  if (options.mode == "none") return s;
  s->drop_uid_ = DropsUid(options.mode);
  for (const char* name : kSandboxSystemDirs) {
    std::string p = absl::StrCat("/", name);
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      ssize_t len = ::readlink(p.c_str(), buf, sizeof(buf) - 1);
      if (len > 0)
        s->system_binds_.insert(s->system_binds_.end(), {"--symlink", std::string(buf, len), p});
    } else if (S_ISDIR(st.st_mode)) {
      s->system_binds_.insert(s->system_binds_.end(), {"--ro-bind", p, p});
    }
  }
  // The probe is a real attempt's command line with `true` as the command.
  AttemptSpec probe;
  probe.pfs_dir = options.work_dir;
  probe.workdir = "/";
  probe.cmd = {"true"};
  s->bwrap_ = true;
  auto cmd = s->Prepare(probe, "probe");
  bool works = cmd.ok() && RunQuietly((*cmd)->argv());
  if (!works) {
    s->bwrap_ = false;
    if (options.mode == "bwrap") {
      return absl::FailedPreconditionError(absl::StrCat(
          "bubblewrap (bwrap) is not installed or cannot make a sandbox here",
          s->drop_uid_ ? " (as uid 65534: unprivileged user namespaces must be allowed)" : ""));
    }
    LOG(WARNING) << "bubblewrap cannot make a sandbox here: commands run without one, as this "
                    "runner's user, with /pfs rewritten to the scratch directory";
  }
  return s;
}

std::string Sandbox::Describe() const {
  std::string limits = cgroups_ ? "limits by " + cgroups_->Describe()
                                : std::string("limits by rlimits (address space, processes)");
  if (!bwrap_) return "none (the runner's user, no namespaces); " + limits;
  return absl::StrCat("bwrap (user, pid, ipc, network namespaces; ",
                      drop_uid_ ? absl::StrCat("uid ", kSandboxUid, " on the host")
                                : absl::StrCat("the runner's uid ", ::geteuid()),
                      "; no capabilities; read-only system tree); ", limits);
}

std::vector<std::string> Sandbox::BwrapArgs(const AttemptSpec& spec) const {
  std::vector<std::string> a = {
      "bwrap",         "--unshare-user",       "--unshare-ipc",    "--unshare-pid",
      "--unshare-uts", "--unshare-cgroup-try", "--disable-userns", "--cap-drop",
      "ALL",           "--new-session",        "--die-with-parent"};
  if (!spec.network) a.push_back("--unshare-net");
  a.insert(a.end(), system_binds_.begin(), system_binds_.end());
  a.insert(a.end(), {"--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"});
  for (const auto& h : options_.hide) {
    struct stat st;
    if (!absl::StartsWith(h, "/tmp/") && ::stat(h.c_str(), &st) == 0) {
      a.insert(a.end(), {"--tmpfs", h});
    }
  }
  for (const auto& n : spec.inputs) {
    a.insert(a.end(), {"--ro-bind", spec.pfs_dir + "/" + n, "/pfs/" + n});
  }
  if (!spec.inputs.empty() || ::access((spec.pfs_dir + "/out").c_str(), F_OK) == 0) {
    a.insert(a.end(), {"--bind", spec.pfs_dir + "/out", "/pfs/out"});
  }
  for (const auto& [host, path] : spec.ro_binds) a.insert(a.end(), {"--ro-bind", host, path});
  a.insert(a.end(), {"--chdir", spec.workdir, "--"});
  a.insert(a.end(), spec.cmd.begin(), spec.cmd.end());
  return a;
}

absl::StatusOr<std::unique_ptr<SandboxedCommand>> Sandbox::Prepare(const AttemptSpec& spec,
                                                                   const std::string& attempt) {
  auto c = std::make_unique<SandboxedCommand>();
  c->memory_ = spec.memory;
  c->processes_ = spec.processes;
  std::vector<std::string>& argv = c->argv_;
  if (cgroups_) {
    auto group = cgroups_->Create(attempt, spec.memory, spec.processes);
    if (!group.ok()) return group.status();
    c->group_ = std::move(*group);
    // The command joins them itself before it runs (SpawnCommand).
    c->join_ = c->group_->procs_files();
  }
  if (bwrap_ && drop_uid_) {
    std::string out = spec.pfs_dir + "/out";
    if (::access(out.c_str(), F_OK) == 0 && ::chown(out.c_str(), kSandboxUid, kSandboxUid) != 0) {
      return absl::InternalError(absl::StrCat("chown ", out, ": ", std::strerror(errno)));
    }
    argv.insert(argv.end(), {"setpriv", absl::StrCat("--reuid=", kSandboxUid),
                             absl::StrCat("--regid=", kSandboxUid), "--clear-groups",
                             "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--"});
  }
  std::vector<std::string> rlimits;
  if (!cgroups_) {
    if (spec.memory > 0) rlimits.push_back(absl::StrCat("--as=", spec.memory));
    rlimits.push_back(absl::StrCat("--nproc=", spec.processes));
  }
  if (spec.timeout != absl::InfiniteDuration()) {
    // CPU seconds per process, a backstop behind the runner's own timeout.
    rlimits.push_back(absl::StrCat(
        "--cpu=", static_cast<int64_t>(std::ceil(absl::ToDoubleSeconds(spec.timeout))) + 1));
  }
  if (!rlimits.empty()) {
    argv.push_back("prlimit");
    argv.insert(argv.end(), rlimits.begin(), rlimits.end());
    argv.push_back("--");
  }
  if (bwrap_) {
    std::vector<std::string> b = BwrapArgs(spec);
    argv.insert(argv.end(), b.begin(), b.end());
  } else {
    argv.insert(argv.end(), spec.cmd.begin(), spec.cmd.end());
  }
  return c;
}

}  // namespace tusk::runner
