#pragma once

// CronSchedule: when a cron input ticks (Pachyderm's input.cron.spec).
//
// Accepted forms, all in UTC:
//   - five fields, "MIN HOUR DOM MONTH DOW", or six with seconds first; each
//     field is *, a value, a range a-b, a step */n or a-b/n, or a list of
//     those ("0,30"); months and weekdays may be names (jan, mon); day 7 is
//     Sunday like 0; when both DOM and DOW are restricted, either matches;
//   - "@every DURATION" (10s, 5m, 1h30m), from the schedule's start;
//   - @yearly (@annually), @monthly, @weekly, @daily (@midnight), @hourly.
//
// A value type; thread-compatible.

#include <bitset>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tusk::dispatcher {

class CronSchedule {
 public:
  // InvalidArgument naming the field that is wrong.
  static absl::StatusOr<CronSchedule> Parse(const std::string& spec);

  // The first tick strictly after `t`. For @every, ticks are `start` plus
  // whole intervals. InfiniteFuture if none within 5 years (Feb 30).
  absl::Time Next(absl::Time t, absl::Time start = absl::UnixEpoch()) const;
  // The last tick in (after, now]; InfinitePast if there is none.
  absl::Time Latest(absl::Time after, absl::Time now, absl::Time start = absl::UnixEpoch()) const;

 private:
  absl::Duration every_ = absl::ZeroDuration();  // @every
  std::bitset<60> seconds_, minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1-31
  std::bitset<13> months_;   // 1-12
  std::bitset<7> weekdays_;  // 0 = Sunday
  bool any_day_ = true, any_weekday_ = true;
};

}  // namespace tusk::dispatcher
