#pragma once

// Small file-system helpers shared by tuskd and the runner.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tusk {

// Creates `dir` and its missing parents (like mkdir -p). Internal error
// naming the path that could not be made.
absl::Status MkdirAll(const std::string& dir);

// Removes `path` and everything beneath it (like rm -rf; symlinks are removed,
// not followed). OK if it does not exist.
absl::Status RemoveAll(const std::string& path);

// Removes everything inside `dir` and keeps `dir` (made if missing).
absl::Status EmptyDir(const std::string& dir);

// Replaces `path` with `content`, readable and writable by its owner only
// (mode 0600) from the moment it exists: for tokens and keys. Atomic (a
// temporary file renamed over it) and durable when it returns.
absl::Status WriteSecretFile(const std::string& path, const std::string& content);

// The whole of a small file. NotFound if it is missing; InvalidArgument if
// it is longer than `max_bytes`; Internal for other errors.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes);

}  // namespace tusk
