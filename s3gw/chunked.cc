#include "s3gw/chunked.h"

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status.h"

namespace tusk::s3gw {
namespace {

constexpr size_t kMaxLine = 4096;
constexpr uint64_t kMaxChunk = 1ull << 32;

absl::Status Incomplete(const std::string& what) {
  absl::Status st = absl::InvalidArgumentError(absl::StrCat("aws-chunked body: ", what));
  st.SetPayload(http::kS3ErrorCodePayload, absl::Cord("IncompleteBody"));
  return st;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AwsChunkedDecoder>> AwsChunkedDecoder::Make(
    const std::string& content_sha256, std::optional<http::VerifiedRequest> verified,
    Output output) {
  auto d = std::unique_ptr<AwsChunkedDecoder>(new AwsChunkedDecoder());
  if (content_sha256 == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") {
    d->signed_ = true;
  } else if (content_sha256 == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER") {
    d->signed_ = true;
    d->trailer_ = true;
  } else if (content_sha256 == "STREAMING-UNSIGNED-PAYLOAD-TRAILER") {
    d->trailer_ = true;
  } else {
    absl::Status st = absl::InvalidArgumentError(absl::StrCat(
        "x-amz-content-sha256 '", content_sha256, "' is not a streaming payload tusk knows"));
    st.SetPayload(http::kS3ErrorCodePayload, absl::Cord("InvalidArgument"));
    return st;
  }
  // Without authentication nothing signed the request: chunk signatures are
  // read but cannot be checked.
  if (d->signed_ && verified.has_value()) {
    d->verified_ = std::move(verified);
    d->previous_signature_ = d->verified_->signature;
  }
  d->output_ = std::move(output);
  return d;
}

absl::Status AwsChunkedDecoder::Feed(absl::string_view data) {
  while (!data.empty()) {
    switch (state_) {
      case State::kHeader:
      case State::kTrailer:
      case State::kDataEnd: {
        size_t nl = data.find('\n');
        size_t take = nl == absl::string_view::npos ? data.size() : nl + 1;
        line_.append(data.data(), take);
        data.remove_prefix(take);
        if (line_.size() > kMaxLine) return Incomplete("a chunk header or trailer is too long");
        if (nl == absl::string_view::npos) break;
        absl::string_view line = line_;
        absl::ConsumeSuffix(&line, "\n");
        absl::ConsumeSuffix(&line, "\r");
        std::string copy(line);
        line_.clear();
        if (state_ == State::kDataEnd) {
          if (!copy.empty()) return Incomplete("a chunk is longer than its size says");
          state_ = last_chunk_ ? (trailer_ ? State::kTrailer : State::kDone) : State::kHeader;
          if (state_ == State::kDone && !data.empty()) {
            return Incomplete("bytes after the last chunk");
          }
        } else if (state_ == State::kHeader) {
          RETURN_IF_ERROR(HeaderLine(copy));
        } else {
          RETURN_IF_ERROR(TrailerLine(copy));
        }
        break;
      }
      case State::kData: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, data.size()));
        absl::string_view piece = data.substr(0, take);
        data.remove_prefix(take);
        remaining_ -= take;
        decoded_ += take;
        if (verified_) chunk_hash_.Update(piece);
        RETURN_IF_ERROR(output_(piece));
        if (remaining_ == 0) RETURN_IF_ERROR(EndChunk());
        break;
      }
      case State::kDone:
        return Incomplete("bytes after the last chunk");
    }
  }
  return absl::OkStatus();
}

absl::Status AwsChunkedDecoder::HeaderLine(absl::string_view line) {
  std::vector<absl::string_view> parts = absl::StrSplit(line, ';');
  uint64_t size = 0;
  absl::string_view hex = absl::StripAsciiWhitespace(parts[0]);
  if (hex.empty() || hex.size() > 16 || !absl::SimpleHexAtoi(hex, &size) || size > kMaxChunk) {
    return Incomplete(absl::StrCat("bad chunk size '", hex.substr(0, 32), "'"));
  }
  expected_signature_.clear();
  for (size_t i = 1; i < parts.size(); ++i) {
    absl::string_view ext = absl::StripAsciiWhitespace(parts[i]);
    if (absl::ConsumePrefix(&ext, "chunk-signature=")) expected_signature_ = std::string(ext);
  }
  if (signed_ && expected_signature_.empty()) return Incomplete("a chunk has no chunk-signature");
  remaining_ = size;
  last_chunk_ = size == 0;
  state_ = State::kData;
  if (size == 0) return EndChunk();
  return absl::OkStatus();
}

absl::Status AwsChunkedDecoder::EndChunk() {
  if (verified_) {
    std::string want =
        http::ChunkSignatureOfHash(*verified_, previous_signature_, chunk_hash_.Finish().Hex());
    if (want != expected_signature_) {
      absl::Status st = absl::PermissionDeniedError(absl::StrCat(
          "the signature of chunk ", decoded_, " of the aws-chunked body does not match"));
      st.SetPayload(http::kS3ErrorCodePayload, absl::Cord("SignatureDoesNotMatch"));
      return st;
    }
    previous_signature_ = want;
  }
  // Without trailers the last chunk's "0;...\r\n" is followed by "\r\n";
  // with them the trailer lines come first, then "\r\n".
  state_ = (last_chunk_ && trailer_) ? State::kTrailer : State::kDataEnd;
  return absl::OkStatus();
}

absl::Status AwsChunkedDecoder::TrailerLine(absl::string_view line) {
  if (line.empty()) {
    state_ = State::kDone;
    return absl::OkStatus();
  }
  size_t colon = line.find(':');
  if (colon == absl::string_view::npos) {
    return Incomplete(absl::StrCat("bad trailer line '", line.substr(0, 64), "'"));
  }
  std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(line.substr(0, colon)));
  trailers_[name] = std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  return absl::OkStatus();
}

absl::Status AwsChunkedDecoder::Finish() {
  // Some clients end the trailer section at the body's end without the
  // closing empty line.
  if (state_ == State::kTrailer && line_.empty()) state_ = State::kDone;
  if (state_ == State::kDataEnd && last_chunk_ && line_.empty()) state_ = State::kDone;
  if (state_ != State::kDone) {
    return Incomplete(
        absl::StrCat("the body ended after ", decoded_, " bytes, before the last chunk"));
  }
  return absl::OkStatus();
}

}  // namespace tusk::s3gw
