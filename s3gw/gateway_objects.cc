// Objects: GET and HEAD (ranges, conditions), PUT (streamed, checked,
// put-if-absent), copy, DELETE and DeleteObjects; and request bodies.

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/log.h"
#include "common/status.h"
#include "pfs/refs.h"
#include "s3gw/gateway_internal.h"
#include "s3gw/xml.h"

namespace tusk::s3gw {
namespace {

// Objects up to this size are read whole and sent from memory.
constexpr uint64_t kInlineBody = 256 << 10;

bool IsHex64(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!absl::ascii_isxdigit(c)) return false;
  }
  return true;
}

// Whether an If-Match / If-None-Match list matches `etag` ("*" matches
// anything). ETags compare without their quotes and W/ prefix.
bool EtagListMatches(const std::string& list, const std::string& hash) {
  for (absl::string_view part : absl::StrSplit(list, ',')) {
    part = absl::StripAsciiWhitespace(part);
    absl::ConsumePrefix(&part, "W/");
    if (part == "*") return true;
    absl::ConsumePrefix(&part, "\"");
    absl::ConsumeSuffix(&part, "\"");
    if (part == hash) return true;
  }
  return false;
}

// A Range header's single byte range, clipped to `size`.
struct ByteRange {
  uint64_t first = 0;
  uint64_t length = 0;
};

// nullopt: no range (or one S3 ignores: several ranges, not bytes=).
// InvalidRange when it starts beyond the end.
absl::StatusOr<std::optional<ByteRange>> ParseRange(const std::string& header, uint64_t size) {
  absl::string_view h = absl::StripAsciiWhitespace(header);
  if (!absl::ConsumePrefix(&h, "bytes=") || absl::StrContains(h, ',')) return std::nullopt;
  size_t dash = h.find('-');
  if (dash == absl::string_view::npos) return std::nullopt;
  absl::string_view a = absl::StripAsciiWhitespace(h.substr(0, dash));
  absl::string_view b = absl::StripAsciiWhitespace(h.substr(dash + 1));
  uint64_t first = 0;
  uint64_t last = 0;
  auto unsatisfiable = [&] {
    return S3Error(absl::StatusCode::kOutOfRange, "InvalidRange",
                   absl::StrCat("the range '", header, "' is not satisfiable: the object has ",
                                size, " bytes"));
  };
  if (a.empty()) {  // bytes=-N: the last N bytes
    if (!absl::SimpleAtoi(b, &last)) return std::nullopt;
    if (last == 0 || size == 0) return unsatisfiable();
    uint64_t n = std::min(last, size);
    return ByteRange{size - n, n};
  }
  if (!absl::SimpleAtoi(a, &first)) return std::nullopt;
  if (b.empty()) {
    last = size == 0 ? 0 : size - 1;
  } else if (!absl::SimpleAtoi(b, &last) || last < first) {
    return std::nullopt;
  }
  if (first >= size) return unsatisfiable();
  last = std::min(last, size - 1);
  return ByteRange{first, last - first + 1};
}

class ReaderSource final : public BodySource {
 public:
  explicit ReaderSource(std::unique_ptr<pfs::FileReader> reader) : reader_(std::move(reader)) {}
  absl::StatusOr<std::string> Next() override { return reader_->Next(); }

 private:
  std::unique_ptr<pfs::FileReader> reader_;
};

// The response-* parameters a (presigned) GET may set.
void ResponseOverrides(const S3Call& call, HttpResponse* r) {
  static const std::pair<const char*, const char*> kOverrides[] = {
      {"response-content-type", "Content-Type"},
      {"response-content-disposition", "Content-Disposition"},
      {"response-content-encoding", "Content-Encoding"},
      {"response-content-language", "Content-Language"},
      {"response-cache-control", "Cache-Control"},
      {"response-expires", "Expires"},
  };
  for (const auto& [param, header] : kOverrides) {
    if (!call.Has(param)) continue;
    for (auto& h : r->headers) {
      if (absl::EqualsIgnoreCase(h.first, header)) h.first.clear();
    }
    r->headers.emplace_back(header, call.Query(param));
  }
  std::erase_if(r->headers, [](const auto& h) { return h.first.empty(); });
}

// The path a request's key names, as tusk writes it ("/a/b").
std::string PfsPath(const RepoAddress& a) { return "/" + a.path; }

