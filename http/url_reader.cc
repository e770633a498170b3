#include "http/url_reader.h"

#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace tusk::http {
namespace {

constexpr int kMaxRetries = 5;

absl::Duration Backoff(int attempt) {
  return RetryBackoff(attempt, absl::Milliseconds(100), absl::Milliseconds(6400));
}

class S3UrlReader : public UrlReader {
 public:
  S3UrlReader(std::unique_ptr<S3Client> client, std::unique_ptr<ObjectReader> reader)
      : client_(std::move(client)), reader_(std::move(reader)) {}
  absl::StatusOr<size_t> Read(char* buf, size_t n) override { return reader_->Read(buf, n); }
  int64_t size() const override { return static_cast<int64_t>(reader_->info().size); }

 private:
  std::unique_ptr<S3Client> client_;  // before reader_: outlives it
  std::unique_ptr<ObjectReader> reader_;
};

class HttpUrlReader : public UrlReader {
 public:
  HttpUrlReader(std::string url, std::unique_ptr<HttpClient> http)
      : url_(std::move(url)), http_(std::move(http)) {}

  // Sends the request (from offset_), retrying transient failures.
  absl::Status Request() {
    for (int attempt = 0;; ++attempt) {
      http::Request req;
      req.url = url_;
      if (offset_ > 0) {
        req.headers.emplace_back("Range", absl::StrCat("bytes=", offset_, "-"));
        req.headers.emplace_back("If-Range", validator_);
      }
      auto resp = http_->Start(req);
      absl::Status failure;
      if (resp.ok()) {
        long st = resp->status;
        if (offset_ == 0 && st == 200) {
          size_ = resp->content_length;
          validator_ = resp->Header("etag");
          if (validator_.empty()) validator_ = resp->Header("last-modified");
          ranges_ = resp->Header("accept-ranges") == "bytes" && !validator_.empty();
          return absl::OkStatus();
        }
        if (offset_ > 0 && st == 206) return absl::OkStatus();
        if (offset_ > 0 && st == 200) {
          return absl::DataLossError(
              absl::StrCat(url_, ": changed on the server while it was read"));
        }
        std::string body;
        char buf[4096];
        for (int i = 0; i < 16; ++i) {  // the start of the error page, for the message
          auto n = http_->ReadBody(buf, sizeof(buf));
          if (!n.ok() || *n == 0) break;
          body.append(buf, *n);
        }
        failure = StatusFromHttp(st, url_, body);
        if (failure.code() != absl::StatusCode::kUnavailable) return failure;
      } else {
        if (resp.status().code() != absl::StatusCode::kUnavailable) return resp.status();
        failure = resp.status();
      }
      if (attempt >= kMaxRetries) {
        return absl::Status(failure.code(),
                            absl::StrCat(failure.message(), " (after ", attempt + 1, " attempts)"));
      }
      std::this_thread::sleep_for(absl::ToChronoMicroseconds(Backoff(attempt)));
    }
  }

  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    for (;;) {
      auto got = http_->ReadBody(buf, n);
      bool short_body =
          got.ok() && *got == 0 && size_ >= 0 && offset_ < static_cast<uint64_t>(size_);
      if (got.ok() && !short_body) {
        offset_ += *got;
        return *got;
      }
      absl::Status cause =
          got.ok() ? absl::UnavailableError(absl::StrCat("the connection ended after ", offset_,
                                                         " of ", size_, " bytes"))
                   : got.status();
      if (cause.code() != absl::StatusCode::kUnavailable) return cause;
      if (!ranges_) {
        return absl::UnavailableError(absl::StrCat(url_, ": ", cause.message(),
                                                   "; the server offers no ranges to resume from"));
      }
      if (++failures_ > kMaxRetries)
        return absl::UnavailableError(absl::StrCat(url_, ": ", cause.message()));
      std::this_thread::sleep_for(absl::ToChronoMicroseconds(Backoff(failures_)));
      RETURN_IF_ERROR(Request());
    }
  }
  int64_t size() const override { return size_; }

 private:
  const std::string url_;
  std::unique_ptr<HttpClient> http_;
  int64_t size_ = -1;
  uint64_t offset_ = 0;
  std::string validator_;
  bool ranges_ = false;
  int failures_ = 0;
};

}  // namespace

bool UrlReader::IsUrl(const std::string& s) {
  return absl::StartsWith(s, "http://") || absl::StartsWith(s, "https://") ||
         absl::StartsWith(s, "s3://");
}

absl::StatusOr<std::unique_ptr<UrlReader>> UrlReader::Open(const std::string& url,
                                                           const S3Options& s3) {
  if (absl::StartsWith(url, "s3://")) {
    ASSIGN_OR_RETURN(S3Url loc, ParseS3Url(url));
    if (loc.key.empty() || loc.key.back() == '/') {
      return absl::InvalidArgumentError(absl::StrCat(url, " names a prefix, not an object"));
    }
    ASSIGN_OR_RETURN(auto client, S3Client::Create(s3));
    ASSIGN_OR_RETURN(auto reader, client->Get(loc.bucket, loc.key));
    return std::unique_ptr<UrlReader>(new S3UrlReader(std::move(client), std::move(reader)));
  }
  if (!IsUrl(url))
    return absl::InvalidArgumentError(absl::StrCat("not an http(s):// or s3:// URL: ", url));
  ASSIGN_OR_RETURN(auto http, HttpClient::Create(s3.http));
  auto reader = std::make_unique<HttpUrlReader>(url, std::move(http));
  RETURN_IF_ERROR(reader->Request());
  return std::unique_ptr<UrlReader>(std::move(reader));
}

}  // namespace tusk::http
