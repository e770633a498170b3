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
                                              absl::string_view body,
                                              const std::string& payload_sha256) {
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
  req.body_ref = body;
  if (!options_.credentials.empty()) {
    std::string payload = !payload_sha256.empty() ? payload_sha256
                          : body.empty()          ? std::string(kEmptyPayloadSha256)
                                                  : Sha256(body).Hex();
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
    ++requests_;
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
                           absl::string_view data) {
  std::string what = absl::StrCat("s3://", bucket, "/", key);
  std::string payload = Sha256(data).Hex();
  return Send([&] { return MakeRequest("PUT", bucket, key, "", data, payload); }, what, true)
      .status();
}

absl::StatusOr<std::string> S3Client::GetRange(const std::string& bucket, const std::string& key,
                                               uint64_t offset, uint64_t length) {
  std::string what = absl::StrCat("s3://", bucket, "/", key);
  if (length == 0) return std::string();
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<Response> resp = Send(
        [&]() -> absl::StatusOr<Request> {
          ASSIGN_OR_RETURN(Request r, MakeRequest("GET", bucket, key, "", ""));
          r.headers.emplace_back("Range", absl::StrCat("bytes=", offset, "-", offset + length - 1));
          return r;
        },
        what, true);
    if (resp.status().code() == absl::StatusCode::kOutOfRange) {
      return absl::OutOfRangeError(
          absl::StrCat(what, " is shorter than ", offset + length, " bytes (a truncated object)"));
    }
    if (!resp.ok()) return resp.status();
    if (resp->status == 200 && resp->body.size() > length) {
      // A server that ignores Range sends the whole object.
      if (resp->body.size() < offset + length) {
        return absl::OutOfRangeError(absl::StrCat(what, " is ", resp->body.size(),
                                                  " bytes, shorter than ", offset + length));
      }
      return resp->body.substr(offset, length);
    }
    if (resp->body.size() == length) return std::move(resp->body);
    // A short body: the object is shorter, or the connection ended early
    // without curl noticing (no Content-Length). Ask again, then give up.
    std::string range = resp->Header("content-range");
    size_t slash = range.rfind('/');
    uint64_t total = 0;
    if (slash != std::string::npos && absl::SimpleAtoi(range.substr(slash + 1), &total) &&
        total < offset + length) {
      return absl::OutOfRangeError(absl::StrCat(what, " is ", total, " bytes, shorter than ",
                                                offset + length, " (a truncated object)"));
    }
    if (attempt >= options_.max_retries) {
      return absl::UnavailableError(absl::StrCat(what, ": ranged GET returned ", resp->body.size(),
                                                 " of ", length, " bytes (after ", attempt + 1,
                                                 " attempts)"));
    }
    std::this_thread::sleep_for(absl::ToChronoMicroseconds(Backoff(attempt)));
  }
}

absl::Status S3Client::Delete(const std::string& bucket, const std::string& key) {
  std::string what = absl::StrCat("deleting s3://", bucket, "/", key);
  absl::Status s =
      Send([&] { return MakeRequest("DELETE", bucket, key, "", ""); }, what, true).status();
  if (absl::IsNotFound(s)) return absl::OkStatus();
  return s;
}

absl::Status S3Client::CheckBucket(const std::string& bucket) {
  std::string what = absl::StrCat("bucket s3://", bucket);
  // HeadBucket: cheap, and answered by every S3-compatible server.
  return Send([&] { return MakeRequest("HEAD", bucket, "", "", ""); }, what, true).status();
}

absl::StatusOr<std::string> S3Client::CreateMultipartUpload(const std::string& bucket,
                                                            const std::string& key) {
  std::string what = absl::StrCat("starting a multipart upload of s3://", bucket, "/", key);
  ASSIGN_OR_RETURN(
      Response resp,
      Send([&] { return MakeRequest("POST", bucket, key, "uploads=", ""); }, what, true));
  std::string id = XmlTag(resp.body, "UploadId");
  if (id.empty()) return absl::DataLossError(absl::StrCat(what, ": the answer has no UploadId"));
  return id;
}

absl::StatusOr<std::string> S3Client::UploadPart(const std::string& bucket, const std::string& key,
                                                 const std::string& upload_id, int part_number,
                                                 absl::string_view data) {
  std::string what = absl::StrCat("uploading part ", part_number, " of s3://", bucket, "/", key);
  std::string query =
      absl::StrCat("partNumber=", part_number, "&uploadId=", UriEncode(upload_id, false));
  std::string payload = Sha256(data).Hex();
  ASSIGN_OR_RETURN(
      Response resp,
      Send([&] { return MakeRequest("PUT", bucket, key, query, data, payload); }, what, true));
  std::string etag = resp.Header("etag");
  if (etag.empty()) return absl::DataLossError(absl::StrCat(what, ": the answer has no ETag"));
  return etag;
}

absl::Status S3Client::CompleteMultipartUpload(const std::string& bucket, const std::string& key,
                                               const std::string& upload_id,
                                               const std::vector<std::string>& etags) {
  std::string what = absl::StrCat("completing the multipart upload of s3://", bucket, "/", key);
  std::string body = "<CompleteMultipartUpload>";
  for (size_t i = 0; i < etags.size(); ++i) {
    std::string etag = etags[i];
    // The ETag is quoted already; XML needs its quotes as they are.
    absl::StrAppend(&body, "<Part><PartNumber>", i + 1, "</PartNumber><ETag>", etag,
                    "</ETag></Part>");
  }
  absl::StrAppend(&body, "</CompleteMultipartUpload>");
  std::string query = absl::StrCat("uploadId=", UriEncode(upload_id, false));
  ASSIGN_OR_RETURN(Response resp,
                   Send([&] { return MakeRequest("POST", bucket, key, query, body); }, what, true));
  // S3 may answer 200 with an error document when the join fails late.
  if (absl::StrContains(resp.body, "<Error>")) return StatusFromHttp(500, what, resp.body);
  return absl::OkStatus();
}

absl::Status S3Client::AbortMultipartUpload(const std::string& bucket, const std::string& key,
                                            const std::string& upload_id) {
  std::string what = absl::StrCat("aborting the multipart upload of s3://", bucket, "/", key);
  std::string query = absl::StrCat("uploadId=", UriEncode(upload_id, false));
  absl::Status s =
      Send([&] { return MakeRequest("DELETE", bucket, key, query, ""); }, what, true).status();
  if (absl::IsNotFound(s)) return absl::OkStatus();
  return s;
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

absl::StatusOr<std::unique_ptr<S3Client>> S3ClientPool::Take() {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_.empty()) {
      std::unique_ptr<S3Client> client = std::move(idle_.back());
      idle_.pop_back();
      return client;
    }
  }
  return S3Client::Create(options_);
}

void S3ClientPool::Give(std::unique_ptr<S3Client> client) {
  absl::MutexLock lock(&mu_);
  idle_.push_back(std::move(client));
}

}  // namespace tusk::http
