#include "common/flag_values.h"

#include <cctype>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tusk {

absl::StatusOr<uint64_t> ParseBytes(const std::string& flag, const std::string& s) {
  static const std::vector<std::pair<std::string, uint64_t>> kSuffixes = {
      {"kib", 1ull << 10}, {"mib", 1ull << 20},
      {"gib", 1ull << 30}, {"kb", 1ull << 10},
      {"mb", 1ull << 20},  {"gb", 1ull << 30},
      {"k", 1ull << 10},   {"m", 1ull << 20},
      {"g", 1ull << 30},   {"b", 1}};
  uint64_t mult = 1;
  std::string lower;
  for (char ch : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (const auto& [suffix, m] : kSuffixes) {
    if (lower.size() > suffix.size() &&
        lower.compare(lower.size() - suffix.size(), suffix.size(), suffix) == 0) {
      mult = m;
      lower.resize(lower.size() - suffix.size());
      break;
    }
  }
  uint64_t n = 0;
  if (!absl::SimpleAtoi(lower, &n)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " '", s, "' is not a size (e.g. 16MiB, 64k, 1000)"));
  }
  return n * mult;
}

absl::StatusOr<absl::Duration> ParseFlagDuration(const std::string& flag, const std::string& s) {
  absl::Duration d;
  int64_t days = 0;
  if (s.size() > 1 && s.back() == 'd' && absl::SimpleAtoi(s.substr(0, s.size() - 1), &days) &&
      days >= 0) {
    return absl::Hours(24 * days);  // days are not in absl's syntax
  }
  if (!absl::ParseDuration(s == "0" ? "0s" : s, &d) || d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " must be a duration like 90s, 30m or 2h, not '", s, "'"));
  }
  return d;
}

absl::StatusOr<std::string> ParseChoice(const std::string& flag, const std::string& s,
                                        std::initializer_list<const char*> choices) {
  for (const char* c : choices) {
    if (s == c) return s;
  }
  std::vector<std::string> names(choices.begin(), choices.end());
  std::string list =
      names.size() < 2
          ? absl::StrJoin(names, "")
          : absl::StrCat(absl::StrJoin(names.begin(), names.end() - 1, ", "), " or ", names.back());
  return absl::InvalidArgumentError(absl::StrCat(flag, " must be ", list, ", not '", s, "'"));
}

absl::StatusOr<int64_t> ParseInt(const std::string& flag, const std::string& s, int64_t min,
                                 int64_t max) {
  int64_t n = 0;
  if (!absl::SimpleAtoi(s, &n) || n < min || n > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " must be a number from ", min, " to ", max));
  }
  return n;
}

absl::StatusOr<uint64_t> ParseMemoryQuantity(const std::string& s) {
  // Kubernetes quantities: 128974848, 129e6, 129M, 123Mi (k, M, G, T; Ki, Mi, Gi, Ti).
  size_t i = 0;
  while (i < s.size() && (absl::ascii_isdigit(s[i]) || s[i] == '.')) ++i;
  double n = 0;
  if (i == 0 || !absl::SimpleAtod(s.substr(0, i), &n)) {
    return absl::InvalidArgumentError(absl::StrCat("'", s, "' is not a size such as 512Mi or 2G"));
  }
  static const std::pair<const char*, double> kUnits[] = {{"", 1},
                                                          {"k", 1e3},
                                                          {"K", 1e3},
                                                          {"M", 1e6},
                                                          {"G", 1e9},
                                                          {"T", 1e12},
                                                          {"Ki", 1024.0},
                                                          {"Mi", 1048576.0},
                                                          {"Gi", 1073741824.0},
                                                          {"Ti", 1099511627776.0}};
  const std::string unit = s.substr(i);
  for (const auto& [name, factor] : kUnits) {
    if (unit == name) return static_cast<uint64_t>(n * factor);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("'", s, "' has an unknown unit '", unit, "' (k, M, G, T, Ki, Mi, Gi, Ti)"));
}

std::string FormatMemoryLimit(uint64_t n) {
  if (n >= (1ull << 30) && n % (1ull << 30) == 0) return absl::StrCat(n >> 30, " GiB");
  if (n >= (1ull << 20)) return absl::StrCat(n >> 20, " MiB");
  return absl::StrCat(n, " bytes");
}

}  // namespace tusk
