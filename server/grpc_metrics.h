#pragma once

// A gRPC server interceptor that counts every call of every service by
// method and status code (tusk_grpc_requests_total), times it
// (tusk_grpc_request_duration_seconds) and keeps the calls in flight
// (tusk_grpc_requests_in_flight). Install with
// builder.experimental().SetInterceptorCreators.

#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <vector>

namespace tusk::server {

std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
MetricsInterceptors();

}  // namespace tusk::server
