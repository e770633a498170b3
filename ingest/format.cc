#include "ingest/format.h"

#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/utf8.h"

namespace tusk::ingest {

std::string KafkaOffsetKey(absl::string_view topic, int32_t partition) {
  return absl::StrCat(kCarriedPrefix, "kafka/", topic, "/", partition, "/next");
}
std::string KafkaLostKey(absl::string_view topic, int32_t partition) {
  return absl::StrCat(kCarriedPrefix, "kafka/", topic, "/", partition, "/lost");
}
std::string KafkaLastGapKey(absl::string_view topic, int32_t partition) {
  return absl::StrCat(kCarriedPrefix, "kafka/", topic, "/", partition, "/last_gap");
}
std::string KafkaGapKey(absl::string_view topic, int32_t partition) {
  return absl::StrCat("kafka/", topic, "/", partition, "/gap");
}
std::string KafkaRangeKey(absl::string_view topic, int32_t partition) {
  return absl::StrCat("kafka/", topic, "/", partition, "/offsets");
}

namespace {

// Appends `"name":` then the bytes as a string, or `"name_b64":` and base64.
void AppendBytesField(absl::string_view name, absl::string_view bytes, std::string *out) {
  out->push_back('"');
  out->append(name.data(), name.size());
  if (IsValidUtf8(bytes)) {
    out->append("\":");
    AppendJsonString(bytes, out);
  } else {
    out->append("_b64\":\"");
    out->append(absl::Base64Escape(std::string(bytes)));
    out->push_back('"');
  }
}

// A recursive-descent JSON checker that copies the significant bytes.
class JsonCompactor {
 public:
  JsonCompactor(absl::string_view s, std::string *out) : s_(s), out_(out) {}

  absl::Status Run() {
    SkipWs();
    if (!Value(0)) return Error();
    SkipWs();
    if (pos_ != s_.size()) {
      what_ = "unexpected data after the JSON value";
      return Error();
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Error() {
    return absl::InvalidArgumentError(
        absl::StrCat("value is not valid JSON: ", what_, " at byte ", pos_));
  }
  void SkipWs() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t')) {
      ++pos_;
    }
  }
  bool Fail(const char *what) {
    what_ = what;
    return false;
  }
  bool Value(int depth) {
    if (depth > 256) return Fail("nesting deeper than 256");
    if (pos_ >= s_.size()) return Fail("unexpected end");
    char c = s_[pos_];
    if (c == '{' || c == '[') return Container(depth);
    if (c == '"') return String();
    if (c == '-' || (c >= '0' && c <= '9')) return Number();
    for (const char *lit : {"true", "false", "null"}) {
      size_t n = std::strlen(lit);
      if (s_.substr(pos_, n) == lit) {
        out_->append(lit);
        pos_ += n;
        return true;
      }
    }
    return Fail("unexpected character");
  }
  // An object ({"k": v, ...}) or an array ([v, ...]).
  bool Container(int depth) {
    const bool object = s_[pos_] == '{';
    const char close = object ? '}' : ']';
    out_->push_back(s_[pos_++]);
    SkipWs();
    if (pos_ < s_.size() && s_[pos_] == close) {
      out_->push_back(s_[pos_++]);
      return true;
    }
    for (;;) {
      SkipWs();
      if (object) {
        if (pos_ >= s_.size() || s_[pos_] != '"') return Fail("expected a string key");
        if (!String()) return false;
        SkipWs();
        if (pos_ >= s_.size() || s_[pos_] != ':') return Fail("expected ':'");
        out_->push_back(s_[pos_++]);
        SkipWs();
      }
      if (!Value(depth + 1)) return false;
      SkipWs();
      if (pos_ < s_.size() && (s_[pos_] == ',' || s_[pos_] == close)) {
        const bool done = s_[pos_] == close;
        out_->push_back(s_[pos_++]);
        if (done) return true;
        continue;
      }
      return Fail(object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
  }
  bool String() {
    size_t start = pos_++;
    while (pos_ < s_.size()) {
      unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        absl::string_view lit = s_.substr(start, pos_ - start);
        if (!IsValidUtf8(lit)) return Fail("string is not valid UTF-8");
        out_->append(lit.data(), lit.size());
        return true;
      }
      if (c < 0x20) return Fail("control character in a string");
      if (c == '\\') {
        if (++pos_ >= s_.size()) break;
        char e = s_[pos_];
        if (e == 'u') {
          for (int i = 1; i <= 4; ++i) {
            if (pos_ + i >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[pos_ + i]))) {
              return Fail("bad \\u escape");
            }
          }
          pos_ += 4;
        } else if (!std::strchr("\"\\/bfnrt", e)) {
          return Fail("bad escape");
        }
      }
      ++pos_;
    }
    return Fail("unterminated string");
  }
  bool Number() {
    size_t start = pos_;
    auto digits = [&] {
      size_t d = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ - d;
    };
    if (s_[pos_] == '-') ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '0') {
      ++pos_;
    } else if (digits() == 0) {
      return Fail("bad number");
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (digits() == 0) return Fail("bad number");
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (digits() == 0) return Fail("bad number");
    }
    out_->append(s_.data() + start, pos_ - start);
    return true;
  }

