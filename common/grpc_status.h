#pragma once

// Conversions between absl::Status and grpc::Status. The gRPC boundary (server
// handlers and client stubs) converts once, here; canonical codes map 1:1.

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tusk {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// For handlers: copies a result into the response, or converts its error.
template <typename T>
grpc::Status Fill(absl::StatusOr<T> result, T* out) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *out = std::move(*result);
  return grpc::Status::OK;
}

}  // namespace tusk