HttpResponse VersionedOk(int status, const std::string& commit_id, const std::string& hash) {
  HttpResponse r;
  r.status = status;
  if (!hash.empty()) r.headers.emplace_back("ETag", QuotedEtag(hash));
  if (!commit_id.empty()) r.headers.emplace_back("x-amz-version-id", commit_id);
  return r;
}

// A PUT's body, streamed into a bind_at_close upload.
class PutSink final : public BodySink {
 public:
  PutSink(S3Call call, std::unique_ptr<pfs::Upload> upload, bool if_absent, std::string path)
      : call_(std::move(call)),
        upload_(std::move(upload)),
        if_absent_(if_absent),
        path_(std::move(path)) {}

  absl::Status Init() {
    ASSIGN_OR_RETURN(body_, RequestBody::Make(call_, [this](absl::string_view piece) {
                       return upload_->Write(piece);
                     }));
    return upload_->BeginFile(path_, false);
  }

  absl::Status Write(absl::string_view data) override { return body_->Write(data); }

  HttpResponse Finish() override {
    absl::Status st = body_->Finish();
    if (st.ok()) st = upload_->EndFile(body_->bytes());
    if (st.ok() && if_absent_) st = upload_->RequireAbsent(path_);
    if (!st.ok()) return Fail(st);
    auto commit = upload_->Close();
    if (!commit.ok()) return Fail(commit.status());
    return VersionedOk(200, commit->id(),
                       Etag(upload_->last_file_hash(), upload_->last_file_chunks().size()));
  }

  HttpResponse Fail(const absl::Status& error) override {
    upload_.reset();  // nothing of it is kept
    absl::Status st = error;
    if (absl::IsAlreadyExists(st)) {
      st = S3Error(absl::StatusCode::kFailedPrecondition, "PreconditionFailed",
                   absl::StrCat("If-None-Match: * and ", call_.key, " exists"));
    }
    return ErrorResponse(call_, st);
  }

 private:
  const S3Call call_;
  std::unique_ptr<pfs::Upload> upload_;
  const bool if_absent_;
  const std::string path_;
  std::unique_ptr<RequestBody> body_;
};

// Drops a body, then answers `response` (a PUT that does nothing).
class DiscardSink final : public BodySink {
 public:
  explicit DiscardSink(HttpResponse r) : response_(std::move(r)) {}
  absl::Status Write(absl::string_view) override { return absl::OkStatus(); }
  HttpResponse Finish() override { return std::move(response_); }
  HttpResponse Fail(const absl::Status&) override { return std::move(response_); }

 private:
  HttpResponse response_;
};

class CollectSink final : public BodySink {
 public:
  CollectSink(S3Call call, size_t limit, std::function<HttpResponse(const std::string&)> done)
      : call_(std::move(call)), limit_(limit), done_(std::move(done)) {}

  absl::Status Init() {
    ASSIGN_OR_RETURN(body_, RequestBody::Make(call_, [this](absl::string_view piece) {
                       if (data_.size() + piece.size() > limit_) {
                         return S3Error(
                             absl::StatusCode::kInvalidArgument, "MalformedXML",
                             absl::StrCat("the request body is larger than ", limit_, " bytes"));
                       }
                       data_.append(piece.data(), piece.size());
                       return absl::OkStatus();
                     }));
    return absl::OkStatus();
  }
  absl::Status Write(absl::string_view data) override { return body_->Write(data); }
  HttpResponse Finish() override {
    absl::Status st = body_->Finish();
    if (!st.ok()) return Fail(st);
    return done_(data_);
  }
  HttpResponse Fail(const absl::Status& error) override { return ErrorResponse(call_, error); }

 private:
  const S3Call call_;
  const size_t limit_;
  std::function<HttpResponse(const std::string&)> done_;
  std::unique_ptr<RequestBody> body_;
  std::string data_;
};

// A sink that answers with an error as soon as the body is read.
class ErrorSink final : public BodySink {
 public:
  ErrorSink(S3Call call, absl::Status error) : call_(std::move(call)), error_(std::move(error)) {}
  absl::Status Write(absl::string_view) override { return absl::OkStatus(); }
  HttpResponse Finish() override { return ErrorResponse(call_, error_); }
  HttpResponse Fail(const absl::Status&) override { return ErrorResponse(call_, error_); }

