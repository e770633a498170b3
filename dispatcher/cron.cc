#include "dispatcher/cron.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/civil_time.h"
#include "common/status.h"

namespace tusk::dispatcher {
namespace {

constexpr const char* kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                   "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr const char* kDays[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

struct Field {
  const char* name;
  int lo, hi;
  const char* const* names;  // value lo + i is names[i]
  int nnames;
};

bool Value(const Field& f, absl::string_view s, int* v) {
  std::string lower = absl::AsciiStrToLower(s);
  for (int i = 0; i < f.nnames; i++) {
    if (lower == f.names[i]) {
      *v = (f.names == kMonths ? 1 : 0) + i;
      return true;
    }
  }
  return absl::SimpleAtoi(s, v);
}

// Sets the bits of `field` that `text` names; *any: whether it was "*".
template <size_t N>
absl::Status ParseField(const Field& f, absl::string_view text, std::bitset<N>* bits, bool* any) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(
        absl::StrCat("input.cron.spec: ", f.name, " field '", text, "': ", why));
  };
  *any = text == "*" || text == "?";
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int step = 1;
    if (size_t slash = part.find('/'); slash != absl::string_view::npos) {
      if (!absl::SimpleAtoi(part.substr(slash + 1), &step) || step < 1) return bad("bad step");
      part = part.substr(0, slash);
    }
    int lo = f.lo, hi = f.hi;
    if (part != "*" && part != "?") {
      size_t dash = part.find('-');
      if (!Value(f, part.substr(0, dash), &lo)) return bad("not a number or a name");
      hi = lo;
      if (dash != absl::string_view::npos && !Value(f, part.substr(dash + 1), &hi)) {
        return bad("bad range");
      }
      if (dash == absl::string_view::npos && step > 1) hi = f.hi;  // "5/15": from 5 on
    }
    // Sunday is 0 or 7.
    if (f.names == kDays && hi == 7) {
      bits->set(0);
      if (lo == 7) continue;
      hi = 6;
    }
    if (lo < f.lo || hi > f.hi || lo > hi) {
      return bad(absl::StrCat("out of range ", f.lo, "-", f.hi));
    }
    for (int v = lo; v <= hi; v += step) bits->set(v);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CronSchedule> CronSchedule::Parse(const std::string& raw) {
  std::string spec(absl::StripAsciiWhitespace(raw));
  CronSchedule c;
  if (spec.empty()) return absl::InvalidArgumentError("input.cron.spec is empty");
  if (spec[0] == '@') {
    absl::string_view rest = spec;
    if (absl::ConsumePrefix(&rest, "@every ")) {
      absl::Duration d;
      if (!absl::ParseDuration(std::string(absl::StripAsciiWhitespace(rest)), &d) ||
          d < absl::Seconds(1)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input.cron.spec: '", spec, "': @every needs a duration of at least 1s (10s, 5m)"));
      }
      c.every_ = d;
      return c;
    }
    static const std::pair<const char*, const char*> kMacros[] = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"}};
    for (const auto& [name, expansion] : kMacros) {
      if (spec == name) return Parse(expansion);
    }
    return absl::InvalidArgumentError(absl::StrCat("input.cron.spec: '", spec,
                                                   "' is not @every DURATION, @yearly, "
                                                   "@monthly, @weekly, @daily or @hourly"));
  }
  std::vector<std::string> f = absl::StrSplit(spec, ' ', absl::SkipWhitespace());
  if (f.size() == 5) f.insert(f.begin(), "0");
  if (f.size() != 6) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input.cron.spec: '", spec, "' has ", f.size(),
        " fields; expected 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)"));
  }
  bool any = false;
  RETURN_IF_ERROR(ParseField({"seconds", 0, 59, nullptr, 0}, f[0], &c.seconds_, &any));
  RETURN_IF_ERROR(ParseField({"minute", 0, 59, nullptr, 0}, f[1], &c.minutes_, &any));
  RETURN_IF_ERROR(ParseField({"hour", 0, 23, nullptr, 0}, f[2], &c.hours_, &any));
  RETURN_IF_ERROR(ParseField({"day-of-month", 1, 31, nullptr, 0}, f[3], &c.days_, &c.any_day_));
  RETURN_IF_ERROR(ParseField({"month", 1, 12, kMonths, 12}, f[4], &c.months_, &any));
  RETURN_IF_ERROR(ParseField({"day-of-week", 0, 7, kDays, 7}, f[5], &c.weekdays_, &c.any_weekday_));
  return c;
}

absl::Time CronSchedule::Next(absl::Time t, absl::Time start) const {
  if (every_ > absl::ZeroDuration()) {
    if (t < start) return start;
    const int64_t n = (t - start) / every_;  // whole intervals so far
    return start + every_ * (n + 1);
  }
  // From the next whole second, skipping whole days, hours and minutes that
  // cannot match: a few thousand steps at most per year searched.
  absl::Time x = absl::FromUnixSeconds(absl::ToUnixSeconds(t) + 1);
  const absl::Time limit = t + absl::Hours(24 * 366 * 5);
  while (x < limit) {
    absl::CivilSecond cs = absl::ToCivilSecond(x, absl::UTCTimeZone());
    const absl::CivilDay day(cs);
    const int weekday = static_cast<int>(absl::GetWeekday(day));  // Monday 0 ... Sunday 6
    const bool dom = days_[cs.day()], dow = weekdays_[(weekday + 1) % 7];
    // Both restricted: either matches (cron's rule); else the restricted one.
    const bool day_ok = any_day_ && any_weekday_ ? true
                        : any_day_               ? dow
                        : any_weekday_           ? dom
                                                 : dom || dow;
    if (!months_[cs.month()] || !day_ok) {
      x = absl::FromCivil(absl::CivilDay(cs) + 1, absl::UTCTimeZone());
      continue;
    }
    if (!hours_[cs.hour()]) {
      x = absl::FromCivil(absl::CivilHour(cs) + 1, absl::UTCTimeZone());
      continue;
    }
    if (!minutes_[cs.minute()]) {
      x = absl::FromCivil(absl::CivilMinute(cs) + 1, absl::UTCTimeZone());
      continue;
    }
    if (!seconds_[cs.second()]) {
      x += absl::Seconds(1);
      continue;
    }
    return x;
  }
  return absl::InfiniteFuture();
}

absl::Time CronSchedule::Latest(absl::Time after, absl::Time now, absl::Time start) const {
  absl::Time t = Next(after, start);
  if (t > now) return absl::InfinitePast();
  if (every_ > absl::ZeroDuration()) return start + every_ * ((now - start) / every_);
  // At most a tick a second: bounded by the time since `after`, which is
  // short unless tuskd was down (then this runs once).
  for (absl::Time n = Next(t, start); n <= now; n = Next(t, start)) t = n;
  return t;
}

}  // namespace tusk::dispatcher
