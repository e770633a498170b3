// Multipart uploads. Each part streams into the store as it arrives and is
// kept as a durable record of its chunks (kS3UploadSpace), which GC keeps
// alive, so parts survive a restart and an index rebuild until the upload
// is completed or aborted. Complete makes the object from the parts' chunks
// by reference (no byte is copied) in one commit.

#include <openssl/rand.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/proto_util.h"
#include "common/status.h"
#include "pfs/keys.h"
#include "proto/s3gw.pb.h"
#include "s3gw/gateway_internal.h"
#include "s3gw/xml.h"

namespace tusk::s3gw {
namespace {

using v1::MultipartPart;
using v1::MultipartUpload;

constexpr int kMaxParts = 10000;
constexpr uint64_t kMinPartSize = 5 << 20;
constexpr uint64_t kMaxPartSize = 5ull << 30;

absl::Status NoSuchUpload(const std::string& id) {
  return S3Error(
      absl::StatusCode::kNotFound, "NoSuchUpload",
      absl::StrCat("no multipart upload ", id, " (it was completed or aborted, or never began)"));
}

std::string NewUploadId() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return "";
  return ToHex(absl::string_view(reinterpret_cast<char*>(bytes), sizeof(bytes)));
}

// Ends a part written into `staging` (a tree upload with the file "/part"
// begun) and saves its record; returns its ETag.
absl::StatusOr<std::string> StorePart(Gateway::Impl* gw, const std::string& id, int number,
                                      pfs::Upload* staging, uint64_t size) {
  RETURN_IF_ERROR(staging->EndFile(size));
  MultipartPart part;
  part.set_number(number);
  part.set_size(size);
  part.set_hash(Etag(staging->last_file_hash(), staging->last_file_chunks().size()));
  for (const auto& c : staging->last_file_chunks()) *part.mutable_chunks()->add_chunks() = c;
  *part.mutable_uploaded() = ToTimestamp(absl::Now());
  pfs::KvBatch batch;
  RETURN_IF_ERROR(staging->CloseToTree(&batch).status());
  RETURN_IF_ERROR(gw->SavePart(id, part, &batch));
  return part.hash();
}

// One part's body, streamed into a tree upload; its record is written at
// the end, with the index records of its blobs, in one logged write.
class PartSink final : public BodySink {
 public:
  PartSink(Gateway::Impl* gw, S3Call call, MultipartUpload upload, int number)
      : gw_(gw), call_(std::move(call)), upload_(std::move(upload)), number_(number) {}

  absl::Status Init() {
    staging_ = gw_->pfs()->BeginTreeUpload();
    RETURN_IF_ERROR(staging_->BeginFile("/part", false));
    ASSIGN_OR_RETURN(body_, RequestBody::Make(call_, [this](absl::string_view piece) {
                       if (body_->bytes() > kMaxPartSize) {
                         return S3Error(absl::StatusCode::kInvalidArgument, "EntityTooLarge",
                                        "a part is larger than 5 GiB");
                       }
                       return staging_->Write(piece);
                     }));
    return absl::OkStatus();
  }

  absl::Status Write(absl::string_view data) override { return body_->Write(data); }

  HttpResponse Finish() override {
    absl::Status st = Save();
    if (!st.ok()) return Fail(st);
    HttpResponse r;
    r.headers.emplace_back("ETag", QuotedEtag(hash_));
    return r;
  }

  HttpResponse Fail(const absl::Status& error) override {
    staging_.reset();
    return ErrorResponse(call_, error);
  }

 private:
  absl::Status Save() {
    RETURN_IF_ERROR(body_->Finish());
    ASSIGN_OR_RETURN(hash_, StorePart(gw_, upload_.id(), number_, staging_.get(), body_->bytes()));
    return absl::OkStatus();
  }

