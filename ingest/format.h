#pragma once

// What ingest writes into a repo, defined in one place (see ingest/README.md):
// the framing of records in files, the file layout, and the metadata keys of
// ingest commits. tuskd reads the same keys to show a source's status.
//
// Framing: one JSON object per line (JSON Lines), one line per record:
//   {"partition":0,"offset":42,"timestamp":1763712000123,"key":"user-7",
//    "headers":[{"name":"trace","value":"ab12"}],"value":"..."}
// - "timestamp" is the record's Kafka timestamp in ms since the epoch; absent
//   when the record has none.
// - "key" and "headers" are absent when the record has none; a null value (a
//   tombstone) is "value":null.
// - Bytes that are valid UTF-8 are JSON strings; anything else is base64
//   under a "_b64" name instead ("key_b64", "value_b64", and "value_b64" inside
//   a header), so binary payloads round-trip exactly.
// - With value format JSON the value is embedded as JSON (compacted); a value
//   that is not valid JSON goes to the dead-letter path instead.
// - Dead letters use the same framing, with "error" (the reason) first.
//
// All functions are pure and thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/json.h"
#include "pfs/refs.h"

namespace tusk::ingest {

// Metadata keys of ingest commits. Keys under "state/" are carried by tusk from
// a commit to its children, so the branch head always holds every partition's
// position.
// carried: the next offset to read; the records lost in total; the newest gap
std::string KafkaOffsetKey(absl::string_view topic, int32_t partition);
std::string KafkaLostKey(absl::string_view topic, int32_t partition);
std::string KafkaLastGapKey(absl::string_view topic, int32_t partition);
// this commit only: "a-b" offsets lost just before it; "a-b" offsets it holds
std::string KafkaGapKey(absl::string_view topic, int32_t partition);
std::string KafkaRangeKey(absl::string_view topic, int32_t partition);
inline constexpr const char *kCarriedPrefix = pfs::kCarriedMetadataPrefix;
inline constexpr char kDeadLetterDir[] = "/_dead_letter";

// A record as read from Kafka; views into the client's buffers.
struct RecordView {
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_ms = -1;  // -1: none
  std::optional<absl::string_view> key;
  std::optional<absl::string_view> value;
  std::vector<std::pair<absl::string_view, std::optional<absl::string_view>>> headers;
};

enum class ValueFormat { kRaw, kJson };

// Appends `r` as one line (with its '\n') to `out`. With kJson, a value that
// is not valid JSON returns InvalidArgument naming the problem and appends
// nothing. `error`, if not empty, is written first as "error" (dead letters).
absl::Status AppendRecordLine(const RecordView &r, ValueFormat format, absl::string_view error,
                              std::string *out);

// IsValidUtf8 is in common/utf8.h.
// AppendJsonString (common/json.h) writes JSON string literals.
// Checks that `s` is exactly one JSON value (surrounding whitespace allowed)
// and appends it without insignificant whitespace. On error appends nothing
// and says what is wrong and at which byte.
absl::Status CompactJson(absl::string_view s, std::string *out);

// Layout of record files.
//   partition: /<topic>/<partition>/<first>-<last>
//   hour:      /<topic>/<yyyy-mm-dd>/<hh>/<partition>-<first>-<last>  (UTC)
std::string PartitionFilePath(absl::string_view topic, int32_t partition, int64_t first,
                              int64_t last);
// `hour` is hours since the epoch.
std::string HourFilePath(absl::string_view topic, int64_t hour, int32_t partition, int64_t first,
                         int64_t last);
std::string DeadLetterPath(absl::string_view topic, int32_t partition, int64_t first, int64_t last);

}  // namespace tusk::ingest
