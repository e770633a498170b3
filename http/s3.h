#pragma once

// S3Client: the S3 calls tusk needs (list, head, streaming get, put), over
// HttpClient with SigV4, against AWS or any S3-compatible server.
//
// Addressing: with no endpoint, AWS (https://BUCKET.s3.REGION.amazonaws.com,
// virtual-host style); with an endpoint (MinIO, s3rver, Ceph...), path style
// (ENDPOINT/BUCKET/KEY) unless `virtual_host` is set.
//
// Retries: a request that fails with a transport error, 5xx, 429 or 408 is
// retried with exponential backoff and full jitter, up to `max_retries`
// times; a download that breaks in the middle continues from where it broke
// (a Range request pinned to the object's ETag). The error after the last
// retry names the object and the HTTP status.
//
// Thread safety: none; use one client per thread. Lifecycle: Create(), then
// any number of calls; an ObjectReader must not outlive its client.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "http/http_client.h"
#include "http/sigv4.h"

namespace tusk::http {

struct S3Options {
  std::string endpoint;  // e.g. http://127.0.0.1:4568; empty: AWS
  std::string region = "us-east-1";
  bool virtual_host = false;  // with an endpoint: BUCKET.host instead of host/BUCKET
  Credentials credentials;    // empty: anonymous requests
  HttpOptions http;
  int max_retries = 5;
  absl::Duration base_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
};

// s3://BUCKET/KEY, split. The key may be empty or end in '/' (a prefix).
struct S3Url {
  std::string bucket;
  std::string key;
};
absl::StatusOr<S3Url> ParseS3Url(const std::string& url);

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  std::string etag;
};

// An HTTP status that is not success, as a canonical error for `what` (404
// NotFound, 403 PermissionDenied, 5xx Unavailable, ...), with S3's error
// code and message from the body when it has them.
absl::Status StatusFromHttp(long status, const std::string& what, const std::string& body);

class ObjectReader;

class S3Client {
 public:
  static absl::StatusOr<std::unique_ptr<S3Client>> Create(const S3Options& options);
  ~S3Client();

  // Every object whose key starts with `prefix`, in key order.
  absl::Status List(const std::string& bucket, const std::string& prefix,
                    const std::function<absl::Status(const ObjectInfo&)>& fn);
  absl::StatusOr<ObjectInfo> Head(const std::string& bucket, const std::string& key);
  // Opens the object for reading (its size and ETag are known on return).
  absl::StatusOr<std::unique_ptr<ObjectReader>> Get(const std::string& bucket,
                                                    const std::string& key);
  // One PUT of `data` (not copied).
  absl::Status Put(const std::string& bucket, const std::string& key, absl::string_view data);
  // `length` bytes at `offset`. OutOfRange if the object is shorter.
  absl::StatusOr<std::string> GetRange(const std::string& bucket, const std::string& key,
                                       uint64_t offset, uint64_t length);
  // Deletes the object; OK if it was absent.
  absl::Status Delete(const std::string& bucket, const std::string& key);
  // OK if the bucket exists and the credentials may list it.
  absl::Status CheckBucket(const std::string& bucket);

  // Multipart upload: Create returns the upload id; each part (numbered from
  // 1, at least 5 MiB but the last) returns its ETag; Complete joins the parts
  // into the object, which then appears atomically; Abort drops them.
  absl::StatusOr<std::string> CreateMultipartUpload(const std::string& bucket,
                                                    const std::string& key);
  absl::StatusOr<std::string> UploadPart(const std::string& bucket, const std::string& key,
                                         const std::string& upload_id, int part_number,
                                         absl::string_view data);
  absl::Status CompleteMultipartUpload(const std::string& bucket, const std::string& key,
                                       const std::string& upload_id,
                                       const std::vector<std::string>& etags);
  absl::Status AbortMultipartUpload(const std::string& bucket, const std::string& key,
                                    const std::string& upload_id);

  // Requests sent (attempts included), for tests and statistics.
  uint64_t requests() const { return requests_; }

  const S3Options& options() const { return options_; }

 private:
  friend class ObjectReader;
  S3Client(const S3Options& options, std::unique_ptr<HttpClient> http)
      : options_(options), http_(std::move(http)) {}
  // A signed request for bucket/key with the given (already encoded) query.
  // `body` is not copied; `payload_sha256` empty: computed from `body`.
  absl::StatusOr<Request> MakeRequest(const std::string& method, const std::string& bucket,
                                      const std::string& key, const std::string& query,
                                      absl::string_view body,
                                      const std::string& payload_sha256 = "");
  // Sends with retries until the response is not retryable; 2xx responses
  // return with their body unread (`read_body` false) or read.
  absl::StatusOr<Response> Send(const std::function<absl::StatusOr<Request>()>& make,
                                const std::string& what, bool read_body);
  absl::Duration Backoff(int attempt) const;

  const S3Options options_;
  std::unique_ptr<HttpClient> http_;
  uint64_t requests_ = 0;
};

// S3Clients over one S3Options, for many threads: a call takes an idle
// client (or makes one) and gives it back, so connections are reused.
// Thread-safe.
class S3ClientPool {
 public:
  explicit S3ClientPool(S3Options options) : options_(std::move(options)) {}
  // An idle client, or a new one.
  absl::StatusOr<std::unique_ptr<S3Client>> Take();
  // Returns a client taken with Take, for reuse.
  void Give(std::unique_ptr<S3Client> client);
  // Runs fn(S3Client*) (returning a Status or StatusOr) with a client.
  template <typename F>
  auto Call(F fn) -> decltype(fn(nullptr)) {
    auto client = Take();
    if (!client.ok()) return client.status();
    auto result = fn(client->get());
    Give(std::move(*client));
    return result;
  }
  const S3Options& options() const { return options_; }

 private:
  const S3Options options_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<S3Client>> idle_ ABSL_GUARDED_BY(mu_);
};

// The body of one object, read in order; resumes after a broken connection.
// Not thread-safe. Uses its client's connection: read it to the end (or
// drop it) before the client's next call.
class ObjectReader {
 public:
  // Up to `n` bytes; 0 at the end. DataLoss if the object changed while it
  // was being read.
  absl::StatusOr<size_t> Read(char* buf, size_t n);
  const ObjectInfo& info() const { return info_; }

 private:
  friend class S3Client;
  ObjectReader(S3Client* client, std::string bucket, ObjectInfo info)
      : client_(client), bucket_(std::move(bucket)), info_(std::move(info)) {}
  S3Client* const client_;
  const std::string bucket_;
  const ObjectInfo info_;
  uint64_t offset_ = 0;
  int failures_ = 0;
};

}  // namespace tusk::http
