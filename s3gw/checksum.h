#pragma once

// The checksums an S3 client may send with a body (Content-MD5, and
// x-amz-checksum-{crc32,crc32c,sha1,sha256} as a header or an aws-chunked
// trailer), computed as the body streams. Values are compared in S3's
// encoding: base64 of the big-endian digest.
//
// Not thread-safe; one per body.

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tusk::s3gw {

class BodyChecksum {
 public:
  // `algorithm`: "md5", "crc32", "crc32c", "sha1" or "sha256" (any case).
  // InvalidArgument for any other.
  static absl::StatusOr<std::unique_ptr<BodyChecksum>> Make(absl::string_view algorithm);
  virtual ~BodyChecksum() = default;
  virtual void Update(absl::string_view data) = 0;
  // The digest, base64 (as S3 headers carry it). Once.
  virtual std::string Base64() = 0;
};

// CRC-32 (IEEE, as zlib) and CRC-32C (Castagnoli) of `data`, continuing
// from `crc` (0 to start).
uint32_t Crc32(uint32_t crc, absl::string_view data);
uint32_t Crc32c(uint32_t crc, absl::string_view data);

// Whether header `name` (any case) is a body checksum, x-amz-checksum-ALG
// (its value the base64 digest); if so, *algorithm is ALG, lowercase.
bool IsChecksumHeader(absl::string_view name, std::string* algorithm);

}  // namespace tusk::s3gw
