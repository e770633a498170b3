#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <cstring>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace tusk {
namespace {
std::atomic<int> min_level{static_cast<int>(LogLevel::kInfo)};
}  // namespace

bool ParseLogLevel(const std::string &name, LogLevel *level) {
  static const std::pair<const char *, LogLevel> kLevels[] = {{"debug", LogLevel::kDebug},
                                                              {"info", LogLevel::kInfo},
                                                              {"warning", LogLevel::kWarning},
                                                              {"error", LogLevel::kError}};
  for (const auto &[n, l] : kLevels) {
    if (name == n) {
      *level = l;
      return true;
    }
  }
  return false;
}

void SetMinLogLevel(LogLevel level) { min_level.store(static_cast<int>(level)); }
bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= min_level.load(); }

LogMessage::LogMessage(LogLevel level, const char *file, int line) : level_(level) {
  static constexpr char kLetters[] = "DIWE";
  const char *base = std::strrchr(file, '/');
  stream_ << absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()) << ' '
          << kLetters[static_cast<int>(level_)] << ' ' << (base ? base + 1 : file) << ':' << line
          << "] ";
}

LogMessage::~LogMessage() {
  stream_ << '\n';
  std::string s = stream_.str();
  // One write per message so that concurrent lines do not interleave.
  ssize_t n = ::write(STDERR_FILENO, s.data(), s.size());
  (void)n;  // Nowhere to report a failure to log.
}

}  // namespace tusk