  absl::string_view s_;
  std::string *out_;
  size_t pos_ = 0;
  const char *what_ = "";
};

}  // namespace

absl::Status CompactJson(absl::string_view s, std::string *out) {
  size_t mark = out->size();
  absl::Status st = JsonCompactor(s, out).Run();
  if (!st.ok()) out->resize(mark);
  return st;
}

absl::Status AppendRecordLine(const RecordView &r, ValueFormat format, absl::string_view error,
                              std::string *out) {
  size_t mark = out->size();
  out->push_back('{');
  if (!error.empty()) {
    out->append("\"error\":");
    AppendJsonString(error, out);
    out->push_back(',');
  }
  absl::StrAppend(out, "\"partition\":", r.partition, ",\"offset\":", r.offset);
  if (r.timestamp_ms >= 0) absl::StrAppend(out, ",\"timestamp\":", r.timestamp_ms);
  if (r.key) {
    out->push_back(',');
    AppendBytesField("key", *r.key, out);
  }
  if (!r.headers.empty()) {
    out->append(",\"headers\":[");
    for (size_t i = 0; i < r.headers.size(); ++i) {
      if (i) out->push_back(',');
      out->append("{\"name\":");
      AppendJsonString(r.headers[i].first, out);
      out->push_back(',');
      if (r.headers[i].second) {
        AppendBytesField("value", *r.headers[i].second, out);
      } else {
        out->append("\"value\":null");
      }
      out->push_back('}');
    }
    out->push_back(']');
  }
  out->push_back(',');
  if (!r.value) {
    out->append("\"value\":null");
  } else if (format == ValueFormat::kJson && error.empty()) {
    out->append("\"value\":");
    absl::Status s = CompactJson(*r.value, out);
    if (!s.ok()) {
      out->resize(mark);
      return s;
    }
  } else {
    AppendBytesField("value", *r.value, out);
  }
  out->append("}\n");
  return absl::OkStatus();
}

std::string PartitionFilePath(absl::string_view topic, int32_t partition, int64_t first,
                              int64_t last) {
  return absl::StrCat("/", topic, "/", partition, "/", first, "-", last);
}

std::string HourFilePath(absl::string_view topic, int64_t hour, int32_t partition, int64_t first,
                         int64_t last) {
  absl::Time t = absl::FromUnixSeconds(hour * 3600);
  return absl::StrCat("/", topic, "/", absl::FormatTime("%Y-%m-%d/%H", t, absl::UTCTimeZone()), "/",
                      partition, "-", first, "-", last);
}

std::string DeadLetterPath(absl::string_view topic, int32_t partition, int64_t first,
                           int64_t last) {
  return absl::StrCat(kDeadLetterDir, "/", topic, "/", partition, "/", first, "-", last);
}

}  // namespace tusk::ingest