 private:
  const S3Call call_;
  const absl::Status error_;
};

}  // namespace

// ---- request bodies ----

absl::StatusOr<std::unique_ptr<RequestBody>> RequestBody::Make(const S3Call& call, Output output) {
  auto b = std::unique_ptr<RequestBody>(new RequestBody());
  b->output_ = std::move(output);
  const HttpRequest& h = *call.http;
  std::string content_sha = h.Header("x-amz-content-sha256");
  if (absl::StartsWith(content_sha, "STREAMING-")) {
    ASSIGN_OR_RETURN(b->decoder_, AwsChunkedDecoder::Make(content_sha, call.verified,
                                                          [raw = b.get()](absl::string_view piece) {
                                                            return raw->Consume(piece);
                                                          }));
    std::string decoded = h.Header("x-amz-decoded-content-length");
    if (!decoded.empty() && !absl::SimpleAtoi(decoded, &b->decoded_length_)) {
      return S3Error(absl::StatusCode::kInvalidArgument, "InvalidArgument",
                     "x-amz-decoded-content-length is not a number");
    }
    std::string trailer = absl::AsciiStrToLower(h.Header("x-amz-trailer"));
    std::string algorithm;
    if (!trailer.empty()) {
      if (!IsChecksumHeader(trailer, &algorithm)) {
        return S3Error(absl::StatusCode::kInvalidArgument, "InvalidArgument",
                       absl::StrCat("x-amz-trailer '", trailer, "' is not a checksum"));
      }
      ASSIGN_OR_RETURN(auto sum, BodyChecksum::Make(algorithm));
      b->trailer_checksum_ = trailer;
      b->checks_.push_back({trailer, algorithm, "", std::move(sum)});
    }
  } else if (IsHex64(content_sha) && call.verified.has_value()) {
    // The signature covers this hash: the body must have it.
    b->expected_sha256_ = absl::AsciiStrToLower(content_sha);
    b->sha256_ = std::make_unique<Sha256Hasher>();
  }
  std::string md5 = h.Header("Content-MD5");
  if (!md5.empty()) {
    ASSIGN_OR_RETURN(auto sum, BodyChecksum::Make("md5"));
    b->checks_.push_back({"Content-MD5", "md5", md5, std::move(sum)});
  }
  for (const auto& [name, value] : h.headers) {
    std::string algorithm;
    if (!IsChecksumHeader(name, &algorithm)) continue;
    auto sum = BodyChecksum::Make(algorithm);
    if (!sum.ok()) return WithS3Code(sum.status(), "InvalidArgument");
    b->checks_.push_back({absl::AsciiStrToLower(name), algorithm, value, std::move(*sum)});
  }
  return b;
}

RequestBody::~RequestBody() = default;

absl::Status RequestBody::Write(absl::string_view data) {
  if (decoder_) return decoder_->Feed(data);
  return Consume(data);
}

absl::Status RequestBody::Consume(absl::string_view data) {
  bytes_ += data.size();
  if (sha256_) sha256_->Update(data);
  for (auto& c : checks_) c.sum->Update(data);
  return output_(data);
}

absl::Status RequestBody::Finish() {
  if (decoder_) {
    RETURN_IF_ERROR(decoder_->Finish());
    if (decoded_length_ >= 0 && static_cast<uint64_t>(decoded_length_) != bytes_) {
      return S3Error(absl::StatusCode::kInvalidArgument, "IncompleteBody",
                     absl::StrCat("the body decoded to ", bytes_,
                                  " bytes; x-amz-decoded-content-length says ", decoded_length_));
    }
    for (auto& c : checks_) {
      if (c.header != trailer_checksum_) continue;
      auto it = decoder_->trailers().find(trailer_checksum_);
      if (it == decoder_->trailers().end()) {
        return S3Error(absl::StatusCode::kInvalidArgument, "IncompleteBody",
                       absl::StrCat("the trailer ", trailer_checksum_, " never came"));
      }
      c.expected = it->second;
    }
  }
  if (sha256_) {
    std::string got = sha256_->Finish().Hex();
    if (got != expected_sha256_) {
      return S3Error(absl::StatusCode::kInvalidArgument, "XAmzContentSHA256Mismatch",
                     absl::StrCat("the body's SHA-256 is ", got, "; x-amz-content-sha256 says ",
                                  expected_sha256_));
    }
  }
  for (auto& c : checks_) {
    std::string got = c.sum->Base64();
    if (got != c.expected) {
      return S3Error(absl::StatusCode::kInvalidArgument, "BadDigest",
                     absl::StrCat("the body's ", c.algorithm, " is ", got, "; ", c.header, " says ",
                                  c.expected));
    }
  }
  return absl::OkStatus();
}

