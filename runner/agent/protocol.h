#pragma once

// The exec agent's wire protocol (tusk-exec-agent, runner/agent/README.md):
// frames of one type byte, a 4-byte big-endian length and the payload, over
// a unix socket in a volume the runner and the user's container share.
//
// Runner to agent, one command per connection: kArg (repeated, argv in
// order), kEnv (repeated, K=V: set over the agent's own environment, which
// is the image's), kCwd, kStdin (a file's path), then kRun.
// While the command runs: kKill kills its process group; closing the
// connection does too.
// Agent to runner: kOutput (stdout and stderr, interleaved as written), then
// one kExit ("exit N" or "signal N", followed by " oom LIMIT" when the
// container's memory cgroup OOM-killed a process while the command ran,
// LIMIT being its limit in bytes, 0 if unknown), or kFailed (why it could
// not start).
//
// Plain C++ and libc only: the agent is linked statically and runs in any
// image.

#include <cstdint>
#include <string>

namespace tusk::runner::agent {

enum FrameType : char {
  kArg = 'A',
  kEnv = 'E',
  kCwd = 'C',
  kStdin = 'I',
  kRun = 'R',
  kKill = 'K',
  kOutput = 'O',
  kExit = 'X',
  kFailed = 'F',
};

// Frames bigger than this are refused (an argv or env entry, an output chunk).
inline constexpr uint32_t kMaxFrame = 1 << 20;

// Writes one frame to `fd`; false on a write error.
bool WriteFrame(int fd, char type, const std::string& payload);
// Reads one frame from `fd` (blocking); false at end of stream, on an error
// or on a frame over kMaxFrame.
bool ReadFrame(int fd, char* type, std::string* payload);

}  // namespace tusk::runner::agent
