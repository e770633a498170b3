#include "runner/spawn.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tusk::runner {
namespace {

// Everything the child reads, prepared before the clone (it may not
// allocate: another thread of the runner may hold the allocator's lock).
struct Child {
  const char* path;
  char* const* argv;
  char* const* envp;
  const char* stdin_path;
  const char* workdir;  // nullptr: stay
  int out_fd;
  const char* const* join;
  size_t njoin;
  // Written by the child when it fails before execve (the parent reads it
  // once clone returns: CLONE_VFORK resumes the parent only after the
  // child's execve or exit).
  int failed_errno = 0;
  const char* failed_step = nullptr;
  const char* failed_path = nullptr;
};

int ChildMain(void* arg) {
  Child* c = static_cast<Child*>(arg);
  auto fail = [c](const char* step, const char* path) {
    c->failed_errno = errno;
    c->failed_step = step;
    c->failed_path = path;
    _exit(127);
  };
  // Handlers are the runner's: back to the default before the mask opens.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++) {
    struct sigaction old {};
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    if (::sigaction(sig, nullptr, &old) != 0) continue;
    if (old.sa_handler != SIG_DFL || sig == SIGPIPE) ::sigaction(sig, &dfl, nullptr);
  }
  if (::setsid() < 0) fail("setsid", nullptr);
  // Into the cgroups first: from here on every instruction counts there.
  char pid[24];
  {
    long p = ::syscall(SYS_getpid);
    char rev[24];
    int n = 0;
    do {
      rev[n++] = static_cast<char>('0' + p % 10);
      p /= 10;
    } while (p > 0);
    for (int i = 0; i < n; i++) pid[i] = rev[n - 1 - i];
    pid[n] = '\0';
  }
  for (size_t i = 0; i < c->njoin; i++) {
    int fd = ::open(c->join[i], O_WRONLY | O_CLOEXEC);
    if (fd < 0) fail("join cgroup", c->join[i]);
    if (::write(fd, pid, std::strlen(pid)) < 0) fail("join cgroup", c->join[i]);
    ::close(fd);
  }
  int in = ::open(c->stdin_path, O_RDONLY | O_CLOEXEC);
  if (in < 0) fail("open stdin", c->stdin_path);
  if (::dup2(in, 0) < 0 || ::dup2(c->out_fd, 1) < 0 || ::dup2(c->out_fd, 2) < 0) {
    fail("dup2", nullptr);
  }
  if (c->workdir != nullptr && ::chdir(c->workdir) != 0) fail("chdir", c->workdir);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(c->path, c->argv, c->envp);
  fail("execve", c->path);
  return 127;
}

// argv0 as execvp would find it in the runner's PATH.
std::string Resolve(const std::string& argv0) {
  if (argv0.find('/') != std::string::npos) return argv0;
  const char* path = std::getenv("PATH");
  for (absl::string_view dir :
       absl::StrSplit(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin", ':')) {
    std::string p = absl::StrCat(dir.empty() ? "." : dir, "/", argv0);
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return argv0;  // execve fails with ENOENT, which is the error to report
}

}  // namespace

absl::StatusOr<pid_t> SpawnCommand(const SpawnSpec& spec, std::string* error) {
  if (spec.argv.empty()) return absl::InvalidArgumentError("no command");
  const std::string path = Resolve(spec.argv[0]);
  std::vector<std::string> argv_store = spec.argv, env_store = spec.env;
  std::vector<char*> argv, envp;
  for (auto& a : argv_store) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<const char*> join;
  for (const auto& j : spec.join) join.push_back(j.c_str());
  Child child{path.c_str(),
              argv.data(),
              envp.data(),
              spec.stdin_path.c_str(),
              spec.workdir.empty() ? nullptr : spec.workdir.c_str(),
              spec.out_fd,
              join.data(),
              join.size()};

  constexpr size_t kStack = 256 << 10;
  void* stack = ::mmap(nullptr, kStack, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return absl::InternalError(absl::StrCat("mmap: ", std::strerror(errno)));
  // No signal handler of the runner may run on the child's stack.
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = ::clone(ChildMain, static_cast<char*>(stack) + kStack,
                      CLONE_VM | CLONE_VFORK | SIGCHLD, &child);
  const int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::munmap(stack, kStack);
  if (pid < 0) return absl::InternalError(absl::StrCat("clone: ", std::strerror(clone_errno)));
  if (child.failed_step != nullptr) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    *error = absl::StrCat(std::string(child.failed_step) == "execve"
                              ? absl::StrCat("cannot run ", spec.argv[0])
                              : std::string(child.failed_step),
                          child.failed_path != nullptr && std::string(child.failed_step) != "execve"
                              ? absl::StrCat(" ", child.failed_path)
                              : "",
                          ": ", std::strerror(child.failed_errno));
    return pid_t{0};
  }
  return pid;
}

}  // namespace tusk::runner