std::unique_ptr<BodySink> CollectBody(const S3Call& call, size_t limit,
                                      std::function<HttpResponse(const std::string&)> done) {
  auto sink = std::make_unique<CollectSink>(call, limit, std::move(done));
  absl::Status st = sink->Init();
  if (!st.ok()) return std::make_unique<ErrorSink>(call, st);
  return sink;
}

// ---- the view of a branch with an open commit ----

std::string Gateway::Impl::OpenCommitOf(const std::string& repo, const std::string& ref) {
  auto parsed = pfs::ParseRef(ref);
  if (!parsed.ok() || parsed->is_commit_id || parsed->ancestors != 0) return "";
  auto branch = pfs_->InspectBranch(repo, ref);
  return branch.ok() ? branch->open_commit() : "";
}

absl::StatusOr<std::unique_ptr<pfs::FileReader>> Gateway::Impl::OpenObject(
    const std::string& repo, const std::string& ref, const std::string& open,
    const std::string& path) {
  if (!open.empty()) {
    auto staged = pfs_->StagedChangeAt(repo, open, path);
    // The commit may have finished meanwhile: then the branch's head has it.
    if (staged.ok() && staged->has_value()) {
      if ((*staged)->deleted) {
        return absl::NotFoundError(absl::StrCat(path, " is deleted in open commit ", open));
      }
      auto reader = pfs_->OpenStagedFile(repo, open, path);
      if (reader.ok() || !absl::IsFailedPrecondition(reader.status())) return reader;
    } else if (!staged.ok() && !absl::IsFailedPrecondition(staged.status())) {
      return staged.status();
    }
  }
  return pfs_->OpenFile(repo, ref, path);
}

absl::StatusOr<bool> Gateway::Impl::ObjectExists(const std::string& repo, const std::string& ref,
                                                 const std::string& open, const std::string& path) {
  if (!open.empty()) {
    auto staged = pfs_->StagedChangeAt(repo, open, path);
    if (staged.ok() && staged->has_value()) return !(*staged)->deleted;
    if (!staged.ok() && !absl::IsFailedPrecondition(staged.status())) return staged.status();
  }
  auto info = pfs_->InspectFile(repo, ref, path);
  if (absl::IsNotFound(info.status())) return false;
  if (!info.ok()) return info.status();
  return info->type() == pfs::v1::FILE;
}

// ---- operations ----