  Gateway::Impl* const gw_;
  const S3Call call_;
  const MultipartUpload upload_;
  const int number_;
  std::unique_ptr<pfs::Upload> staging_;
  std::unique_ptr<RequestBody> body_;
  std::string hash_;
};

}  // namespace

void Gateway::Impl::KeepPartsAlive() {
  pfs::KeySpace space = pfs_->Space(pfs::kS3UploadSpace);
  pfs_->AddGcSource([space](pfs::GcMarker* marker) -> absl::Status {
    absl::Status status;
    RETURN_IF_ERROR(
        space.ScanPrefix(pfs::kS3UploadSpace, [&](absl::string_view k, absl::string_view v) {
          size_t slash = k.rfind('/');
          if (slash == absl::string_view::npos || k.substr(slash + 1, 1) != "p") return true;
          MultipartPart part;
          if (!part.ParseFromString(std::string(v))) {
            status = absl::DataLossError(absl::StrCat("multipart part record ", k, " is corrupt"));
            return false;
          }
          marker->Chunks(part.chunks());
          return true;
        }));
    return status;
  });
}

absl::StatusOr<MultipartUpload> Gateway::Impl::LoadUpload(const S3Call& call,
                                                          const RepoAddress& a) {
  const std::string id = call.Query("uploadId");
  if (id.empty() || id.size() > 64) return NoSuchUpload(id);
  pfs::KeySpace space = pfs_->Space(pfs::kS3UploadSpace);
  ASSIGN_OR_RETURN(auto upload, space.GetProto<MultipartUpload>(pfs::S3UploadKey(id)));
  if (!upload || upload->repo() != a.repo || upload->branch() != a.ref ||
      upload->path() != "/" + a.path) {
    return NoSuchUpload(id);
  }
  return *upload;
}

absl::StatusOr<std::vector<MultipartPart>> Gateway::Impl::LoadParts(const std::string& id) {
  pfs::KeySpace space = pfs_->Space(pfs::kS3UploadSpace);
  std::vector<MultipartPart> parts;
  absl::Status status;
  RETURN_IF_ERROR(space.ScanPrefix(
      pfs::S3UploadPrefix(id) + "p", [&](absl::string_view k, absl::string_view v) {
        MultipartPart part;
        if (!part.ParseFromString(std::string(v))) {
          status = absl::DataLossError(absl::StrCat("multipart part record ", k, " is corrupt"));
          return false;
        }
        parts.push_back(std::move(part));
        return true;
      }));
  RETURN_IF_ERROR(status);
  return parts;
}

absl::Status Gateway::Impl::SavePart(const std::string& id, const MultipartPart& part,
                                     pfs::KvBatch* blobs) {
  // Under the lock, the upload is still there: a part never outlives its
  // upload's end (its chunks would be kept alive forever).
  absl::MutexLock lock(&multipart_mu_);
  pfs::KeySpace space = pfs_->Space(pfs::kS3UploadSpace);
  ASSIGN_OR_RETURN(auto upload, space.Get(pfs::S3UploadKey(id)));
  if (!upload) return NoSuchUpload(id);
  pfs::RecordChanges changes;
  changes.put[pfs::S3PartKey(id, part.number())] = part.SerializeAsString();
  return pfs_->WriteRecords(changes, blobs);
}

HttpResponse Gateway::Impl::MultipartCreate(const S3Call& call) {
  auto target = ResolveFile(call, true);
  if (!target.ok()) return ErrorResponse(call, target.status());
  const RepoAddress& a = target->address;
  MultipartUpload upload;
  upload.set_id(NewUploadId());
  if (upload.id().empty()) return ErrorResponse(call, absl::InternalError("no random bytes"));
  upload.set_bucket(call.bucket);
  upload.set_key(call.key);
  upload.set_repo(a.repo);
  upload.set_branch(a.ref);
  upload.set_path("/" + a.path);
  *upload.mutable_initiated() = ToTimestamp(absl::Now());
  absl::Status st = pfs_->PutRecord(pfs::S3UploadKey(upload.id()), upload.SerializeAsString());
  if (!st.ok()) return ErrorResponse(call, st);
  return XmlResponse(200, absl::StrCat("<InitiateMultipartUploadResult xmlns=\"", kS3Xmlns,
                                       "\"><Bucket>", XmlEscape(call.bucket), "</Bucket><Key>",
                                       XmlEscape(call.key), "</Key><UploadId>", upload.id(),
                                       "</UploadId></InitiateMultipartUploadResult>"));
}

