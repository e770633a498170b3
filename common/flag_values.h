#pragma once

// Parsing the values of command-line flags, shared by the daemons and the
// CLI. Errors are InvalidArgument and name the flag and the value.

#include <cstdint>
#include <initializer_list>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tusk {

// "16MiB", "64k", "1G", "1000" -> bytes (K, M, G are powers of 1024).
absl::StatusOr<uint64_t> ParseBytes(const std::string& flag, const std::string& s);

// "90s", "30m", "2h", "1h30m", "7d" or "0": a duration that is not negative.
absl::StatusOr<absl::Duration> ParseFlagDuration(const std::string& flag, const std::string& s);

// `s` if it is one of `choices`; otherwise InvalidArgument listing them.
absl::StatusOr<std::string> ParseChoice(const std::string& flag, const std::string& s,
                                        std::initializer_list<const char*> choices);

// An integer from `min` to `max`.
absl::StatusOr<int64_t> ParseInt(const std::string& flag, const std::string& s, int64_t min,
                                 int64_t max);

// A Kubernetes memory quantity in bytes: "128974848", "129M", "123Mi",
// "1.5Gi" (k M G T are powers of 1000, Ki Mi Gi Ti of 1024).
absl::StatusOr<uint64_t> ParseMemoryQuantity(const std::string& s);
// A memory limit for messages: "2 GiB", "64 MiB", "1000 bytes".
std::string FormatMemoryLimit(uint64_t n);

// A pipeline's resource_limits.processes when it sets none.
inline constexpr uint64_t kDefaultProcessLimit = 1024;

}  // namespace tusk
