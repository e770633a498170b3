#pragma once

// UrlReader: the content behind one http://, https:// or s3:// URL, read in
// order, with the retries and resumption of S3Client (s3://) or their
// equivalent for plain HTTP: failures before the body are retried with
// backoff; a download that breaks in the middle continues with a Range
// request when the server offers ranges and a validator (ETag or
// Last-Modified, sent back as If-Range), and fails otherwise.
//
// Not thread-safe; one per stream. Owns its connection.

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "http/s3.h"

namespace tusk::http {

class UrlReader {
 public:
  // True for the URL schemes UrlReader opens.
  static bool IsUrl(const std::string& s);
  // Opens `url` (the request is sent; errors such as 404 show here).
  // `s3` configures s3:// URLs (endpoint, region, credentials).
  static absl::StatusOr<std::unique_ptr<UrlReader>> Open(const std::string& url,
                                                         const S3Options& s3);
  virtual ~UrlReader() = default;

  // Up to `n` bytes; 0 at the end.
  virtual absl::StatusOr<size_t> Read(char* buf, size_t n) = 0;
  // The content's length, or -1 when the server did not say.
  virtual int64_t size() const = 0;
};

}  // namespace tusk::http