HttpHandler::Begun Gateway::Impl::MultipartUploadPart(const S3Call& call) {
  auto target = Resolve(call, true);
  if (!target.ok()) return Answer(ErrorResponse(call, target.status()));
  int number = 0;
  if (!absl::SimpleAtoi(call.Query("partNumber"), &number) || number < 1 || number > kMaxParts) {
    return Answer(ErrorResponse(call, S3Error(absl::StatusCode::kInvalidArgument, "InvalidArgument",
                                              "partNumber must be a number from 1 to 10000")));
  }
  auto upload = LoadUpload(call, target->address);
  if (!upload.ok()) return Answer(ErrorResponse(call, upload.status()));
  if (call.http->HasHeader("x-amz-copy-source")) {
    return Answer(UploadPartCopy(call, *upload, number));
  }
  auto sink = std::make_unique<PartSink>(this, call, std::move(*upload), number);
  absl::Status st = sink->Init();
  if (!st.ok()) return Answer(ErrorResponse(call, st));
  return ReadBody(std::move(sink));
}

HttpResponse Gateway::Impl::UploadPartCopy(const S3Call& call, const MultipartUpload& upload,
                                           int number) {
  auto source = OpenCopySource(call);
  if (!source.ok()) return ErrorResponse(call, source.status());
  pfs::FileReader* reader = source->reader.get();
  const uint64_t size = reader->info().size_bytes();
  uint64_t first = 0;
  uint64_t length = size;
  const std::string range = call.http->Header("x-amz-copy-source-range");
  if (!range.empty()) {
    absl::string_view r = absl::StripAsciiWhitespace(range);
    uint64_t last = 0;
    const bool form = absl::ConsumePrefix(&r, "bytes=");
    const size_t dash = r.find('-');
    if (!form || dash == absl::string_view::npos || !absl::SimpleAtoi(r.substr(0, dash), &first) ||
        !absl::SimpleAtoi(r.substr(dash + 1), &last) || last < first) {
      return ErrorResponse(call, S3Error(absl::StatusCode::kInvalidArgument, "InvalidArgument",
                                         "x-amz-copy-source-range must be bytes=FIRST-LAST"));
    }
    if (last >= size) {
      return ErrorResponse(call, S3Error(absl::StatusCode::kOutOfRange, "InvalidRange",
                                         absl::StrCat("x-amz-copy-source-range ", range,
                                                      " is beyond the source's ", size, " bytes")));
    }
    length = last - first + 1;
  }
  if (length > kMaxPartSize) {
    return ErrorResponse(call, S3Error(absl::StatusCode::kInvalidArgument, "EntityTooLarge",
                                       "a part is larger than 5 GiB"));
  }
  // The range's bytes go through the chunker again: whole chunks of the
  // source come out the same and are stored once; only the edges are new.
  reader->Limit(first, length);
  std::unique_ptr<pfs::Upload> staging = pfs_->BeginTreeUpload();
  absl::Status st = staging->BeginFile("/part", false);
  while (st.ok()) {
    auto piece = reader->Next();
    if (!piece.ok()) {
      st = piece.status();
      break;
    }
    if (piece->empty()) break;
    st = staging->Write(*piece);
  }
  if (!st.ok()) return ErrorResponse(call, st);
  auto etag = StorePart(this, upload.id(), number, staging.get(), length);
  if (!etag.ok()) return ErrorResponse(call, etag.status());
  HttpResponse r =
      XmlResponse(200, absl::StrCat("<CopyPartResult xmlns=\"", kS3Xmlns, "\"><LastModified>",
                                    IsoTime(absl::Now()), "</LastModified><ETag>",
                                    XmlEscape(QuotedEtag(*etag)), "</ETag></CopyPartResult>"));
  r.headers.emplace_back("x-amz-copy-source-version-id", reader->info().commit());
  return r;
}

