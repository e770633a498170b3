#pragma once

// AgentClient: the runner's side of the exec agent (protocol.h). Starts one
// command in the user's container and streams its output and end.
//
// Lifecycle: Start(), then Next() until it returns an exit or failure event,
// polling fd() between calls if it wants to do other work (heartbeats);
// Kill() at any time. The destructor closes the connection, which kills a
// command still running. Not thread-safe.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tusk::runner::agent {

struct AgentCommand {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // K=V
  std::string cwd = "/";
  std::string stdin_path = "/dev/null";  // a path in the user's container
};

struct AgentEvent {
  enum Kind { kOutput, kExit, kSignal, kFailed } kind = kOutput;
  std::string output;  // kOutput: a chunk; kFailed: why it could not start
  int code = 0;        // kExit: the status; kSignal: the signal
  // kExit, kSignal: the container's memory limit killed a process of the
  // command; memory_limit is that limit in bytes (0: unknown).
  bool oom_killed = false;
  uint64_t memory_limit = 0;
};

class AgentClient {
 public:
  // Connects to the agent at `socket_path` and starts `cmd`. Unavailable if
  // no agent listens there.
  static absl::StatusOr<std::unique_ptr<AgentClient>> Start(const std::string& socket_path,
                                                            const AgentCommand& cmd);
  ~AgentClient();
  AgentClient(const AgentClient&) = delete;
  AgentClient& operator=(const AgentClient&) = delete;

  // Readable when Next() will not block.
  int fd() const { return fd_; }
  // The next event (blocking). Unavailable if the agent went away.
  absl::StatusOr<AgentEvent> Next();
  // Kills the command's process group; its end still comes through Next().
  void Kill();

 private:
  explicit AgentClient(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace tusk::runner::agent