HttpResponse Gateway::Impl::GetObject(const S3Call& call, bool head) {
  // The repo's existence is checked only when something is not found: the
  // common case costs no extra lookups.
  auto target = Resolve(call, false, /*check_repo=*/false);
  if (!target.ok()) return ErrorResponse(call, target.status());
  RepoAddress& a = target->address;
  if (a.ref.empty() || a.path.empty() || absl::EndsWith(a.path, "/")) {
    return ErrorResponse(call, S3Error(absl::StatusCode::kNotFound, "NoSuchKey",
                                       absl::StrCat("no object ", call.key, " in ", call.bucket)));
  }
  std::string ref = a.ref;
  if (call.Has("versionId") && call.Query("versionId") != "null") {
    auto parsed = pfs::ParseRef(call.Query("versionId"));
    if (!parsed.ok() || !parsed->is_commit_id || parsed->ancestors != 0) {
      return ErrorResponse(call, S3Error(absl::StatusCode::kInvalidArgument, "InvalidArgument",
                                         "versionId must be a commit id (32 hex characters)"));
    }
    ref = call.Query("versionId");
  }
  if (auto diff = DiffObject(*target)) {
    if (!diff->ok()) return ErrorResponse(call, diff->status());
    HttpResponse r;
    r.headers.emplace_back("Content-Type", "application/x-ndjson");
    r.headers.emplace_back("ETag", QuotedEtag(Etag(Sha256(**diff).Hex(), 1)));
    if (head) {
      r.head_only = true;
      r.stream_size = (*diff)->size();
    } else {
      r.body = std::move(**diff);
    }
    return r;
  }
  // A version is a finished commit; the branch shows its open commit too.
  const std::string open = ref == a.ref ? OpenCommitOf(a.repo, a.ref) : "";
  auto reader = OpenObject(a.repo, ref, open, PfsPath(a));
  if (!reader.ok()) {
    if (absl::IsNotFound(reader.status()) || absl::IsFailedPrecondition(reader.status()) ||
        absl::IsInvalidArgument(reader.status())) {
      auto repo = Resolve(call, false);
      if (!repo.ok()) return ErrorResponse(call, repo.status());  // NoSuchBucket
      return ErrorResponse(call, S3Error(absl::StatusCode::kNotFound, "NoSuchKey",
                                         absl::StrCat("no object ", call.key, " in ", call.bucket,
                                                      " (", reader.status().message(), ")")));
    }
    return ErrorResponse(call, reader.status());
  }
  const pfs::FileInfo& info = (*reader)->info();
  const absl::Time modified = CommitTime((*reader)->commit());
  const uint64_t size = info.size_bytes();
  HttpResponse r;
  const std::string etag = Etag(info.hash(), info.chunk_count());
  r.headers.emplace_back("ETag", QuotedEtag(etag));
  r.headers.emplace_back("Last-Modified", HttpDate(modified));
  r.headers.emplace_back("x-amz-version-id", info.commit());
  r.headers.emplace_back("Accept-Ranges", "bytes");
  r.headers.emplace_back("Content-Type", "binary/octet-stream");

  // Conditions, in RFC 7232's order.
  const HttpRequest& h = *call.http;
  const std::string if_match = h.Header("If-Match");
  const std::string if_none_match = h.Header("If-None-Match");
  // HTTP dates have whole seconds: compare at that precision.
  const absl::Time modified_s = absl::FromUnixSeconds(absl::ToUnixSeconds(modified));
  if (!if_match.empty()) {
    if (!EtagListMatches(if_match, etag)) {
      return ErrorResponse(call, S3Error(absl::StatusCode::kFailedPrecondition,
                                         "PreconditionFailed", "If-Match does not match the ETag"));
    }
  } else if (auto since = ParseHttpDate(h.Header("If-Unmodified-Since"))) {
    if (modified_s > *since) {
      return ErrorResponse(call,
                           S3Error(absl::StatusCode::kFailedPrecondition, "PreconditionFailed",
                                   "the object was modified after If-Unmodified-Since"));
    }
  }
  bool not_modified = false;
  if (!if_none_match.empty()) {
    not_modified = EtagListMatches(if_none_match, etag);
  } else if (auto since = ParseHttpDate(h.Header("If-Modified-Since"))) {
    not_modified = modified_s <= *since;
  }
  if (not_modified) {
    r.status = 304;
    r.head_only = true;  // no body, no length
    r.stream_size = 0;
    return r;
  }

  uint64_t first = 0;
  uint64_t length = size;
  std::string range_header = h.Header("Range");
  if (!range_header.empty()) {
    auto range = ParseRange(range_header, size);
    if (!range.ok()) {
      HttpResponse e = ErrorResponse(call, range.status());
      e.headers.emplace_back("Content-Range", absl::StrCat("bytes */", size));
      return e;
    }
    if (range->has_value()) {
      first = (*range)->first;
      length = (*range)->length;
      r.status = 206;
      r.headers.emplace_back("Content-Range",
                             absl::StrCat("bytes ", first, "-", first + length - 1, "/", size));
    }
  }
  ResponseOverrides(call, &r);
  r.stream_size = length;
  if (head) {
    r.head_only = true;
    return r;
  }
  (*reader)->Limit(first, length);
  if (length <= kInlineBody) {
    // Small: read it here and answer from memory (no pull callbacks).
    while (true) {
      auto piece = (*reader)->Next();
      if (!piece.ok()) return ErrorResponse(call, piece.status());
      if (piece->empty()) break;
      r.body.append(*piece);
    }
    r.stream_size = 0;
    return r;
  }
  r.stream = std::make_unique<ReaderSource>(std::move(*reader));
  return r;
}