HttpHandler::Begun Gateway::Impl::MultipartComplete(const S3Call& call) {
  auto target = Resolve(call, true);
  if (!target.ok()) return Answer(ErrorResponse(call, target.status()));
  auto upload = LoadUpload(call, target->address);
  if (!upload.ok()) return Answer(ErrorResponse(call, upload.status()));
  return ReadBody(
      CollectBody(call, 4 << 20, [this, call, u = std::move(*upload)](const std::string& body) {
        return CompleteBody(call, u, body);
      }));
}

HttpResponse Gateway::Impl::CompleteBody(const S3Call& call, const MultipartUpload& upload,
                                         const std::string& body) {
  auto doc = ParseXml(body);
  if (!doc.ok()) return ErrorResponse(call, doc.status());
  if ((*doc)->name != "CompleteMultipartUpload") {
    return ErrorResponse(call, S3Error(absl::StatusCode::kInvalidArgument, "MalformedXML",
                                       "the root element must be CompleteMultipartUpload"));
  }
  std::vector<std::pair<int, std::string>> wanted;  // number, ETag
  for (const auto& child : (*doc)->children) {
    if (child->name != "Part") continue;
    int number = 0;
    if (!absl::SimpleAtoi(child->ChildText("PartNumber"), &number)) {
      return ErrorResponse(call, S3Error(absl::StatusCode::kInvalidArgument, "MalformedXML",
                                         "a Part has no valid PartNumber"));
    }
    std::string etag = child->ChildText("ETag");
    absl::string_view e = absl::StripAsciiWhitespace(etag);
    absl::ConsumePrefix(&e, "\"");
    absl::ConsumeSuffix(&e, "\"");
    wanted.emplace_back(number, std::string(e));
  }
  if (wanted.empty()) {
    return ErrorResponse(call, S3Error(absl::StatusCode::kInvalidArgument, "MalformedXML",
                                       "CompleteMultipartUpload lists no parts"));
  }
  for (size_t i = 1; i < wanted.size(); ++i) {
    if (wanted[i].first <= wanted[i - 1].first) {
      return ErrorResponse(call, S3Error(absl::StatusCode::kInvalidArgument, "InvalidPartOrder",
                                         "the parts must be listed in ascending order"));
    }
  }
  const std::string if_none_match = call.http->Header("If-None-Match");
  absl::MutexLock lock(&multipart_mu_);
  // Still there (not completed or aborted by another request meanwhile).
  auto again = pfs_->Space(pfs::kS3UploadSpace).Get(pfs::S3UploadKey(upload.id()));
  if (!again.ok()) return ErrorResponse(call, again.status());
  if (!*again) return ErrorResponse(call, NoSuchUpload(upload.id()));
  auto parts = LoadParts(upload.id());
  if (!parts.ok()) return ErrorResponse(call, parts.status());
  std::map<int, const MultipartPart*> by_number;
  for (const auto& p : *parts) by_number[p.number()] = &p;
  std::vector<pfs::ChunkRef> chunks;
  uint64_t size = 0;
  for (size_t i = 0; i < wanted.size(); ++i) {
    auto it = by_number.find(wanted[i].first);
    if (it == by_number.end() || it->second->hash() != wanted[i].second) {
      return ErrorResponse(
          call,
          S3Error(absl::StatusCode::kInvalidArgument, "InvalidPart",
                  absl::StrCat("part ", wanted[i].first,
                               it == by_number.end() ? " was not uploaded" : " has another ETag")));
    }
    const MultipartPart& p = *it->second;
    if (i + 1 < wanted.size() && p.size() < kMinPartSize) {
      return ErrorResponse(call,
                           S3Error(absl::StatusCode::kInvalidArgument, "EntityTooSmall",
                                   absl::StrCat("part ", p.number(), " has ", p.size(),
                                                " bytes; every part but the last needs 5 MiB")));
    }
    for (const auto& c : p.chunks().chunks()) chunks.push_back(c);
    size += p.size();
  }
  pfs::AutoCommitOptions auto_opts;
  auto_opts.bind_at_close = true;
  auto_opts.message = absl::StrCat("s3 CompleteMultipartUpload ", upload.path(), " (",
                                   wanted.size(), " parts, ", size, " bytes)");
  auto writer = pfs_->BeginUpload(upload.repo(), upload.branch(), auto_opts);
  if (!writer.ok()) return ErrorResponse(call, writer.status());
  absl::Status st = (*writer)->PutChunks(upload.path(), chunks);
  if (st.ok() && absl::StripAsciiWhitespace(if_none_match) == "*") {
    st = (*writer)->RequireAbsent(upload.path());
  }
  if (!st.ok()) return ErrorResponse(call, st);
  auto commit = (*writer)->Close();
  if (!commit.ok()) {
    if (absl::IsAlreadyExists(commit.status())) {
      return ErrorResponse(call,
                           S3Error(absl::StatusCode::kFailedPrecondition, "PreconditionFailed",
                                   absl::StrCat("If-None-Match: * and ", call.key, " exists")));
    }
    return ErrorResponse(call, commit.status());
  }
  // The object is committed; its parts' records go. If this write fails the
  // upload stays listed and a retry of Complete commits the same bytes again.
  pfs::RecordChanges done;
  done.deleted_prefixes.push_back(pfs::S3UploadPrefix(upload.id()));
  absl::Status ended = pfs_->WriteRecords(done, nullptr);
  if (!ended.ok()) {
    LOG(WARNING) << "s3 gateway: upload " << upload.id() << " completed as commit " << commit->id()
                 << " but its records stay: " << ended;
  }
  HttpResponse r = XmlResponse(
      200,
      absl::StrCat("<CompleteMultipartUploadResult xmlns=\"", kS3Xmlns, "\"><Location>/",
                   XmlEscape(call.bucket), "/", XmlEscape(call.key), "</Location><Bucket>",
                   XmlEscape(call.bucket), "</Bucket><Key>", XmlEscape(call.key), "</Key><ETag>",
                   XmlEscape(QuotedEtag(Etag((*writer)->last_file_hash(), chunks.size()))),
                   "</ETag></CompleteMultipartUploadResult>"));
  r.headers.emplace_back("x-amz-version-id", commit->id());
  return r;
}

