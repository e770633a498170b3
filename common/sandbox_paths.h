#pragma once

// What of the host's root a local runner's sandboxed command sees, read-only
// (runner/sandbox.cc binds them; server/local_runners.cc checks specs
// against them): the system, not the home directories, /root, /var or /srv.

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace tusk {

inline constexpr const char* kSandboxSystemDirs[] = {"usr", "etc",   "opt",   "bin",   "sbin",
                                                     "lib", "lib32", "lib64", "libx32"};

// The system directory `path` (absolute) is in, or nullptr: nothing can be
// mounted there in the sandbox (those binds are read-only).
inline const char* SandboxSystemDirOf(const std::string& path) {
  for (const char* d : kSandboxSystemDirs) {
    const std::string top = absl::StrCat("/", d);
    if (path == top || absl::StartsWith(path, top + "/")) return d;
  }
  if (path == "/dev" || absl::StartsWith(path, "/dev/") || path == "/proc" ||
      absl::StartsWith(path, "/proc/")) {
    return path.substr(1, 4) == "dev" ? "dev" : "proc";
  }
  return nullptr;
}

}  // namespace tusk
