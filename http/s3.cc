#include "http/s3.h"

#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "common/status.h"

namespace tusk::http {
namespace {

std::string XmlDecode(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out.push_back(s[i]);
      continue;
    }
    size_t semi = s.find(';', i);
    if (semi == absl::string_view::npos) {
      out.append(s.data() + i, s.size() - i);
      break;
    }
    absl::string_view ent = s.substr(i + 1, semi - i - 1);
    uint32_t cp = 0;
    if (ent == "amp")
      out.push_back('&');
    else if (ent == "lt")
      out.push_back('<');
    else if (ent == "gt")
      out.push_back('>');
    else if (ent == "quot")
      out.push_back('"');
    else if (ent == "apos")
      out.push_back('\'');
    else if (absl::StartsWith(ent, "#x") && absl::SimpleHexAtoi(ent.substr(2), &cp)) {
    } else if (absl::StartsWith(ent, "#") && absl::SimpleAtoi(ent.substr(1), &cp)) {
    } else {
      out.append(s.data() + i, semi - i + 1);
    }
    if (cp) {  // UTF-8 of a numeric character reference
      if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
      } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
    }
    i = semi;
  }
  return out;
}

// The text of the first <tag>...</tag> in `xml` at or after `from`; `end`
// gets the position after it. Empty if absent.
std::string XmlTag(absl::string_view xml, absl::string_view tag, size_t from = 0,
                   size_t* end = nullptr) {
  std::string open = absl::StrCat("<", tag, ">"), close = absl::StrCat("</", tag, ">");
  size_t a = xml.find(open, from);
  if (a == absl::string_view::npos) return "";
  size_t b = xml.find(close, a);
  if (b == absl::string_view::npos) return "";
  if (end) *end = b + close.size();
  return XmlDecode(xml.substr(a + open.size(), b - a - open.size()));
}

bool Retryable(long status) { return status >= 500 || status == 429 || status == 408; }

}  // namespace

absl::StatusOr<S3Url> ParseS3Url(const std::string& url) {
  if (!absl::StartsWith(url, "s3://"))
    return absl::InvalidArgumentError(absl::StrCat("not an s3:// URL: ", url));
  std::string rest = url.substr(5);
  size_t slash = rest.find('/');
  S3Url out;
  out.bucket = rest.substr(0, slash);
  if (slash != std::string::npos) out.key = rest.substr(slash + 1);
  if (out.bucket.empty())
    return absl::InvalidArgumentError(absl::StrCat("s3 URL without a bucket: ", url));
  return out;
}

absl::Status StatusFromHttp(long status, const std::string& what, const std::string& body) {
  std::string code = XmlTag(body, "Code"), message = XmlTag(body, "Message");
  std::string text = absl::StrCat(what, ": HTTP ", status);
  if (!code.empty()) absl::StrAppend(&text, " ", code);
  if (!message.empty()) absl::StrAppend(&text, " (", message, ")");
  switch (status) {
    case 400:
      return absl::InvalidArgumentError(text);
    case 401:
      return absl::UnauthenticatedError(text);
    case 403:
      return absl::PermissionDeniedError(text);
    case 404:
      return absl::NotFoundError(text);
    case 409:
      return absl::AlreadyExistsError(text);
    case 412:
      return absl::FailedPreconditionError(text);
    case 416:
      return absl::OutOfRangeError(text);
    default:
      if (Retryable(status)) return absl::UnavailableError(text);
      return absl::UnknownError(text);
  }
}

S3Client::~S3Client() = default;

absl::StatusOr<std::unique_ptr<S3Client>> S3Client::Create(const S3Options& options) {
  ASSIGN_OR_RETURN(auto http, HttpClient::Create(options.http));
  return std::unique_ptr<S3Client>(new S3Client(options, std::move(http)));
}