HttpHandler::Begun Gateway::Impl::PutObject(const S3Call& call) {
  auto target = Resolve(call, true);
  if (!target.ok()) return Answer(ErrorResponse(call, target.status()));
  const RepoAddress& a = target->address;
  if (a.ref.empty() || a.path.empty()) {
    return Answer(ErrorResponse(call, S3Error(absl::StatusCode::kInvalidArgument, "InvalidArgument",
                                              absl::StrCat("the key '", call.key,
                                                           "' names no file (lakeFS style keys are "
                                                           "BRANCH/PATH)"))));
  }
  if (absl::EndsWith(a.path, "/")) {
    // A "folder" marker: tusk has directories of its own, so an empty
    // marker is accepted and stores nothing.
    if (call.http->Header("Content-Length") != "" && call.http->Header("Content-Length") != "0") {
      return Answer(
          ErrorResponse(call, S3Error(absl::StatusCode::kInvalidArgument, "InvalidArgument",
                                      "a key ending in '/' can only be an empty folder "
                                      "marker")));
    }
    return ReadBody(std::make_unique<DiscardSink>(VersionedOk(200, "", Etag(Sha256("").Hex(), 0))));
  }
  const std::string if_none_match = call.http->Header("If-None-Match");
  if (!if_none_match.empty() && absl::StripAsciiWhitespace(if_none_match) != "*") {
    return Answer(ErrorResponse(call, NotImplemented("a PUT takes If-None-Match: * only")));
  }
  if (call.http->HasHeader("If-Match")) {
    return Answer(ErrorResponse(call, NotImplemented("If-Match on PUT is not implemented")));
  }
  pfs::AutoCommitOptions auto_opts;
  auto_opts.bind_at_close = true;
  auto_opts.message = absl::StrCat("s3 PutObject ", a.path);
  auto upload = pfs_->BeginUpload(a.repo, a.ref, auto_opts);
  if (!upload.ok()) return Answer(ErrorResponse(call, upload.status()));
  auto sink =
      std::make_unique<PutSink>(call, std::move(*upload), !if_none_match.empty(), PfsPath(a));
  absl::Status st = sink->Init();
  if (!st.ok()) return Answer(ErrorResponse(call, st));
  return ReadBody(std::move(sink));
}

absl::StatusOr<Gateway::Impl::CopySource> Gateway::Impl::OpenCopySource(const S3Call& call) {
  // x-amz-copy-source: [/]BUCKET/KEY[?versionId=V], %-encoded.
  std::string source = call.http->Header("x-amz-copy-source");
  std::string version;
  size_t q = source.find('?');
  if (q != std::string::npos) {
    absl::string_view qs = absl::string_view(source).substr(q + 1);
    if (absl::ConsumePrefix(&qs, "versionId=")) version = UrlDecode(qs, true);
    source.resize(q);
  }
  std::string decoded = UrlDecode(source, false);
  if (!absl::StartsWith(decoded, "/")) decoded = "/" + decoded;
  ASSIGN_OR_RETURN(S3Target src_target, ParseTarget("", decoded, ""));
  S3Call src_call = call;
  src_call.bucket = src_target.bucket;
  src_call.key = src_target.key;
  ASSIGN_OR_RETURN(Target src, Resolve(src_call, false));
  CopySource out;
  out.address = src.address;
  const RepoAddress& s = out.address;
  out.ref = version.empty() || version == "null" ? s.ref : version;
  auto reader =
      OpenObject(s.repo, out.ref, out.ref == s.ref ? OpenCommitOf(s.repo, s.ref) : "", PfsPath(s));
  if (!reader.ok()) {
    if (absl::IsNotFound(reader.status()) || absl::IsFailedPrecondition(reader.status())) {
      return S3Error(
          absl::StatusCode::kNotFound, "NoSuchKey",
          absl::StrCat("the copy source: no object ", src_call.key, " in ", src_call.bucket));
    }
    return reader.status();
  }
  out.reader = std::move(*reader);
  const std::string etag = Etag(out.reader->info().hash(), out.reader->info().chunk_count());
  std::string if_match = call.http->Header("x-amz-copy-source-if-match");
  std::string if_none = call.http->Header("x-amz-copy-source-if-none-match");
  if ((!if_match.empty() && !EtagListMatches(if_match, etag)) ||
      (!if_none.empty() && EtagListMatches(if_none, etag))) {
    return S3Error(absl::StatusCode::kFailedPrecondition, "PreconditionFailed",
                   "the copy source's ETag does not meet the condition");
  }
  return out;
}

