#include "common/proto_util.h"

#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"

namespace tusk {

using google::protobuf::util::TimeUtil;

google::protobuf::Timestamp NowTimestamp() { return ToTimestamp(absl::Now()); }

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

absl::Time FromTimestamp(const google::protobuf::Timestamp& t) {
  return absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(t));
}

google::protobuf::Duration ToDuration(absl::Duration d) {
  return TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(d));
}

absl::Duration FromDuration(const google::protobuf::Duration& d) {
  return absl::Nanoseconds(TimeUtil::DurationToNanoseconds(d));
}

}  // namespace tusk