HttpResponse Gateway::Impl::MultipartAbort(const S3Call& call) {
  auto target = Resolve(call, true);
  if (!target.ok()) return ErrorResponse(call, target.status());
  auto upload = LoadUpload(call, target->address);
  if (!upload.ok()) return ErrorResponse(call, upload.status());
  absl::MutexLock lock(&multipart_mu_);
  pfs::RecordChanges done;
  done.deleted_prefixes.push_back(pfs::S3UploadPrefix(upload->id()));
  absl::Status st = pfs_->WriteRecords(done, nullptr);
  if (!st.ok()) return ErrorResponse(call, st);
  HttpResponse r;
  r.status = 204;
  return r;
}

HttpResponse Gateway::Impl::MultipartListParts(const S3Call& call) {
  auto target = Resolve(call, false);
  if (!target.ok()) return ErrorResponse(call, target.status());
  auto upload = LoadUpload(call, target->address);
  if (!upload.ok()) return ErrorResponse(call, upload.status());
  auto parts = LoadParts(upload->id());
  if (!parts.ok()) return ErrorResponse(call, parts.status());
  int marker = 0;
  int max_parts = 1000;
  if (call.Has("part-number-marker")) absl::SimpleAtoi(call.Query("part-number-marker"), &marker);
  if (call.Has("max-parts")) absl::SimpleAtoi(call.Query("max-parts"), &max_parts);
  max_parts = std::clamp(max_parts, 0, 1000);
  std::string list;
  int count = 0;
  int next = 0;
  bool truncated = false;
  for (const auto& p : *parts) {
    if (p.number() <= marker) continue;
    if (count == max_parts) {
      truncated = true;
      break;
    }
    absl::StrAppend(&list, "<Part><PartNumber>", p.number(), "</PartNumber><LastModified>",
                    IsoTime(FromTimestamp(p.uploaded())), "</LastModified><ETag>",
                    XmlEscape(QuotedEtag(p.hash())), "</ETag><Size>", p.size(), "</Size></Part>");
    ++count;
    next = p.number();
  }
  return XmlResponse(
      200, absl::StrCat(
               "<ListPartsResult xmlns=\"", kS3Xmlns, "\"><Bucket>", XmlEscape(call.bucket),
               "</Bucket><Key>", XmlEscape(call.key), "</Key><UploadId>", upload->id(),
               "</UploadId><PartNumberMarker>", marker, "</PartNumberMarker><NextPartNumberMarker>",
               next, "</NextPartNumberMarker><MaxParts>", max_parts, "</MaxParts><IsTruncated>",
               truncated ? "true" : "false", "</IsTruncated><StorageClass>STANDARD</StorageClass>",
               list, "</ListPartsResult>"));
}

