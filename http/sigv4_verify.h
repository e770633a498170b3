#pragma once

// Server side of AWS Signature Version 4: checks the signature of a request
// that reached us (the S3 gateway), from its Authorization header or from a
// presigned URL's query (X-Amz-Signature...). The canonical request is made
// from what was sent: the path and query are decoded and encoded again the
// way SigV4 wants (so a client's choice of escapes does not matter), and
// exactly the headers the client listed in SignedHeaders are used.
//
// Errors carry S3's error code as the payload kS3ErrorCodePayload (see
// S3ErrorCode), so that the gateway answers with S3's XML error:
//   no signature at all             Unauthenticated      AccessDenied
//   malformed header or query       InvalidArgument      AuthorizationHeaderMalformed /
//                                                        AuthorizationQueryParametersError
//   unknown access key              PermissionDenied     InvalidAccessKeyId
//   signature differs               PermissionDenied     SignatureDoesNotMatch
//   presigned URL expired           PermissionDenied     AccessDenied ("Request has expired")
//   date more than 15 min off       PermissionDenied     RequestTimeTooSkewed
//
// Thread-safe (pure functions).

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tusk::http {

// What arrived, as sent (nothing decoded).
struct IncomingRequest {
  std::string method;
  std::string raw_path;   // the request target's path, still %-encoded
  std::string raw_query;  // after '?', still encoded; empty if none
  std::vector<std::pair<std::string, std::string>> headers;  // names in any case
};

// What a valid signature says.
struct VerifiedRequest {
  std::string access_key;
  std::string region;
  absl::Time date;
  bool presigned = false;
  // The x-amz-content-sha256 the client signed: a hex SHA-256 the body must
  // match, UNSIGNED-PAYLOAD, or STREAMING-AWS4-HMAC-SHA256-PAYLOAD (then
  // each chunk's signature chains from `signature`, see ChunkSignature).
  std::string payload_sha256;
  std::string signature;
  std::string scope;        // DATE/REGION/SERVICE/aws4_request
  std::string amz_date;     // YYYYMMDDTHHMMSSZ
  std::string signing_key;  // the derived key (binary), for chunk signatures
};

// The secret of an access key id; NotFound if there is no such key.
using SecretLookup = std::function<absl::StatusOr<std::string>(const std::string& access_key)>;

// Verifies `req`'s SigV4 signature for `service` at time `now`.
absl::StatusOr<VerifiedRequest> VerifySigV4(const IncomingRequest& req, const std::string& service,
                                            absl::Time now, const SecretLookup& secret);

// The signature of one chunk of an aws-chunked body
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD): `previous` is the seed signature
// (VerifiedRequest.signature) for the first chunk, then the last chunk's.
std::string ChunkSignature(const VerifiedRequest& v, const std::string& previous,
                           absl::string_view chunk);
// The same, from the chunk's SHA-256 (lowercase hex), for a chunk hashed as
// it streams.
std::string ChunkSignatureOfHash(const VerifiedRequest& v, const std::string& previous,
                                 const std::string& chunk_sha256_hex);

// The S3 error code a status from this file carries ("" if none).
inline constexpr char kS3ErrorCodePayload[] = "type.tusk.dev/s3-error-code";
std::string S3ErrorCode(const absl::Status& status);

}  // namespace tusk::http
