#pragma once

// The gRPC message limit every tusk process uses, tuskd and its clients
// alike: a message tuskd may send (a lease carrying a pipeline's transform, a
// batch of file data) is one every client accepts.

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace tusk {

inline constexpr int kMaxGrpcMessageBytes = 64 << 20;

// A channel to `address` with the shared limits and no transparent retries
// (insecure: loopback or a trusted network).
std::shared_ptr<grpc::Channel> NewChannel(const std::string& address);

// The shared limits applied to a server being built.
void ApplyMessageLimits(grpc::ServerBuilder* builder);

}  // namespace tusk