HttpResponse Gateway::Impl::CopyObject(const S3Call& call) {
  auto target = ResolveFile(call, true);
  if (!target.ok()) return ErrorResponse(call, target.status());
  const RepoAddress& a = target->address;
  auto source = OpenCopySource(call);
  if (!source.ok()) return ErrorResponse(call, source.status());
  const RepoAddress& s = source->address;
  const std::string& src_ref = source->ref;
  auto& reader = source->reader;
  if (s.repo == a.repo && src_ref == a.ref && s.path == a.path) {
    // S3 refuses a copy onto itself without a change of metadata; tusk has
    // no metadata to change, and the object is already what it would be.
    return ErrorResponse(
        call, S3Error(absl::StatusCode::kInvalidArgument, "InvalidRequest",
                      "this copy request is illegal because it is trying to copy an object to "
                      "itself without changing the object's metadata"));
  }
  // By reference: chunks are content-addressed, so the copy stores nothing
  // new, within a repo or across repos.
  pfs::AutoCommitOptions auto_opts;
  auto_opts.bind_at_close = true;
  auto_opts.message =
      absl::StrCat("s3 CopyObject ", s.repo, "/", src_ref, "/", s.path, " to ", a.path);
  auto upload = pfs_->BeginUpload(a.repo, a.ref, auto_opts);
  if (!upload.ok()) return ErrorResponse(call, upload.status());
  absl::Status st = (*upload)->PutChunks(PfsPath(a), reader->chunks());
  if (!st.ok()) return ErrorResponse(call, st);
  auto commit = (*upload)->Close();
  if (!commit.ok()) return ErrorResponse(call, commit.status());
  HttpResponse r = XmlResponse(
      200, absl::StrCat("<CopyObjectResult xmlns=\"", kS3Xmlns, "\"><LastModified>",
                        IsoTime(CommitTime(*commit)), "</LastModified><ETag>",
                        XmlEscape(QuotedEtag(Etag((*upload)->last_file_hash(),
                                                  (*upload)->last_file_chunks().size()))),
                        "</ETag></CopyObjectResult>"));
  r.headers.emplace_back("x-amz-version-id", commit->id());
  r.headers.emplace_back("x-amz-copy-source-version-id", reader->info().commit());
  return r;
}

HttpResponse Gateway::Impl::DeleteObject(const S3Call& call) {
  auto target = Resolve(call, true);
  if (!target.ok()) return ErrorResponse(call, target.status());
  const RepoAddress& a = target->address;
  HttpResponse done;
  done.status = 204;
  if (a.ref.empty() || a.path.empty() || absl::EndsWith(a.path, "/")) return done;
  if (call.Has("versionId")) {
    return ErrorResponse(call, S3Error(absl::StatusCode::kFailedPrecondition, "MethodNotAllowed",
                                       "a version is a commit, and commits are immutable; "
                                       "delete the key on its branch"));
  }
  // Only a file: a DELETE never removes a directory (S3 has none, so a key
  // that is a directory here is absent there).
  auto exists = ObjectExists(a.repo, a.ref, OpenCommitOf(a.repo, a.ref), PfsPath(a));
  if (!exists.ok()) return ErrorResponse(call, exists.status());
  if (!*exists) return done;  // S3: deleting nothing succeeds
  pfs::AutoCommitOptions auto_opts;
  auto_opts.bind_at_close = true;
  auto_opts.message = absl::StrCat("s3 DeleteObject ", a.path);
  auto upload = pfs_->BeginUpload(a.repo, a.ref, auto_opts);
  if (!upload.ok()) return ErrorResponse(call, upload.status());
  absl::Status st = (*upload)->Delete(PfsPath(a));
  if (absl::IsNotFound(st)) return done;
  if (!st.ok()) return ErrorResponse(call, st);
  auto commit = (*upload)->Close();
  if (!commit.ok()) return ErrorResponse(call, commit.status());
  done.headers.emplace_back("x-amz-version-id", commit->id());
  done.headers.emplace_back("x-amz-delete-marker", "true");
  return done;
}

HttpHandler::Begun Gateway::Impl::DeleteObjects(const S3Call& call) {
  auto target = Resolve(call, true);
  if (!target.ok()) return Answer(ErrorResponse(call, target.status()));
  return ReadBody(CollectBody(call, 2 << 20, [this, call](const std::string& body) {
    return DeleteObjectsBody(call, body);
  }));
}

