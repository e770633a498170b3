#pragma once

// Error-handling idiom for tusk (see shared/STYLE.md).
//
// Anything that can fail returns absl::Status or absl::StatusOr<T>. These macros
// propagate errors early:
//
//   RETURN_IF_ERROR(store->Put(key, data));
//   ASSIGN_OR_RETURN(auto node, ReadNode(hash));
//
// Third-party errors (RocksDB, gRPC, curl, librdkafka) are converted once, at the
// edge of the component that wraps the library; their conversions live there.

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TUSK_STATUS_CONCAT_INNER_(a, b) a##b
#define TUSK_STATUS_CONCAT_(a, b) TUSK_STATUS_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                    \
  do {                                           \
    ::absl::Status tusk_status_ = (expr);        \
    if (!tusk_status_.ok()) return tusk_status_; \
  } while (0)

#define TUSK_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr)  \
  auto statusor = (rexpr);                                 \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(*statusor)

#define ASSIGN_OR_RETURN(lhs, rexpr) \
  TUSK_ASSIGN_OR_RETURN_IMPL_(TUSK_STATUS_CONCAT_(tusk_statusor_, __LINE__), lhs, rexpr)

namespace tusk {

// Returns `status` with `context` prefixed to its message, keeping its code.
absl::Status Annotate(const absl::Status& status, absl::string_view context);

// The status of a Status or a StatusOr, for code that handles either.
inline const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

}  // namespace tusk
