// The gateway's front: parsing and authenticating a request, routing it to
// an operation, S3's errors, and the operations on buckets.

#include <openssl/rand.h>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/proto_util.h"
#include "common/status.h"
#include "pfs/refs.h"
#include "s3gw/gateway_internal.h"
#include "s3gw/xml.h"

namespace tusk::s3gw {
namespace {

// S3's HTTP status for each of its error codes.
int HttpStatusOf(absl::string_view code) {
  static const auto* table = new std::map<std::string, int, std::less<>>{
      {"AccessDenied", 403},
      {"AuthorizationHeaderMalformed", 400},
      {"AuthorizationQueryParametersError", 400},
      {"BadDigest", 400},
      {"BucketAlreadyOwnedByYou", 409},
      {"BucketNotEmpty", 409},
      {"EntityTooSmall", 400},
      {"IncompleteBody", 400},
      {"InternalError", 500},
      {"InvalidAccessKeyId", 403},
      {"InvalidArgument", 400},
      {"InvalidBucketName", 400},
      {"InvalidDigest", 400},
      {"InvalidPart", 400},
      {"InvalidPartOrder", 400},
      {"InvalidRange", 416},
      {"InvalidRequest", 400},
      {"KeyTooLongError", 400},
      {"MalformedXML", 400},
      {"MethodNotAllowed", 405},
      {"MissingContentLength", 411},
      {"NoSuchBucket", 404},
      {"NoSuchKey", 404},
      {"NoSuchUpload", 404},
      {"NoSuchVersion", 404},
      {"NotImplemented", 501},
      {"OperationAborted", 409},
      {"PreconditionFailed", 412},
      {"RequestTimeTooSkewed", 403},
      {"ServiceUnavailable", 503},
      {"SignatureDoesNotMatch", 403},
      {"SlowDown", 503},
      {"XAmzContentSHA256Mismatch", 400},
  };
  auto it = table->find(code);
  return it == table->end() ? 400 : it->second;
}

const char* DefaultS3Code(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kNotFound:
      return "NoSuchKey";
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return "InvalidArgument";
    case absl::StatusCode::kFailedPrecondition:
      return "InvalidRequest";
    case absl::StatusCode::kAlreadyExists:
      return "PreconditionFailed";
    case absl::StatusCode::kAborted:
      return "OperationAborted";
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
      return "AccessDenied";
    case absl::StatusCode::kUnimplemented:
      return "NotImplemented";
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
      return "SlowDown";
    default:
      return "InternalError";
  }
}

std::string RequestId() {
  unsigned char bytes[8];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return "0000000000000000";
  return ToHex(absl::string_view(reinterpret_cast<char*>(bytes), sizeof(bytes)));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

absl::Status S3Error(absl::StatusCode code, const char* s3_code, const std::string& message) {
  absl::Status st(code, message);
  st.SetPayload(http::kS3ErrorCodePayload, absl::Cord(s3_code));
  return st;
}

absl::Status NotImplemented(const std::string& what) {
  return S3Error(absl::StatusCode::kUnimplemented, "NotImplemented", what);
}

absl::Status WithS3Code(absl::Status status, const char* s3_code) {
  if (status.ok() || !http::S3ErrorCode(status).empty()) return status;
  status.SetPayload(http::kS3ErrorCodePayload, absl::Cord(s3_code));
  return status;
}

HttpResponse XmlResponse(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "application/xml");
  r.body = absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", body);
  return r;
}

HttpResponse ErrorResponse(const S3Call& call, const absl::Status& status) {
  std::string code = http::S3ErrorCode(status);
  if (code.empty()) code = DefaultS3Code(status.code());
  int http_status = HttpStatusOf(code);
  if (http_status >= 500) {
    LOG(WARNING) << "s3 gateway: " << call.method << " " << call.Resource() << ": " << status;
  }
  HttpResponse r =
      XmlResponse(http_status, absl::StrCat("<Error><Code>", code, "</Code><Message>",
                                            XmlEscape(status.message()), "</Message><Resource>",
                                            XmlEscape(call.Resource()), "</Resource><RequestId>",
                                            call.request_id, "</RequestId></Error>"));
  r.headers.emplace_back("x-amz-request-id", call.request_id);
  if (code == "SlowDown" || code == "ServiceUnavailable")
    r.headers.emplace_back("Retry-After", "1");
  // HEAD answers carry no body: S3 clients read the status alone.
  if (call.method == "HEAD") {
    r.body.clear();
    r.head_only = true;
    r.stream_size = 0;
  }
  return r;
}

std::string IsoTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

std::string HttpDate(absl::Time t) {
  return absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", t, absl::UTCTimeZone());
}

std::optional<absl::Time> ParseHttpDate(const std::string& text) {
  absl::Time t;
  std::string err;
  for (const char* format : {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                             "%a %b %e %H:%M:%S %Y", "%Y-%m-%dT%H:%M:%E*SZ"}) {
    if (absl::ParseTime(format, text, absl::UTCTimeZone(), &t, &err)) return t;
  }
  return std::nullopt;
}

absl::Time CommitTime(const pfs::CommitInfo& c) {
  return c.has_finished() ? FromTimestamp(c.finished()) : FromTimestamp(c.started());
}

std::string Etag(const std::string& hash, uint64_t chunks) {
  return absl::StrCat(hash, "-", chunks);
}

std::string QuotedEtag(const std::string& etag) { return absl::StrCat("\"", etag, "\""); }

std::string UrlEncodeKey(absl::string_view key) {
  std::string out;
  for (unsigned char c : key) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      absl::StrAppend(&out, "%",
                      absl::AsciiStrToUpper(ToHex(std::string(1, static_cast<char>(c)))));
    }
  }
  return out;
}