HttpResponse Gateway::Impl::DeleteObjectsBody(const S3Call& call, const std::string& body) {
  auto doc = ParseXml(body);
  if (!doc.ok()) return ErrorResponse(call, doc.status());
  if ((*doc)->name != "Delete") {
    return ErrorResponse(call, S3Error(absl::StatusCode::kInvalidArgument, "MalformedXML",
                                       "the root element must be Delete"));
  }
  const bool quiet = absl::AsciiStrToLower((*doc)->ChildText("Quiet")) == "true";
  std::vector<std::string> keys;
  for (const auto& child : (*doc)->children) {
    if (child->name != "Object") continue;
    const XmlElement* key = child->Child("Key");
    if (key == nullptr) {
      return ErrorResponse(call, S3Error(absl::StatusCode::kInvalidArgument, "MalformedXML",
                                         "an Object has no Key"));
    }
    keys.push_back(key->text);
  }
  if (keys.empty() || keys.size() > 1000) {
    return ErrorResponse(
        call, S3Error(absl::StatusCode::kInvalidArgument, "MalformedXML",
                      absl::StrCat("DeleteObjects takes 1 to 1000 keys, not ", keys.size())));
  }
  // One commit per branch the keys name.
  struct Group {
    std::string repo;
    std::string ref;
    std::vector<std::pair<std::string, std::string>> files;  // key, path
  };
  std::map<std::string, Group> groups;
  std::string deleted;
  std::string errors;
  auto add_error = [&](const std::string& key, const absl::Status& st) {
    std::string code = http::S3ErrorCode(st);
    if (code.empty()) code = absl::IsNotFound(st) ? "NoSuchKey" : "InternalError";
    absl::StrAppend(&errors, "<Error><Key>", XmlEscape(key), "</Key><Code>", code,
                    "</Code><Message>", XmlEscape(st.message()), "</Message></Error>");
  };
  auto add_deleted = [&](const std::string& key) {
    if (!quiet) absl::StrAppend(&deleted, "<Deleted><Key>", XmlEscape(key), "</Key></Deleted>");
  };
  for (const std::string& key : keys) {
    S3Call one = call;
    one.key = key;
    auto t = ResolveBucketKey(call.bucket, key);
    if (!t.ok()) {
      add_error(key, t.status());
      continue;
    }
    if (t->read_only) {
      add_error(key, S3Error(absl::StatusCode::kFailedPrecondition, "MethodNotAllowed",
                             absl::StrCat("'", t->ref, "' names a commit, which is read-only")));
      continue;
    }
    if (t->ref.empty() || t->path.empty() || absl::EndsWith(t->path, "/")) {
      add_deleted(key);
      continue;
    }
    Group& g = groups[t->ref];
    g.repo = t->repo;
    g.ref = t->ref;
    g.files.emplace_back(key, PfsPath(*t));
  }
  for (auto& [ref, g] : groups) {
    pfs::AutoCommitOptions auto_opts;
    auto_opts.bind_at_close = true;
    auto_opts.message = absl::StrCat("s3 DeleteObjects (", g.files.size(), " keys)");
    auto upload = pfs_->BeginUpload(g.repo, g.ref, auto_opts);
    if (!upload.ok()) {
      for (const auto& f : g.files) add_error(f.first, upload.status());
      continue;
    }
    std::vector<std::string> staged;
    const std::string open = OpenCommitOf(g.repo, g.ref);
    for (const auto& [key, path] : g.files) {
      auto exists = ObjectExists(g.repo, g.ref, open, path);
      if (!exists.ok() || !*exists) {
        add_deleted(key);  // absent (or a directory): nothing to delete, as S3 says
        continue;
      }
      absl::Status st = (*upload)->Delete(path);
      if (st.ok() || absl::IsNotFound(st)) {
        if (st.ok())
          staged.push_back(key);
        else
          add_deleted(key);
      } else {
        add_error(key, st);
      }
    }
    if (staged.empty()) continue;
    auto commit = (*upload)->Close();
    for (const std::string& key : staged) {
      if (commit.ok()) {
        add_deleted(key);
      } else {
        add_error(key, commit.status());
      }
    }
  }
  return XmlResponse(200, absl::StrCat("<DeleteResult xmlns=\"", kS3Xmlns, "\">", deleted, errors,
                                       "</DeleteResult>"));
}

}  // namespace tusk::s3gw