HttpResponse Gateway::Impl::MultipartList(const S3Call& call) {
  auto target = Resolve(call, false);
  if (!target.ok()) return ErrorResponse(call, target.status());
  const std::string prefix = call.Query("prefix");
  std::vector<MultipartUpload> uploads;
  absl::Status status;
  absl::Status st =
      pfs_->Space(pfs::kS3UploadSpace)
          .ScanPrefix(pfs::kS3UploadSpace, [&](absl::string_view k, absl::string_view v) {
            if (!absl::EndsWith(k, "/u")) return true;
            MultipartUpload u;
            if (!u.ParseFromString(std::string(v))) {
              status =
                  absl::DataLossError(absl::StrCat("multipart upload record ", k, " is corrupt"));
              return false;
            }
            if (u.bucket() == call.bucket && absl::StartsWith(u.key(), prefix)) {
              uploads.push_back(std::move(u));
            }
            return true;
          });
  if (st.ok()) st = status;
  if (!st.ok()) return ErrorResponse(call, st);
  std::sort(uploads.begin(), uploads.end(), [](const auto& x, const auto& y) {
    return std::tie(x.key(), x.id()) < std::tie(y.key(), y.id());
  });
  std::string list;
  for (const auto& u : uploads) {
    absl::StrAppend(&list, "<Upload><Key>", XmlEscape(u.key()), "</Key><UploadId>", u.id(),
                    "</UploadId><Initiated>", IsoTime(FromTimestamp(u.initiated())),
                    "</Initiated><StorageClass>STANDARD</StorageClass></Upload>");
  }
  return XmlResponse(200, absl::StrCat("<ListMultipartUploadsResult xmlns=\"", kS3Xmlns,
                                       "\"><Bucket>", XmlEscape(call.bucket),
                                       "</Bucket><KeyMarker></KeyMarker><UploadIdMarker></"
                                       "UploadIdMarker><Prefix>",
                                       XmlEscape(prefix),
                                       "</Prefix><MaxUploads>1000</"
                                       "MaxUploads><IsTruncated>false</IsTruncated>",
                                       list, "</ListMultipartUploadsResult>"));
}

}  // namespace tusk::s3gw
