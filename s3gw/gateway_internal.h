#pragma once

// The gateway's parts, shared by the files that implement its operations
// (gateway.cc: requests, errors, buckets; gateway_objects.cc: objects;
// gateway_list.cc: listings, versions and diffs). Private to s3gw.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/hash.h"
#include "http/sigv4_verify.h"
#include "proto/s3gw.pb.h"
#include "s3gw/address.h"
#include "s3gw/checksum.h"
#include "s3gw/chunked.h"
#include "s3gw/gateway.h"

namespace tusk::s3gw {

inline constexpr char kS3Xmlns[] = "http://s3.amazonaws.com/doc/2006-03-01/";

// One request as the gateway sees it.
struct S3Call {
  const HttpRequest* http = nullptr;
  std::string method;
  std::string bucket;                        // decoded
  std::string key;                           // decoded
  std::map<std::string, std::string> query;  // decoded; a parameter without '=' maps to ""
  std::string access_key;                    // "" when authentication is off
  std::optional<http::VerifiedRequest> verified;
  std::string request_id;

  bool Has(const std::string& name) const { return query.count(name) > 0; }
  std::string Query(const std::string& name) const {
    auto it = query.find(name);
    return it == query.end() ? "" : it->second;
  }
  std::string Resource() const { return key.empty() ? "/" + bucket : "/" + bucket + "/" + key; }
};

// A status carrying S3's error code.
absl::Status S3Error(absl::StatusCode code, const char* s3_code, const std::string& message);
// S3's NotImplemented (501) for `what`.
absl::Status NotImplemented(const std::string& what);
// `status` with S3's code `s3_code` unless it has one.
absl::Status WithS3Code(absl::Status status, const char* s3_code);

// An S3 error document for `status` (its S3 code, or one chosen from its
// canonical code).
HttpResponse ErrorResponse(const S3Call& call, const absl::Status& status);
HttpResponse XmlResponse(int status, std::string body);
// A request answered at once, with no body read.
inline HttpHandler::Begun Answer(HttpResponse r) {
  HttpHandler::Begun b;
  b.response = std::move(r);
  return b;
}
// A request whose body goes to `sink`.
inline HttpHandler::Begun ReadBody(std::unique_ptr<BodySink> sink) {
  HttpHandler::Begun b;
  b.sink = std::move(sink);
  return b;
}

// Times as S3 writes them.
std::string IsoTime(absl::Time t);   // 2026-11-30T19:00:00.000Z
std::string HttpDate(absl::Time t);  // Mon, 30 Nov 2026 19:00:00 GMT
std::optional<absl::Time> ParseHttpDate(const std::string& text);
// A commit's time: when it finished (or started, while open).
absl::Time CommitTime(const pfs::CommitInfo& c);
// An object's ETag: its content hash (tusk's, of its chunk list) and its
// chunk count, "HASH-N". Like S3's multipart ETags it names a hash over the
// pieces' hashes and says it is no MD5 of the bytes, so clients that check
// single-part ETags against an MD5 (s3cmd) do not. Unquoted.
std::string Etag(const std::string& hash, uint64_t chunks);
std::string QuotedEtag(const std::string& etag);
// %-encoding of a key for encoding-type=url ('/' kept).
std::string UrlEncodeKey(absl::string_view key);
std::string UrlDecode(absl::string_view text, bool plus_is_space);

// A request body as it arrives: aws-chunked framing removed and every
// integrity check the client asked for made (the signed payload hash,
// chunk signatures, Content-MD5, x-amz-checksum-* headers or trailers,
// x-amz-decoded-content-length). The decoded bytes go to `output`; nothing
// may be kept until Finish succeeded.
class RequestBody {
 public:
  using Output = std::function<absl::Status(absl::string_view)>;
  static absl::StatusOr<std::unique_ptr<RequestBody>> Make(const S3Call& call, Output output);
  ~RequestBody();

  absl::Status Write(absl::string_view data);
  absl::Status Finish();
  uint64_t bytes() const { return bytes_; }

 private:
  RequestBody() = default;
  absl::Status Consume(absl::string_view data);

  Output output_;
  std::unique_ptr<AwsChunkedDecoder> decoder_;
  std::string expected_sha256_;  // hex, when the signature covers the payload
  std::unique_ptr<Sha256Hasher> sha256_;
  struct Check {
    std::string header;  // what the expected value came from
    std::string algorithm;
    std::string expected;  // base64; "" for a trailer not yet read
    std::unique_ptr<BodyChecksum> sum;
  };
  std::vector<Check> checks_;
  std::string trailer_checksum_;  // the algorithm the x-amz-trailer names
  int64_t decoded_length_ = -1;   // x-amz-decoded-content-length
  uint64_t bytes_ = 0;
};

// Collects a small body (an XML document) whole, then answers with `done`.
std::unique_ptr<BodySink> CollectBody(const S3Call& call, size_t limit,
                                      std::function<HttpResponse(const std::string&)> done);

class Gateway::Impl {
 public:
  Impl(pfs::Pfs* pfs, GatewayOptions options) : pfs_(pfs), options_(std::move(options)) {
    KeepPartsAlive();
  }

