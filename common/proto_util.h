#pragma once

// Small helpers for protobuf messages shared by every component: timestamps
// and durations to and from absl, and parsing stored records.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace tusk {

// Now, as a protobuf timestamp (nanosecond precision).
google::protobuf::Timestamp NowTimestamp();
google::protobuf::Timestamp ToTimestamp(absl::Time t);
absl::Time FromTimestamp(const google::protobuf::Timestamp& t);
google::protobuf::Duration ToDuration(absl::Duration d);
absl::Duration FromDuration(const google::protobuf::Duration& d);

// Parses a stored record; DataLoss naming `what` ("index record of repo x")
// if it does not parse.
template <typename T>
absl::StatusOr<T> ParseProto(absl::string_view bytes, absl::string_view what) {
  T msg;
  if (!msg.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(absl::StrCat(what, " is corrupt"));
  }
  return msg;
}

}  // namespace tusk
