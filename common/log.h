#pragma once

// Minimal leveled logging to stderr, one line per message:
//   2026-11-21T09:51:00.123Z I pfs: finished commit 3f2a... on images@master
//
//   TUSK_LOG(INFO) << "finished commit " << id;
//
// Thread-safe: each message is formatted in a buffer and written with one
// write().

#include <sstream>
#include <string>

namespace tusk {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// "debug", "info", "warning" or "error"; false for anything else.
bool ParseLogLevel(const std::string &name, LogLevel *level);

// Messages below `level` are dropped. Default: kInfo.
void SetMinLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

class LogMessage {
 public:
  LogMessage(LogLevel level, const char *file, int line);
  ~LogMessage();
  std::ostream &stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

// Makes the stream expression void so it fits in the ?: of TUSK_LOG.
struct LogVoidify {
  void operator&(std::ostream &) {}
};

}  // namespace tusk

#define TUSK_LOG_LEVEL_DEBUG ::tusk::LogLevel::kDebug
#define TUSK_LOG_LEVEL_INFO ::tusk::LogLevel::kInfo
#define TUSK_LOG_LEVEL_WARNING ::tusk::LogLevel::kWarning
#define TUSK_LOG_LEVEL_ERROR ::tusk::LogLevel::kError

#define TUSK_LOG(level)                       \
  !::tusk::LogEnabled(TUSK_LOG_LEVEL_##level) \
      ? (void)0                               \
      : ::tusk::LogVoidify() &                \
            ::tusk::LogMessage(TUSK_LOG_LEVEL_##level, __FILE__, __LINE__).stream()