absl::StatusOr<Request> S3Client::MakeRequest(const std::string& method, const std::string& bucket,
                                              const std::string& key, const std::string& query,
                                              const std::string& body) {
  Request req;
  req.method = method;
  std::string path = "/" + UriEncode(key, /*keep_slash=*/true);
  if (options_.endpoint.empty()) {
    req.url = absl::StrCat("https://", bucket, ".s3.", options_.region, ".amazonaws.com", path);
  } else {
    std::string ep = options_.endpoint;
    while (!ep.empty() && ep.back() == '/') ep.pop_back();
    if (options_.virtual_host) {
      size_t scheme = ep.find("://");
      if (scheme == std::string::npos)
        return absl::InvalidArgumentError(absl::StrCat("bad S3 endpoint ", ep));
      req.url = absl::StrCat(ep.substr(0, scheme + 3), bucket, ".", ep.substr(scheme + 3), path);
    } else {
      req.url = absl::StrCat(ep, "/", bucket, path);
    }
  }
  if (!query.empty()) absl::StrAppend(&req.url, "?", query);
  req.body = body;
  if (!options_.credentials.empty()) {
    std::string payload = body.empty() ? kEmptyPayloadSha256 : Sha256(body).Hex();
    RETURN_IF_ERROR(
        SignV4(options_.credentials, options_.region, "s3", absl::Now(), payload, &req));
  }
  return req;
}

absl::Duration S3Client::Backoff(int attempt) const {
  return RetryBackoff(attempt, options_.base_backoff, options_.max_backoff);
}

absl::StatusOr<Response> S3Client::Send(const std::function<absl::StatusOr<Request>()>& make,
                                        const std::string& what, bool read_body) {
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(Request req, make());
    absl::StatusOr<Response> resp = http_->Start(req);
    absl::Status failure;
    if (resp.ok()) {
      bool success = resp->status >= 200 && resp->status < 300;
      if (success && !read_body) return resp;
      // Read the body: the result (success) or the error document.
      char buf[16 * 1024];
      for (;;) {
        auto n = http_->ReadBody(buf, sizeof(buf));
        if (!n.ok()) {
          resp = n.status();
          break;
        }
        if (*n == 0) break;
        resp->body.append(buf, *n);
      }
      if (resp.ok()) {
        if (success) return resp;
        failure = StatusFromHttp(resp->status, what, resp->body);
        if (!Retryable(resp->status)) return failure;
      }
    }
    if (!resp.ok()) {
      if (resp.status().code() != absl::StatusCode::kUnavailable) return resp.status();
      failure = absl::UnavailableError(absl::StrCat(what, ": ", resp.status().message()));
    }
    if (attempt >= options_.max_retries) {
      return absl::Status(failure.code(),
                          absl::StrCat(failure.message(), " (after ", attempt + 1, " attempts)"));
    }
    std::this_thread::sleep_for(absl::ToChronoMicroseconds(Backoff(attempt)));
  }
}

absl::Status S3Client::List(const std::string& bucket, const std::string& prefix,
                            const std::function<absl::Status(const ObjectInfo&)>& fn) {
  std::string token;
  std::string what = absl::StrCat("listing s3://", bucket, "/", prefix);
  for (;;) {
    std::string query = "list-type=2";
    if (!token.empty()) absl::StrAppend(&query, "&continuation-token=", UriEncode(token, false));
    if (!prefix.empty()) absl::StrAppend(&query, "&prefix=", UriEncode(prefix, false));
    ASSIGN_OR_RETURN(Response resp,
                     Send([&] { return MakeRequest("GET", bucket, "", query, ""); }, what, true));
    size_t pos = 0;
    for (;;) {
      size_t end = 0;
      std::string item = XmlTag(resp.body, "Contents", pos, &end);
      if (end == 0) break;
      pos = end;
      ObjectInfo info;
      info.key = XmlTag(item, "Key");
      if (!absl::SimpleAtoi(XmlTag(item, "Size"), &info.size)) {
        return absl::DataLossError(absl::StrCat(what, ": a listed object without a size"));
      }
      info.etag = XmlTag(item, "ETag");
      RETURN_IF_ERROR(fn(info));
    }
    if (XmlTag(resp.body, "IsTruncated") != "true") return absl::OkStatus();
    token = XmlTag(resp.body, "NextContinuationToken");
    if (token.empty())
      return absl::DataLossError(
          absl::StrCat(what, ": truncated list without a continuation token"));
  }
}

