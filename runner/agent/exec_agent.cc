// tusk-exec-agent: runs the runner's commands inside the user's container.
// Statically linked (libc only), so it runs in any image, whatever its libc:
// an init container copies it into a volume shared with the user's
// container, whose entrypoint it becomes. It listens on a unix socket in a
// volume shared with the runner and runs one command per connection (see
// protocol.h): in its own session, stdout and stderr into one stream back to
// the runner, killed with its process group on kKill or when the runner goes
// away.
//
// Usage: tusk-exec-agent --socket PATH
// Exit codes: 0 never (it serves until killed), 1 cannot listen, 2 bad usage.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "runner/agent/protocol.h"

namespace {

using namespace tusk::runner::agent;  // NOLINT: the frame types

struct Command {
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string cwd = "/";
  std::string stdin_path = "/dev/null";
};

// Reads a command's frames up to kRun; false if the connection ended first
// or sent something else.
bool ReadCommand(int conn, Command* c, std::string* error) {
  char type;
  std::string payload;
  while (ReadFrame(conn, &type, &payload)) {
    switch (type) {
      case kArg:
        c->argv.push_back(payload);
        break;
      case kEnv:
        c->env.push_back(payload);
        break;
      case kCwd:
        c->cwd = payload;
        break;
      case kStdin:
        c->stdin_path = payload;
        break;
      case kRun:
        if (c->argv.empty()) {
          *error = "the command is empty";
          return false;
        }
        return true;
      default:
        *error = std::string("unexpected frame '") + type + "' before run";
        return false;
    }
  }
  *error = "the connection ended before run";
  return false;
}

// In the child: the command's session, stdin, output, directory; then exec.
[[noreturn]] void Exec(const Command& c, int out_fd, int err_pipe) {
  ::setsid();
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  auto fail = [&](const std::string& what) {
    std::string msg = what + ": " + std::strerror(errno);
    ssize_t ignored = ::write(err_pipe, msg.data(), msg.size());
    (void)ignored;
    ::_exit(127);
  };
  int in = ::open(c.stdin_path.c_str(), O_RDONLY);
  if (in < 0) fail("cannot open stdin " + c.stdin_path);
  if (::dup2(in, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(out_fd, 2) < 0) fail("dup2");
  if (::chdir(c.cwd.c_str()) != 0) fail("cannot enter " + c.cwd);
  // The image's environment (the agent's own: the container's ENV), with
  // the runner's variables over it; PATH lookup uses the result, as a shell
  // in the image would.
  for (const auto& e : c.env) {
    size_t eq = e.find('=');
    if (eq != std::string::npos && eq > 0) ::setenv(e.substr(0, eq).c_str(), e.c_str() + eq + 1, 1);
  }
  std::vector<char*> argv;
  for (const auto& a : c.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execvp(argv[0], argv.data());
  fail("cannot run " + c.argv[0]);
  ::_exit(127);  // fail does not return
}

// The kernel's count of OOM kills in this container's memory cgroup (v1's
// memory.oom_control, v2's memory.events); -1 when neither is readable.
long long OomKills() {
  for (const char* path :
       {"/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events"}) {
    FILE* f = std::fopen(path, "re");
    if (f == nullptr) continue;
    char line[256];
    long long n = -1;
    while (std::fgets(line, sizeof(line), f) != nullptr) {
      if (std::sscanf(line, "oom_kill %lld", &n) == 1) break;
    }
    std::fclose(f);
    if (n >= 0) return n;
  }
  return -1;
}

// The container's memory limit in bytes; 0 if none or unknown.
unsigned long long MemoryLimit() {
  unsigned long long v = 0;
  for (const char* path :
       {"/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"}) {
    FILE* f = std::fopen(path, "re");
    if (f == nullptr) continue;
    int got = std::fscanf(f, "%llu", &v);
    std::fclose(f);
    if (got == 1) return v >= (1ULL << 60) ? 0 : v;  // v1's "no limit" is huge
  }
  return 0;
}

void Serve(int conn) {
  Command c;
  std::string error;
  if (!ReadCommand(conn, &c, &error)) {
    WriteFrame(conn, kFailed, error);
    return;
  }
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    WriteFrame(conn, kFailed, std::string("pipe: ") + std::strerror(errno));
    return;
  }
  const long long oom_before = OomKills();
  pid_t pid = ::fork();
  if (pid < 0) {
    WriteFrame(conn, kFailed, std::string("fork: ") + std::strerror(errno));
    return;
  }
  if (pid == 0) Exec(c, out[1], err[1]);
  ::close(out[1]);
  ::close(err[1]);
  // The exec error pipe closes on a successful exec (CLOEXEC) and carries
  // the reason otherwise.
  std::string why;
  char buf[65536];
  for (ssize_t n; (n = ::read(err[0], buf, sizeof(buf))) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    why.append(buf, n);
  }
  ::close(err[0]);
  if (!why.empty()) {
    ::close(out[0]);
    ::waitpid(pid, nullptr, 0);
    WriteFrame(conn, kFailed, why);
    return;
  }
  bool killed = false;
  for (;;) {
    pollfd fds[2] = {{out[0], POLLIN, 0}, {conn, POLLIN, 0}};
    if (::poll(fds, killed ? 1 : 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::read(out[0], buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // every writer closed: the command ended
      if (!WriteFrame(conn, kOutput, std::string(buf, n)) && !killed) {
        ::kill(-pid, SIGKILL);
        killed = true;
      }
    }
    if (!killed && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      char type;
      std::string payload;
      // A kill, or the runner went away: the command goes with it.
      if (!ReadFrame(conn, &type, &payload) || type == kKill) {
        ::kill(-pid, SIGKILL);
        killed = true;
      }
    }
  }
  ::close(out[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ::kill(-pid, SIGKILL);  // what the command left running in its session
  std::string result = WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                           : "exit " + std::to_string(WEXITSTATUS(status));
  // The container's memory limit killed (part of) the command.
  const long long oom_after = OomKills();
  if (oom_before >= 0 && oom_after > oom_before) {
    result += " oom " + std::to_string(MemoryLimit());
  }
  WriteFrame(conn, kExit, result);
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket_path;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--socket" && i + 1 < argc) {
      socket_path = argv[++i];
    } else if (a.rfind("--socket=", 0) == 0) {
      socket_path = a.substr(9);
    } else if (a == "-h" || a == "--help") {
      std::printf(
          "Usage: tusk-exec-agent --socket PATH\n"
          "Runs tusk-runner's commands in this container (one per connection).\n");
      return 0;
    } else {
      std::fprintf(stderr, "tusk-exec-agent: unknown argument '%s'\n", a.c_str());
      return 2;
    }
  }
  if (socket_path.empty()) {
    std::fprintf(stderr, "tusk-exec-agent: --socket PATH is required\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  // Reap nothing by accident: children are waited for explicitly.
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    std::fprintf(stderr, "tusk-exec-agent: socket path too long: %s\n", socket_path.c_str());
    return 2;
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ::unlink(socket_path.c_str());
  // Only this user (the container's) may connect.
  mode_t old = ::umask(0077);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd, 4) != 0) {
    std::fprintf(stderr, "tusk-exec-agent: cannot listen on %s: %s\n", socket_path.c_str(),
                 std::strerror(errno));
    return 1;
  }
  ::umask(old);
  std::fprintf(stderr, "tusk-exec-agent: listening on %s\n", socket_path.c_str());
  for (;;) {
    int conn = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      std::fprintf(stderr, "tusk-exec-agent: accept: %s\n", std::strerror(errno));
      return 1;
    }
    Serve(conn);
    ::close(conn);
  }
}