std::string UrlDecode(absl::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      int hi = HexValue(text[i + 1]);
      int lo = HexValue(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += (plus_is_space && c == '+') ? ' ' : c;
  }
  return out;
}

Gateway::Gateway(pfs::Pfs* pfs, GatewayOptions options)
    : impl_(std::make_unique<Impl>(pfs, std::move(options))) {}
Gateway::~Gateway() = default;

HttpHandler::Begun Gateway::Begin(const HttpRequest& request) { return impl_->Begin(request); }

absl::StatusOr<S3Call> Gateway::Impl::Parse(const HttpRequest& request) {
  S3Call call;
  call.http = &request;
  call.method = request.method;
  call.request_id = RequestId();
  if (!request.raw_query.empty()) {
    for (absl::string_view part : absl::StrSplit(request.raw_query, '&', absl::SkipEmpty())) {
      size_t eq = part.find('=');
      std::string name = UrlDecode(part.substr(0, eq), true);
      std::string value = eq == absl::string_view::npos ? "" : UrlDecode(part.substr(eq + 1), true);
      call.query.emplace(std::move(name), std::move(value));
    }
  }
  ASSIGN_OR_RETURN(
      S3Target target,
      ParseTarget(request.Header("Host"), UrlDecode(request.raw_path, false), options_.domain));
  call.bucket = std::move(target.bucket);
  call.key = std::move(target.key);
  return call;
}

HttpHandler::Begun Gateway::Impl::Begin(const HttpRequest& request) {
  auto parsed = Parse(request);
  if (!parsed.ok()) {
    S3Call bare;
    bare.method = request.method;
    bare.request_id = RequestId();
    Begun bad = Answer(ErrorResponse(bare, parsed.status()));
    bad.op = "bad_request";
    return bad;
  }
  S3Call& call = *parsed;
  if (options_.authority != nullptr) {
    http::IncomingRequest in{request.method, request.raw_path, request.raw_query, request.headers};
    auto verified = http::VerifySigV4(in, "s3", absl::Now(), [&](const std::string& key) {
      return options_.authority->Secret(key);
    });
    if (!verified.ok()) {
      Begun denied = Answer(ErrorResponse(call, verified.status()));
      denied.op = "denied";
      return denied;
    }
    call.access_key = verified->access_key;
    call.verified = std::move(*verified);
  }
  const std::string op = Operation(call);
  Begun begun = Route(call, op);
  begun.op = op.empty() ? "other" : op;
  if (begun.sink == nullptr) {
    begun.response.headers.emplace_back("x-amz-request-id", call.request_id);
    begun.response.headers.emplace_back("Server", "tusk");
  }
  return begun;
}

std::string Gateway::Impl::Operation(const S3Call& call) {
  const std::string& m = call.method;
  if (call.bucket.empty()) return m == "GET" ? "ListBuckets" : "";
  if (call.key.empty()) {
    if (m == "HEAD") return "HeadBucket";
    if (m == "GET") {
      if (call.Has("versions")) return "ListObjectVersions";
      if (call.Has("uploads")) return "ListMultipartUploads";
      if (call.Has("location")) return "GetBucketLocation";
      if (call.Has("versioning")) return "GetBucketVersioning";
      for (const char* sub :
           {"acl", "policy", "cors", "lifecycle", "tagging", "encryption", "object-lock", "website",
            "logging", "notification", "replication", "requestPayment", "accelerate",
            "ownershipControls", "policyStatus", "publicAccessBlock"}) {
        if (call.Has(sub)) return "";
      }
      return call.Query("list-type") == "2" ? "ListObjectsV2" : "ListObjects";
    }
    if (m == "PUT" && call.query.empty()) return "CreateBucket";
    if (m == "POST" && call.Has("delete")) return "DeleteObjects";
    if (m == "DELETE" && call.query.empty()) return "DeleteBucket";
    return "";
  }
  for (const char* sub : {"tagging", "acl", "attributes", "retention", "legal-hold", "torrent",
                          "restore", "select"}) {
    if (call.Has(sub)) return "";
  }
  if (m == "GET") return call.Has("uploadId") ? "ListParts" : "GetObject";
  if (m == "HEAD") return "HeadObject";
  if (m == "PUT") {
    if (call.Has("uploadId") || call.Has("partNumber")) return "UploadPart";
    return call.http->HasHeader("x-amz-copy-source") ? "CopyObject" : "PutObject";
  }
  if (m == "DELETE") return call.Has("uploadId") ? "AbortMultipartUpload" : "DeleteObject";
  if (m == "POST") {
    if (call.Has("uploads")) return "CreateMultipartUpload";
    if (call.Has("uploadId")) return "CompleteMultipartUpload";
  }
  return "";
}