absl::StatusOr<ObjectInfo> S3Client::Head(const std::string& bucket, const std::string& key) {
  std::string what = absl::StrCat("s3://", bucket, "/", key);
  ASSIGN_OR_RETURN(Response resp,
                   Send([&] { return MakeRequest("HEAD", bucket, key, "", ""); }, what, true));
  ObjectInfo info;
  info.key = key;
  info.etag = resp.Header("etag");
  if (resp.content_length < 0)
    return absl::DataLossError(absl::StrCat(what, ": HEAD without a length"));
  info.size = static_cast<uint64_t>(resp.content_length);
  return info;
}

absl::StatusOr<std::unique_ptr<ObjectReader>> S3Client::Get(const std::string& bucket,
                                                            const std::string& key) {
  std::string what = absl::StrCat("s3://", bucket, "/", key);
  ASSIGN_OR_RETURN(Response resp,
                   Send([&] { return MakeRequest("GET", bucket, key, "", ""); }, what, false));
  ObjectInfo info;
  info.key = key;
  info.etag = resp.Header("etag");
  info.size = resp.content_length < 0 ? 0 : static_cast<uint64_t>(resp.content_length);
  if (resp.content_length < 0)
    return absl::DataLossError(absl::StrCat(what, ": GET without a length"));
  return std::unique_ptr<ObjectReader>(new ObjectReader(this, bucket, std::move(info)));
}

absl::Status S3Client::Put(const std::string& bucket, const std::string& key,
                           const std::string& data) {
  std::string what = absl::StrCat("s3://", bucket, "/", key);
  return Send([&] { return MakeRequest("PUT", bucket, key, "", data); }, what, true).status();
}

absl::StatusOr<size_t> ObjectReader::Read(char* buf, size_t n) {
  if (offset_ >= info_.size) return 0;
  for (;;) {
    auto got = client_->http_->ReadBody(buf, n);
    if (got.ok() && (*got > 0 || offset_ == info_.size)) {
      offset_ += *got;
      return *got;
    }
    std::string what = absl::StrCat("s3://", bucket_, "/", info_.key);
    absl::Status cause =
        got.ok() ? absl::UnavailableError(absl::StrCat("the connection ended after ", offset_,
                                                       " of ", info_.size, " bytes"))
                 : got.status();
    if (cause.code() != absl::StatusCode::kUnavailable ||
        ++failures_ > client_->options_.max_retries) {
      return absl::Status(cause.code(), absl::StrCat(what, ": ", cause.message()));
    }
    std::this_thread::sleep_for(absl::ToChronoMicroseconds(client_->Backoff(failures_)));
    // The rest of the same version of the object.
    auto resp = client_->Send(
        [&]() -> absl::StatusOr<Request> {
          ASSIGN_OR_RETURN(Request r, client_->MakeRequest("GET", bucket_, info_.key, "", ""));
          r.headers.emplace_back("Range", absl::StrCat("bytes=", offset_, "-"));
          if (!info_.etag.empty()) r.headers.emplace_back("If-Match", info_.etag);
          return r;
        },
        what, false);
    if (resp.status().code() == absl::StatusCode::kFailedPrecondition) {
      return absl::DataLossError(absl::StrCat(what, ": the object changed while it was read"));
    }
    if (!resp.ok()) return resp.status();
    if (resp->status != 206) {
      return absl::DataLossError(
          absl::StrCat(what, ": the server ignored the range request (HTTP ", resp->status, ")"));
    }
  }
}

}  // namespace tusk::http
