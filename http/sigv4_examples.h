#pragma once

// AWS's documented SigV4 examples (S3 API reference, "Signature Calculations
// for the Authorization Header", "... Query String Parameters" and "...
// Transferring Payload in Multiple Chunks"), shared by the tests of the
// verifier (http/sigv4_test.cc) and of the gateway's body decoding
// (s3gw/body_test.cc). For tests only.

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "http/sigv4_verify.h"

namespace tusk::http::examples {

inline constexpr char kKey[] = "AKIAIOSFODNN7EXAMPLE";
inline constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

// 2013-05-24T00:00:00Z, when the examples were signed.
inline absl::Time Time() {
  return absl::FromCivil(absl::CivilSecond(2013, 5, 24, 0, 0, 0), absl::UTCTimeZone());
}

inline SecretLookup Secrets() {
  return [](const std::string& key) -> absl::StatusOr<std::string> {
    if (key == kKey) return std::string(kSecret);
    return absl::NotFoundError(key);
  };
}

// The aws-chunked upload: PUT of 66,560 bytes of 'a' in chunks of 64 KiB,
// 1 KiB and the empty final chunk.
inline IncomingRequest ChunkedUpload() {
  IncomingRequest r;
  r.method = "PUT";
  r.raw_path = "/examplebucket/chunkObject.txt";
  r.headers = {
      {"Host", "s3.amazonaws.com"},
      {"x-amz-date", "20130524T000000Z"},
      {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
      {"x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"},
      {"Content-Encoding", "aws-chunked"},
      {"x-amz-decoded-content-length", "66560"},
      {"Content-Length", "66824"},
      {"Authorization",
       "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
       "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
       "x-amz-decoded-content-length;x-amz-storage-class,"
       "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"}};
  return r;
}

// Its chunk signatures, each chained from the one before (the first from the
// request's signature).
inline constexpr char kChunkSignature1[] =
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648";
inline constexpr char kChunkSignature2[] =
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497";
inline constexpr char kChunkSignature3[] =
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9";

}  // namespace tusk::http::examples
