#pragma once

// Helpers shared by the runner's files (runner.cc, runner_exec.cc,
// runner_agent.cc). Internal to runner.

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "proto/pps.pb.h"

namespace tusk::runner {

inline absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// `s` with /pfs/ pointing at the attempt's directory (runners without a
// sandbox that mounts it at /pfs).
inline std::string ToPfsDir(const std::string& s, const std::string& pfs_dir) {
  return absl::StrReplaceAll(s, {{"/pfs/", pfs_dir + "/"}});
}

// Whether a command that exited with `code` succeeded: 0, or one of
// transform.accept_return_code.
inline bool AcceptedExit(const pps::v1::Transform& t, int code) {
  if (code == 0) return true;
  for (int64_t c : t.accept_return_code()) {
    if (c == code) return true;
  }
  return false;
}

}  // namespace tusk::runner
