#include "http/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/hash.h"
#include "common/status.h"
#include "http/sigv4_internal.h"

namespace tusk::http {

std::string Hmac(absl::string_view key, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

// Header values: trimmed, with runs of spaces collapsed to one.
std::string TrimValue(absl::string_view v) {
  std::string out;
  bool space = false;
  for (char c : absl::StripAsciiWhitespace(v)) {
    if (c == ' ' || c == '\t') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

std::string SigningKey(const std::string& secret, absl::string_view date, absl::string_view region,
                       absl::string_view service) {
  std::string key = Hmac(absl::StrCat("AWS4", secret), date);
  key = Hmac(key, region);
  key = Hmac(key, service);
  return Hmac(key, "aws4_request");
}

namespace {

struct UrlParts {
  std::string host;  // with :port when one is given
  std::string path;
  std::string query;
};

absl::StatusOr<UrlParts> SplitUrl(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos)
    return absl::InvalidArgumentError(absl::StrCat("not a URL: ", url));
  size_t host_start = scheme + 3;
  size_t path_start = url.find_first_of("/?", host_start);
  UrlParts p;
  p.host = url.substr(
      host_start, path_start == std::string::npos ? std::string::npos : path_start - host_start);
  if (p.host.empty()) return absl::InvalidArgumentError(absl::StrCat("URL without a host: ", url));
  std::string rest = path_start == std::string::npos ? "" : url.substr(path_start);
  size_t q = rest.find('?');
  p.path = rest.substr(0, q);
  if (q != std::string::npos) p.query = rest.substr(q + 1);
  if (p.path.empty()) p.path = "/";
  // Default ports are not part of the Host header curl sends.
  if (absl::StartsWith(url, "http://") && absl::EndsWith(p.host, ":80"))
    p.host.resize(p.host.size() - 3);
  if (absl::StartsWith(url, "https://") && absl::EndsWith(p.host, ":443"))
    p.host.resize(p.host.size() - 4);
  return p;
}

}  // namespace

absl::StatusOr<Credentials> CredentialsFromEnvironment() {
  Credentials c;
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  c.access_key = env("AWS_ACCESS_KEY_ID");
  c.secret_key = env("AWS_SECRET_ACCESS_KEY");
  c.session_token = env("AWS_SESSION_TOKEN");
  if (!c.access_key.empty()) return c;
  std::string file = env("AWS_SHARED_CREDENTIALS_FILE");
  if (file.empty() && !env("HOME").empty()) file = env("HOME") + "/.aws/credentials";
  std::string profile = env("AWS_PROFILE");
  if (profile.empty()) profile = "default";
  std::ifstream in(file);
  if (!in) return Credentials();
  std::string line, section;
  bool found = false;
  while (std::getline(in, line)) {
    absl::string_view l = absl::StripAsciiWhitespace(line);
    if (l.empty() || l[0] == '#' || l[0] == ';') continue;
    if (l.front() == '[' && l.back() == ']') {
      section = std::string(absl::StripAsciiWhitespace(l.substr(1, l.size() - 2)));
      continue;
    }
    if (section != profile) continue;
    found = true;
    std::pair<std::string, std::string> kv = absl::StrSplit(l, absl::MaxSplits('=', 1));
    std::string key(absl::StripAsciiWhitespace(kv.first));
    std::string value(absl::StripAsciiWhitespace(kv.second));
    if (key == "aws_access_key_id") c.access_key = value;
    if (key == "aws_secret_access_key") c.secret_key = value;
    if (key == "aws_session_token") c.session_token = value;
  }
  if (!found && profile != "default") {
    return absl::NotFoundError(absl::StrCat("profile ", profile, " not found in ", file));
  }
  return c;
}

absl::StatusOr<SignedParts> SignV4Parts(const Credentials& creds, const std::string& region,
                                        const std::string& service, absl::Time now,
                                        const std::string& payload_sha256, Request* req) {
  ASSIGN_OR_RETURN(UrlParts url, SplitUrl(req->url));
  std::string amz_date = absl::FormatTime("%Y%m%dT%H%M%SZ", now, absl::UTCTimeZone());
  std::string date = amz_date.substr(0, 8);

  // Drop any earlier signature (a retried request is signed again).
  auto& h = req->headers;
  h.erase(std::remove_if(h.begin(), h.end(),
                         [](const auto& kv) {
                           std::string n = absl::AsciiStrToLower(kv.first);
                           return n == "authorization" || n == "x-amz-date" || n == "host" ||
                                  n == "x-amz-content-sha256" || n == "x-amz-security-token";
                         }),
          h.end());
  h.emplace_back("host", url.host);
  h.emplace_back("x-amz-date", amz_date);
  h.emplace_back("x-amz-content-sha256", payload_sha256);
  if (!creds.session_token.empty()) h.emplace_back("x-amz-security-token", creds.session_token);

  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& [name, value] : h)
    headers.emplace_back(absl::AsciiStrToLower(name), TrimValue(value));
  std::sort(headers.begin(), headers.end());
  std::string canonical_headers, signed_headers;
  for (size_t i = 0; i < headers.size(); ++i) {
    // Repeated headers join their values with commas.
    if (i > 0 && headers[i].first == headers[i - 1].first) {
      canonical_headers.pop_back();
      absl::StrAppend(&canonical_headers, ",", headers[i].second, "\n");
      continue;
    }
    absl::StrAppend(&canonical_headers, headers[i].first, ":", headers[i].second, "\n");
    absl::StrAppend(&signed_headers, signed_headers.empty() ? "" : ";", headers[i].first);
  }

  std::vector<std::pair<std::string, std::string>> params;
  if (!url.query.empty()) {
    for (absl::string_view part : absl::StrSplit(url.query, '&', absl::SkipEmpty())) {
      std::pair<std::string, std::string> kv = absl::StrSplit(part, absl::MaxSplits('=', 1));
      params.push_back(std::move(kv));
    }
  }
  std::sort(params.begin(), params.end());
  std::vector<std::string> query;
  for (const auto& [k, v] : params) query.push_back(absl::StrCat(k, "=", v));

  SignedParts out;
  out.canonical_request =
      absl::StrCat(req->method, "\n", url.path, "\n", absl::StrJoin(query, "&"), "\n",
                   canonical_headers, "\n", signed_headers, "\n", payload_sha256);
  std::string scope = absl::StrCat(date, "/", region, "/", service, "/aws4_request");
  out.string_to_sign = absl::StrCat("AWS4-HMAC-SHA256\n", amz_date, "\n", scope, "\n",
                                    Sha256(out.canonical_request).Hex());
  std::string key = SigningKey(creds.secret_key, date, region, service);
  out.signature = ToHex(Hmac(key, out.string_to_sign));
  h.emplace_back("authorization",
                 absl::StrCat("AWS4-HMAC-SHA256 Credential=", creds.access_key, "/", scope,
                              ", SignedHeaders=", signed_headers, ", Signature=", out.signature));
  return out;
}

absl::Status SignV4(const Credentials& creds, const std::string& region, const std::string& service,
                    absl::Time now, const std::string& payload_sha256, Request* req) {
  return SignV4Parts(creds, region, service, now, payload_sha256, req).status();
}

}  // namespace tusk::http