  Begun Begin(const HttpRequest& request);

  // Where a request points, resolved: the repo exists (else NoSuchBucket)
  // and the caller may read it (or write it: `write`).
  struct Target {
    RepoAddress address;
  };
  absl::StatusOr<Target> Resolve(const S3Call& call, bool write, bool check_repo = true);
  // Resolve, and the key must name a file (REF/PATH, not ending in '/'):
  // InvalidArgument otherwise.
  absl::StatusOr<Target> ResolveFile(const S3Call& call, bool write);
  absl::Status Authorize(const S3Call& call, bool write, const std::string& repo);

  // Reads of a branch see what writes staged in its open commit (a Spark
  // job's committer reads back and renames what its tasks wrote): the open
  // commit of branch `ref`, "" if it has none or `ref` is no plain branch.
  std::string OpenCommitOf(const std::string& repo, const std::string& ref);
  // The file at `path` as branch `ref` shows it (`open`: its open commit).
  absl::StatusOr<std::unique_ptr<pfs::FileReader>> OpenObject(const std::string& repo,
                                                              const std::string& ref,
                                                              const std::string& open,
                                                              const std::string& path);
  // Whether a file (not a directory) is at `path` as branch `ref` shows it.
  absl::StatusOr<bool> ObjectExists(const std::string& repo, const std::string& ref,
                                    const std::string& open, const std::string& path);

  // The source of a copy (x-amz-copy-source, with its conditions), opened.
  struct CopySource {
    RepoAddress address;
    std::string ref;  // the ref read (a versionId's commit, or the key's ref)
    std::unique_ptr<pfs::FileReader> reader;
  };
  absl::StatusOr<CopySource> OpenCopySource(const S3Call& call);

  // gateway.cc
  HttpResponse ListBuckets(const S3Call& call);
  HttpResponse HeadBucket(const S3Call& call);
  HttpResponse BucketSubresource(const S3Call& call);
  HttpResponse CreateBucket(const S3Call& call);

  // gateway_objects.cc
  HttpResponse GetObject(const S3Call& call, bool head);
  Begun PutObject(const S3Call& call);
  HttpResponse CopyObject(const S3Call& call);
  HttpResponse DeleteObject(const S3Call& call);
  Begun DeleteObjects(const S3Call& call);
  HttpResponse DeleteObjectsBody(const S3Call& call, const std::string& body);

  // gateway_multipart.cc
  HttpResponse MultipartCreate(const S3Call& call);
  Begun MultipartUploadPart(const S3Call& call);
  Begun MultipartComplete(const S3Call& call);
  HttpResponse MultipartAbort(const S3Call& call);
  HttpResponse MultipartListParts(const S3Call& call);
  HttpResponse MultipartList(const S3Call& call);
  // UploadPart with x-amz-copy-source (and x-amz-copy-source-range).
  HttpResponse UploadPartCopy(const S3Call& call, const v1::MultipartUpload& upload, int number);
  HttpResponse CompleteBody(const S3Call& call, const v1::MultipartUpload& upload,
                            const std::string& body);
  // Writes a part's record with the index records of its blobs; NoSuchUpload
  // if the upload ended meanwhile.
  absl::Status SavePart(const std::string& id, const v1::MultipartPart& part, pfs::KvBatch* blobs);

  // gateway_list.cc
  HttpResponse ListObjects(const S3Call& call);
  HttpResponse ListObjectVersions(const S3Call& call);
  // The diff object REF/.tusk/diff/FROM.jsonl, if `path` names one.
  std::optional<absl::StatusOr<std::string>> DiffObject(const Target& target);

  pfs::Pfs* pfs() const { return pfs_; }
  const GatewayOptions& options() const { return options_; }

 private:
  absl::StatusOr<S3Call> Parse(const HttpRequest& request);
  // S3's name of the operation a request asks for ("GetObject"); "" for
  // one the gateway does not implement.
  static std::string Operation(const S3Call& call);
  Begun Route(const S3Call& call, const std::string& op);
  // Multipart parts' chunks are live data for Pfs's GC.
  void KeepPartsAlive();
  // The upload the request's uploadId names, if it is for the request's key.
  absl::StatusOr<v1::MultipartUpload> LoadUpload(const S3Call& call, const RepoAddress& a);
  absl::StatusOr<std::vector<v1::MultipartPart>> LoadParts(const std::string& id);

  pfs::Pfs* const pfs_;
  const GatewayOptions options_;
  // Serializes the ends of uploads (Complete, Abort) with part records.
  absl::Mutex multipart_mu_;
};

}  // namespace tusk::s3gw
