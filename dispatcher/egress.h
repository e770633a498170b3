#pragma once

// Egress: where a pipeline's output goes after each successful job
// (PipelineSpec.egress). The dispatcher walks the output commit's files and
// hands them, in path order, to an EgressWriter; the server supplies the
// writer (S3 over HTTP: server/s3_egress.h), so that the dispatcher knows no
// transport.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tusk::dispatcher {

// Writes one egress's objects. Lifecycle: made by an EgressOpener for one
// attempt; then Begin, Write..., End per file; then Finish once. A writer
// may upload in the background: an error can surface at a later call or at
// Finish, and then every later call returns it. Not thread-safe.
class EgressWriter {
 public:
  virtual ~EgressWriter() = default;
  // Starts the object for the file at `path` (relative to the commit's
  // root, without a leading '/'), `size` bytes long.
  virtual absl::Status Begin(const std::string& path, uint64_t size) = 0;
  // The file's next bytes.
  virtual absl::Status Write(std::string data) = 0;
  // The file is complete (its `size` bytes written).
  virtual absl::Status End() = 0;
  // Waits until every object is stored; the first error if one was not.
  // Dropping a writer without Finish abandons what is still in flight.
  virtual absl::Status Finish() = 0;
};

// Opens a writer into `url` (s3://BUCKET/PREFIX, as checked by
// NormalizePipelineSpec). Called from a dispatcher driver thread.
using EgressOpener =
    std::function<absl::StatusOr<std::unique_ptr<EgressWriter>>(const std::string& url)>;

}  // namespace tusk::dispatcher