HttpHandler::Begun Gateway::Impl::Route(const S3Call& call, const std::string& op) {
  if (op == "ListBuckets") return Answer(ListBuckets(call));
  if (op == "HeadBucket") return Answer(HeadBucket(call));
  if (op == "ListObjectVersions") return Answer(ListObjectVersions(call));
  if (op == "ListMultipartUploads") return Answer(MultipartList(call));
  if (op == "GetBucketLocation" || op == "GetBucketVersioning") {
    return Answer(BucketSubresource(call));
  }
  if (op == "ListObjects" || op == "ListObjectsV2") return Answer(ListObjects(call));
  if (op == "CreateBucket") return Answer(CreateBucket(call));
  if (op == "DeleteObjects") return DeleteObjects(call);
  if (op == "DeleteBucket") {
    return Answer(
        ErrorResponse(call, S3Error(absl::StatusCode::kFailedPrecondition, "MethodNotAllowed",
                                    "a bucket is a tusk repo: delete it with 'tusk delete repo'")));
  }
  if (op == "ListParts") return Answer(MultipartListParts(call));
  if (op == "GetObject" || op == "HeadObject") return Answer(GetObject(call, op == "HeadObject"));
  if (op == "UploadPart") return MultipartUploadPart(call);
  if (op == "CopyObject") return Answer(CopyObject(call));
  if (op == "PutObject") return PutObject(call);
  if (op == "AbortMultipartUpload") return Answer(MultipartAbort(call));
  if (op == "DeleteObject") return Answer(DeleteObject(call));
  if (op == "CreateMultipartUpload") return Answer(MultipartCreate(call));
  if (op == "CompleteMultipartUpload") return MultipartComplete(call);
  std::string what = call.method;
  if (!call.query.empty()) absl::StrAppend(&what, " ?", call.query.begin()->first);
  absl::StrAppend(&what, call.bucket.empty() ? " on the service"
                         : call.key.empty()  ? " on a bucket"
                                             : " on an object");
  return Answer(ErrorResponse(
      call, NotImplemented(absl::StrCat(what, " is not implemented by tusk's S3 gateway"))));
}

absl::Status Gateway::Impl::Authorize(const S3Call& call, bool write, const std::string& repo) {
  if (options_.authority == nullptr) return absl::OkStatus();
  if (options_.authority->Allowed(call.access_key, write, repo)) return absl::OkStatus();
  return S3Error(
      absl::StatusCode::kPermissionDenied, "AccessDenied",
      absl::StrCat("the token does not allow ", write ? "writing" : "reading", " repo ", repo));
}

absl::StatusOr<Gateway::Impl::Target> Gateway::Impl::Resolve(const S3Call& call, bool write,
                                                             bool check_repo) {
  ASSIGN_OR_RETURN(RepoAddress address, ResolveBucketKey(call.bucket, call.key));
  RETURN_IF_ERROR(Authorize(call, write, address.repo));
  if (!check_repo && !address.pachyderm_style) return Target{std::move(address)};
  auto repo = pfs_->InspectRepo(address.repo);
  if (!repo.ok()) {
    if (absl::IsNotFound(repo.status())) {
      return S3Error(absl::StatusCode::kNotFound, "NoSuchBucket",
                     absl::StrCat("no repo named ", address.repo));
    }
    return repo.status();
  }
  if (address.pachyderm_style) {
    // The bucket names a branch (or a commit on it): it must exist.
    if (address.read_only) {
      auto c = pfs_->InspectCommit(address.repo, address.ref);
      if (!c.ok()) {
        return S3Error(absl::StatusCode::kNotFound, "NoSuchBucket",
                       absl::StrCat("no commit ", address.ref, " in repo ", address.repo));
      }
    } else {
      auto b = pfs_->InspectBranch(address.repo, address.ref);
      if (!b.ok()) {
        return S3Error(absl::StatusCode::kNotFound, "NoSuchBucket",
                       absl::StrCat("no branch ", address.ref, " in repo ", address.repo));
      }
    }
  }
  if (write && address.read_only) {
    return S3Error(
        absl::StatusCode::kFailedPrecondition, "MethodNotAllowed",
        absl::StrCat("'", address.ref, "' names a commit, which is read-only; write to a branch"));
  }
  return Target{std::move(address)};
}

