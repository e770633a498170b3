#pragma once

// AwsChunkedDecoder: the body of an upload sent with Content-Encoding
// aws-chunked (x-amz-content-sha256 STREAMING-...), decoded as it arrives:
//
//   <hex size>[;chunk-signature=<sig>]\r\n<size bytes>\r\n ... 0[;...]\r\n
//   [<trailer name>:<value>\r\n ...]\r\n
//
// Only the chunks' bytes go to the output; the framing never does. Signed
// variants (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]) have every chunk's
// signature checked, chained from the request's seed signature; trailers
// (STREAMING-...-TRAILER, e.g. the CRC32 that boto3 >= 1.36 sends) are
// collected for the caller to check.
//
// Errors carry S3's code (http::kS3ErrorCodePayload): IncompleteBody for a
// body that ends early or is malformed, SignatureDoesNotMatch for a chunk
// whose signature differs. Not thread-safe; one per body.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/hash.h"
#include "http/sigv4_verify.h"

namespace tusk::s3gw {

class AwsChunkedDecoder {
 public:
  using Output = std::function<absl::Status(absl::string_view)>;

  // `content_sha256`: the request's x-amz-content-sha256 (one of the
  // STREAMING- values). `verified`: the request's checked signature, to
  // check chunk signatures against (nullopt: authentication is off).
  static absl::StatusOr<std::unique_ptr<AwsChunkedDecoder>> Make(
      const std::string& content_sha256, std::optional<http::VerifiedRequest> verified,
      Output output);

  // The next bytes of the encoded body.
  absl::Status Feed(absl::string_view data);
  // The encoded body ended: IncompleteBody unless it ended after the last
  // chunk (and its trailers).
  absl::Status Finish();

  uint64_t decoded_bytes() const { return decoded_; }
  // Trailer headers, names lowercase.
  const std::map<std::string, std::string>& trailers() const { return trailers_; }

 private:
  AwsChunkedDecoder() = default;
  absl::Status HeaderLine(absl::string_view line);
  absl::Status TrailerLine(absl::string_view line);
  absl::Status EndChunk();

  enum class State { kHeader, kData, kDataEnd, kTrailer, kDone };
  State state_ = State::kHeader;
  bool signed_ = false;
  bool trailer_ = false;
  std::optional<http::VerifiedRequest> verified_;
  Output output_;
  std::string line_;  // a header or trailer line being read
  uint64_t remaining_ = 0;
  std::string expected_signature_;
  std::string previous_signature_;
  Sha256Hasher chunk_hash_;
  uint64_t decoded_ = 0;
  bool last_chunk_ = false;
  std::map<std::string, std::string> trailers_;
};

}  // namespace tusk::s3gw
