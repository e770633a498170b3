#include "runner/agent/agent_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "runner/agent/protocol.h"

namespace tusk::runner::agent {

absl::StatusOr<std::unique_ptr<AgentClient>> AgentClient::Start(const std::string& socket_path,
                                                                const AgentCommand& cmd) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("agent socket path too long: ", socket_path));
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  auto client = std::unique_ptr<AgentClient>(new AgentClient(fd));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return absl::UnavailableError(
        absl::StrCat("no exec agent at ", socket_path, ": ", std::strerror(errno)));
  }
  bool ok = true;
  for (const auto& a : cmd.argv) ok = ok && WriteFrame(fd, kArg, a);
  for (const auto& e : cmd.env) ok = ok && WriteFrame(fd, kEnv, e);
  ok = ok && WriteFrame(fd, kCwd, cmd.cwd) && WriteFrame(fd, kStdin, cmd.stdin_path) &&
       WriteFrame(fd, kRun, "");
  if (!ok) {
    return absl::UnavailableError(absl::StrCat("the exec agent at ", socket_path,
                                               " closed the connection (or an argument or "
                                               "variable is over 1 MiB)"));
  }
  return client;
}

AgentClient::~AgentClient() { ::close(fd_); }

absl::StatusOr<AgentEvent> AgentClient::Next() {
  char type;
  std::string payload;
  if (!ReadFrame(fd_, &type, &payload)) {
    return absl::UnavailableError("the exec agent went away while the command ran");
  }
  AgentEvent e;
  e.kind = AgentEvent::kOutput;
  switch (type) {
    case kOutput:
      e.output = std::move(payload);
      return e;
    case kFailed:
      e.kind = AgentEvent::kFailed;
      e.output = std::move(payload);
      return e;
    case kExit: {
      absl::string_view p = payload;
      if (absl::ConsumePrefix(&p, "exit ")) {
        e.kind = AgentEvent::kExit;
      } else if (absl::ConsumePrefix(&p, "signal ")) {
        e.kind = AgentEvent::kSignal;
      } else {
        break;
      }
      std::vector<absl::string_view> parts = absl::StrSplit(p, ' ');
      if (!absl::SimpleAtoi(parts[0], &e.code)) break;
      if (parts.size() == 3 && parts[1] == "oom" && absl::SimpleAtoi(parts[2], &e.memory_limit)) {
        e.oom_killed = true;
      } else if (parts.size() != 1) {
        break;
      }
      return e;
    }
    default:
      break;
  }
  return absl::DataLossError(
      absl::StrCat("the exec agent sent an unexpected frame '", std::string(1, type), "'"));
}

void AgentClient::Kill() {
  // Best effort: if the agent is gone, so is the command.
  (void)WriteFrame(fd_, kKill, "");
}

}  // namespace tusk::runner::agent
