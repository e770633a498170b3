#pragma once

// Pieces of SigV4 shared by the signer (sigv4.cc) and the verifier
// (sigv4_verify.cc). Internal to http.

#include <string>

#include "absl/strings/string_view.h"

namespace tusk::http {

// HMAC-SHA256 of `data` under `key` (binary).
std::string Hmac(absl::string_view key, absl::string_view data);
// A header value as SigV4 canonicalizes it: trimmed, runs of spaces one.
std::string TrimValue(absl::string_view v);
// The key that signs requests of `date` (YYYYMMDD) in region and service.
std::string SigningKey(const std::string& secret, absl::string_view date, absl::string_view region,
                       absl::string_view service);

}  // namespace tusk::http
