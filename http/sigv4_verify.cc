#include "http/sigv4_verify.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <map>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "common/hash.h"
#include "common/status.h"
#include "http/http_client.h"
#include "http/sigv4_internal.h"

namespace tusk::http {
namespace {

constexpr char kAlgorithm[] = "AWS4-HMAC-SHA256";
constexpr absl::Duration kMaxSkew = absl::Minutes(15);
constexpr int64_t kMaxPresignSeconds = 7 * 24 * 3600;  // S3's limit

absl::Status WithCode(absl::Status st, const char* code) {
  st.SetPayload(kS3ErrorCodePayload, absl::Cord(code));
  return st;
}

absl::Status Malformed(bool presigned, const std::string& what) {
  return WithCode(absl::InvalidArgumentError(what),
                  presigned ? "AuthorizationQueryParametersError" : "AuthorizationHeaderMalformed");
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX decoded (a '%' not followed by two hex digits stays as it is).
std::string PercentDecode(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

std::optional<std::string> Header(const IncomingRequest& req, absl::string_view name) {
  std::optional<std::string> out;
  for (const auto& [n, v] : req.headers) {
    if (!absl::EqualsIgnoreCase(n, name)) continue;
    out = out ? absl::StrCat(*out, ",", TrimValue(v)) : TrimValue(v);
  }
  return out;
}

// The query's parameters, decoded, in order.
std::vector<std::pair<std::string, std::string>> QueryParams(absl::string_view raw) {
  std::vector<std::pair<std::string, std::string>> out;
  for (absl::string_view part : absl::StrSplit(raw, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(part, absl::MaxSplits('=', 1));
    out.emplace_back(PercentDecode(kv.first), PercentDecode(kv.second));
  }
  return out;
}

// YYYYMMDDTHHMMSSZ (absl's %Y would take all eight digits for the year).
bool ParseAmzDate(const std::string& s, absl::Time* t) {
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z') return false;
  int v[6];
  const int at[6][2] = {{0, 4}, {4, 2}, {6, 2}, {9, 2}, {11, 2}, {13, 2}};
  for (int i = 0; i < 6; ++i) {
    absl::string_view part = absl::string_view(s).substr(at[i][0], at[i][1]);
    if (!std::all_of(part.begin(), part.end(), absl::ascii_isdigit) ||
        !absl::SimpleAtoi(part, &v[i])) {
      return false;
    }
  }
  absl::CivilSecond cs(v[0], v[1], v[2], v[3], v[4], v[5]);
  if (cs.year() != v[0] || cs.month() != v[1] || cs.day() != v[2] || cs.hour() != v[3] ||
      cs.minute() != v[4] || cs.second() != v[5]) {
    return false;  // normalized: not a real date
  }
  *t = absl::FromCivil(cs, absl::UTCTimeZone());
  return true;
}

// The signature's parts, from the header or the query.
struct Claimed {
  std::string access_key, date, region, service;  // from the credential scope
  std::vector<std::string> signed_headers;
  std::string signature;
  std::string amz_date;
  std::string payload_sha256;
  int64_t expires = 0;  // presigned
};

absl::Status ParseCredential(bool presigned, absl::string_view credential, Claimed* c) {
  std::vector<std::string> parts = absl::StrSplit(credential, '/');
  if (parts.size() != 5 || parts[4] != "aws4_request" || parts[0].empty()) {
    return Malformed(presigned, absl::StrCat("the credential '", credential,
                                             "' is not KEY/DATE/REGION/SERVICE/aws4_request"));
  }
  c->access_key = parts[0];
  c->date = parts[1];
  c->region = parts[2];
  c->service = parts[3];
  return absl::OkStatus();
}

absl::StatusOr<Claimed> FromHeader(const IncomingRequest& req, const std::string& auth) {
  Claimed c;
  if (!absl::StartsWith(auth, kAlgorithm)) {
    return Malformed(false, absl::StrCat("the Authorization header is not ", kAlgorithm,
                                         " (only Signature Version 4 is accepted)"));
  }
  std::map<std::string, std::string> fields;
  for (absl::string_view f : absl::StrSplit(absl::string_view(auth).substr(sizeof(kAlgorithm) - 1),
                                            ',', absl::SkipWhitespace())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(absl::StripAsciiWhitespace(f), absl::MaxSplits('=', 1));
    fields[std::string(kv.first)] = std::string(kv.second);
  }
  for (const char* need : {"Credential", "SignedHeaders", "Signature"}) {
    if (fields[need].empty()) {
      return Malformed(false, absl::StrCat("the Authorization header has no ", need));
    }
  }
  RETURN_IF_ERROR(ParseCredential(false, fields["Credential"], &c));
  c.signed_headers = absl::StrSplit(fields["SignedHeaders"], ';');
  c.signature = fields["Signature"];
  auto date = Header(req, "x-amz-date");
  if (!date) return Malformed(false, "the request has no X-Amz-Date header");
  c.amz_date = *date;
  auto payload = Header(req, "x-amz-content-sha256");
  if (!payload) return Malformed(false, "the request has no X-Amz-Content-Sha256 header");
  c.payload_sha256 = *payload;
  return c;
}

absl::StatusOr<Claimed> FromQuery(const std::map<std::string, std::string>& q) {
  Claimed c;
  auto get = [&](const char* k) -> std::string {
    auto it = q.find(k);
    return it == q.end() ? "" : it->second;
  };
  if (get("X-Amz-Algorithm") != kAlgorithm) {
    return Malformed(true, absl::StrCat("X-Amz-Algorithm must be ", kAlgorithm));
  }
  for (const char* need : {"X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
                           "X-Amz-Signature"}) {
    if (get(need).empty()) return Malformed(true, absl::StrCat("the query has no ", need));
  }
  RETURN_IF_ERROR(ParseCredential(true, get("X-Amz-Credential"), &c));
  c.signed_headers = absl::StrSplit(get("X-Amz-SignedHeaders"), ';');
  c.signature = get("X-Amz-Signature");
  c.amz_date = get("X-Amz-Date");
  if (!absl::SimpleAtoi(get("X-Amz-Expires"), &c.expires) || c.expires < 1 ||
      c.expires > kMaxPresignSeconds) {
    return Malformed(true, absl::StrCat("X-Amz-Expires '", get("X-Amz-Expires"),
                                        "' is not 1 to 604800 seconds"));
  }
  std::string payload = get("X-Amz-Content-Sha256");
  c.payload_sha256 = payload.empty() ? "UNSIGNED-PAYLOAD" : payload;
  return c;
}

}  // namespace

std::string S3ErrorCode(const absl::Status& status) {
  auto p = status.GetPayload(kS3ErrorCodePayload);
  return p ? std::string(*p) : "";
}

absl::StatusOr<VerifiedRequest> VerifySigV4(const IncomingRequest& req, const std::string& service,
                                            absl::Time now, const SecretLookup& secret) {
  auto params = QueryParams(req.raw_query);
  std::map<std::string, std::string> q(params.begin(), params.end());
  auto auth = Header(req, "authorization");
  const bool presigned = !auth && q.count("X-Amz-Signature") > 0;
  if ((auth && absl::StartsWith(*auth, "AWS ")) ||
      (!auth && q.count("AWSAccessKeyId") > 0 && q.count("Signature") > 0)) {
    return WithCode(absl::InvalidArgumentError(
                        "the request is signed with AWS signature version 2, which is not "
                        "supported: sign with version 4 (boto3: "
                        "Config(signature_version='s3v4'))"),
                    auth ? "AuthorizationHeaderMalformed" : "AuthorizationQueryParametersError");
  }
  if (!auth && !presigned) {
    return WithCode(absl::UnauthenticatedError("the request is not signed"), "AccessDenied");
  }
  absl::StatusOr<Claimed> claimed = presigned ? FromQuery(q) : FromHeader(req, *auth);
  RETURN_IF_ERROR(claimed.status());
  Claimed& c = *claimed;
  if (c.service != service) {
    return Malformed(presigned, absl::StrCat("the credential is for service '", c.service,
                                             "', not '", service, "'"));
  }
  absl::Time date;
  if (!ParseAmzDate(c.amz_date, &date) || c.amz_date.substr(0, 8) != c.date) {
    return Malformed(presigned,
                     absl::StrCat("the date '", c.amz_date,
                                  "' is not YYYYMMDDTHHMMSSZ of the credential's day ", c.date));
  }
  if (presigned) {
    if (now > date + absl::Seconds(c.expires)) {
      return WithCode(absl::PermissionDeniedError(absl::StrCat(
                          "Request has expired: signed ", c.amz_date, " for ", c.expires, " s")),
                      "AccessDenied");
    }
    if (date - now > kMaxSkew) {
      return WithCode(absl::PermissionDeniedError("the presigned URL's date is in the future"),
                      "AccessDenied");
    }
  } else if (absl::AbsDuration(now - date) > kMaxSkew) {
    return WithCode(
        absl::PermissionDeniedError(absl::StrCat("the request's time ", c.amz_date,
                                                 " is more than 15 minutes from the server's")),
        "RequestTimeTooSkewed");
  }
  bool host_signed = false;
  std::string canonical_headers;
  for (const auto& name : c.signed_headers) {
    if (name.empty() || name != absl::AsciiStrToLower(name)) {
      return Malformed(presigned, absl::StrCat("signed header '", name, "' is not lowercase"));
    }
    host_signed = host_signed || name == "host";
    auto value = Header(req, name);
    if (!value) {
      return WithCode(absl::PermissionDeniedError(
                          absl::StrCat("signed header '", name, "' is not in the request")),
                      "SignatureDoesNotMatch");
    }
    absl::StrAppend(&canonical_headers, name, ":", *value, "\n");
  }
  if (!host_signed) return Malformed(presigned, "the Host header must be signed");

  std::vector<std::pair<std::string, std::string>> query;
  for (const auto& [k, v] : params) {
    if (presigned && k == "X-Amz-Signature") continue;
    query.emplace_back(UriEncode(k, false), UriEncode(v, false));
  }
  std::sort(query.begin(), query.end());
  std::vector<std::string> query_parts;
  for (const auto& [k, v] : query) query_parts.push_back(absl::StrCat(k, "=", v));
  std::string path = req.raw_path.empty() ? "/" : UriEncode(PercentDecode(req.raw_path), true);
  std::string canonical = absl::StrCat(
      req.method, "\n", path, "\n", absl::StrJoin(query_parts, "&"), "\n", canonical_headers, "\n",
      absl::StrJoin(c.signed_headers, ";"), "\n", c.payload_sha256);
  std::string scope = absl::StrCat(c.date, "/", c.region, "/", c.service, "/aws4_request");
  std::string to_sign =
      absl::StrCat(kAlgorithm, "\n", c.amz_date, "\n", scope, "\n", Sha256(canonical).Hex());

  auto key_secret = secret(c.access_key);
  if (!key_secret.ok()) {
    if (key_secret.status().code() != absl::StatusCode::kNotFound) return key_secret.status();
    return WithCode(
        absl::PermissionDeniedError(absl::StrCat("access key ", c.access_key, " does not exist")),
        "InvalidAccessKeyId");
  }
  VerifiedRequest v;
  v.signing_key = SigningKey(*key_secret, c.date, c.region, c.service);
  const std::string want = ToHex(Hmac(v.signing_key, to_sign));
  if (want.size() != c.signature.size() ||
      CRYPTO_memcmp(want.data(), c.signature.data(), want.size()) != 0) {
    return WithCode(absl::PermissionDeniedError(
                        "the signature does not match: check the secret key and how the "
                        "request is signed"),
                    "SignatureDoesNotMatch");
  }
  v.access_key = c.access_key;
  v.region = c.region;
  v.date = date;
  v.presigned = presigned;
  v.payload_sha256 = c.payload_sha256;
  v.signature = c.signature;
  v.scope = scope;
  v.amz_date = c.amz_date;
  return v;
}

std::string ChunkSignature(const VerifiedRequest& v, const std::string& previous,
                           absl::string_view chunk) {
  return ChunkSignatureOfHash(v, previous, Sha256(chunk).Hex());
}

std::string ChunkSignatureOfHash(const VerifiedRequest& v, const std::string& previous,
                                 const std::string& chunk_sha256_hex) {
  std::string to_sign = absl::StrCat("AWS4-HMAC-SHA256-PAYLOAD\n", v.amz_date, "\n", v.scope, "\n",
                                     previous, "\n", Sha256("").Hex(), "\n", chunk_sha256_hex);
  return ToHex(Hmac(v.signing_key, to_sign));
}

}  // namespace tusk::http
