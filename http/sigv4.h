#pragma once

// AWS Signature Version 4 for requests to S3 and S3-compatible servers.
//
// SignV4 adds x-amz-date, x-amz-content-sha256, (x-amz-security-token) and
// Authorization headers to a request whose URL is already in its final,
// percent-encoded form (http::UriEncode for each path segment and query
// component). Pure functions; thread-safe.

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "http/http_client.h"

namespace tusk::http {

struct Credentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // temporary credentials only
  bool empty() const { return access_key.empty(); }
};

// Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and
// AWS_SESSION_TOKEN), else from the shared credentials file
// (AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials), profile
// AWS_PROFILE or "default". None found: empty credentials (anonymous
// requests). A file that exists but lacks the profile is NotFound.
absl::StatusOr<Credentials> CredentialsFromEnvironment();

// The SHA-256 of an empty payload, in hex.
inline constexpr char kEmptyPayloadSha256[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
// A payload S3 does not check (the signature covers the headers only).
inline constexpr char kUnsignedPayload[] = "UNSIGNED-PAYLOAD";

// Signs `req` for `service` in `region` at time `now`. `payload_sha256` is the
// hex SHA-256 of the body, or kUnsignedPayload. InvalidArgument if the URL
// cannot be parsed.
absl::Status SignV4(const Credentials& creds, const std::string& region, const std::string& service,
                    absl::Time now, const std::string& payload_sha256, Request* req);

// The parts of the canonical request (exposed for tests).
struct SignedParts {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;
};
absl::StatusOr<SignedParts> SignV4Parts(const Credentials& creds, const std::string& region,
                                        const std::string& service, absl::Time now,
                                        const std::string& payload_sha256, Request* req);

}  // namespace tusk::http