absl::StatusOr<Gateway::Impl::Target> Gateway::Impl::ResolveFile(const S3Call& call, bool write) {
  ASSIGN_OR_RETURN(Target t, Resolve(call, write));
  const RepoAddress& a = t.address;
  if (a.ref.empty() || a.path.empty() || absl::EndsWith(a.path, "/")) {
    return S3Error(absl::StatusCode::kInvalidArgument, "InvalidArgument",
                   absl::StrCat("the key '", call.key, "' names no file"));
  }
  return t;
}

HttpResponse Gateway::Impl::ListBuckets(const S3Call& call) {
  auto repos = pfs_->ListRepo();
  if (!repos.ok()) return ErrorResponse(call, repos.status());
  std::string body = absl::StrCat("<ListAllMyBucketsResult xmlns=\"", kS3Xmlns,
                                  "\"><Owner><ID>tusk</ID><DisplayName>tusk</DisplayName></"
                                  "Owner><Buckets>");
  for (const auto& r : *repos) {
    if (options_.authority != nullptr &&
        !options_.authority->Allowed(call.access_key, false, r.name())) {
      continue;
    }
    absl::StrAppend(&body, "<Bucket><Name>", XmlEscape(r.name()), "</Name><CreationDate>",
                    IsoTime(FromTimestamp(r.created())), "</CreationDate></Bucket>");
  }
  absl::StrAppend(&body, "</Buckets></ListAllMyBucketsResult>");
  return XmlResponse(200, std::move(body));
}

HttpResponse Gateway::Impl::HeadBucket(const S3Call& call) {
  auto target = Resolve(call, false);
  if (!target.ok()) return ErrorResponse(call, target.status());
  HttpResponse r;
  r.head_only = true;
  r.headers.emplace_back("x-amz-bucket-region", options_.region);
  return r;
}

HttpResponse Gateway::Impl::BucketSubresource(const S3Call& call) {
  auto target = Resolve(call, false);
  if (!target.ok()) return ErrorResponse(call, target.status());
  if (call.Has("location")) {
    // us-east-1 is written as an empty constraint.
    std::string region = options_.region == "us-east-1" ? "" : XmlEscape(options_.region);
    return XmlResponse(200, absl::StrCat("<LocationConstraint xmlns=\"", kS3Xmlns, "\">", region,
                                         "</LocationConstraint>"));
  }
  if (call.Has("versioning")) {
    // Every write is a commit and every commit is kept: always versioned.
    return XmlResponse(200, absl::StrCat("<VersioningConfiguration xmlns=\"", kS3Xmlns,
                                         "\"><Status>Enabled</Status></VersioningConfiguration>"));
  }
  return ErrorResponse(call, S3Error(absl::StatusCode::kUnimplemented, "NotImplemented",
                                     absl::StrCat("bucket subresource ?", call.query.begin()->first,
                                                  " is not implemented by tusk's S3 gateway")));
}

HttpResponse Gateway::Impl::CreateBucket(const S3Call& call) {
  auto address = ResolveBucketKey(call.bucket, "");
  if (!address.ok()) return ErrorResponse(call, address.status());
  absl::Status allowed = Authorize(call, true, address->repo);
  if (!allowed.ok()) return ErrorResponse(call, allowed);
  if (pfs_->InspectRepo(address->repo).ok()) {
    if (!address->pachyderm_style || pfs_->InspectBranch(address->repo, address->ref).ok()) {
      return ErrorResponse(call,
                           S3Error(absl::StatusCode::kAlreadyExists, "BucketAlreadyOwnedByYou",
                                   absl::StrCat("bucket ", call.bucket, " exists")));
    }
  }
  if (address->pachyderm_style) {
    return ErrorResponse(
        call, S3Error(absl::StatusCode::kUnimplemented, "NotImplemented",
                      "make branches with 'tusk create branch'; PUT makes lakeFS-style buckets "
                      "(repos) only"));
  }
  auto made = pfs_->CreateRepo(address->repo, "made by the S3 gateway");
  if (!made.ok()) return ErrorResponse(call, made.status());
  LOG(INFO) << "s3 gateway: created repo " << address->repo;
  HttpResponse r;
  r.headers.emplace_back("Location", "/" + address->repo);
  return r;
}

}  // namespace tusk::s3gw
