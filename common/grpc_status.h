#pragma once

// Conversions between absl::Status and grpc::Status. The gRPC boundary (server
// handlers and client stubs) converts once, here; canonical codes map 1:1.

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace tusk {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace tusk
