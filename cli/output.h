#pragma once

// Output of the tusk CLI: exit codes from statuses, sizes and times for
// people, aligned tables, and a progress line for long transfers.

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/timestamp.pb.h"

namespace tusk::cli {

// The exit code for a failed call (see command.h).
int ExitCodeFor(const absl::Status& s);
// "1.5 MiB".
std::string HumanBytes(uint64_t n);
// "2026-11-21 09:51:00" (UTC), or "-" for an unset time.
std::string Time(const google::protobuf::Timestamp& t);
// Prints "tusk: <msg>" and a pointer to --help on stderr; returns kExitUsage.
int UsageError(const std::string& msg);
// An id, or "-" if empty.
std::string Short(const std::string& id);

// Prints rows as aligned columns.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print() const {
    std::vector<size_t> width;
    for (const auto& r : rows_) {
      for (size_t i = 0; i < r.size(); ++i) {
        if (width.size() <= i) width.push_back(0);
        width[i] = std::max(width[i], r[i].size());
      }
    }
    for (const auto& r : rows_) {
      std::string line;
      for (size_t i = 0; i < r.size(); ++i) {
        line += r[i];
        if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
      }
      std::cout << line << "\n";
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

// Progress on a terminal: bytes, files, rate, ETA. Quiet when stderr is not a tty.
// A progress line on stderr (bytes, files, rate, ETA), redrawn at most 5 times
// a second; silent when stderr is not a terminal. Thread-safe.
class Progress {
 public:
  Progress(std::string verb, uint64_t total_bytes, uint64_t total_files)
      : verb_(std::move(verb)),
        total_bytes_(total_bytes),
        total_files_(total_files),
        enabled_(::isatty(STDERR_FILENO) == 1),
        start_(std::chrono::steady_clock::now()) {}
  void Add(uint64_t bytes, uint64_t files) {
    bytes_ += bytes;
    files_ += files;
    if (!enabled_) return;
    std::lock_guard<std::mutex> l(mu_);
    auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    Draw(false);
  }
  // The total, once known (a download's length).
  void SetTotal(uint64_t bytes) { total_bytes_ = bytes; }
  void Done() {
    std::lock_guard<std::mutex> l(mu_);
    if (enabled_ && drawn_) Draw(true);
  }

 private:
  void Draw(bool final) {
    drawn_ = true;
    uint64_t bytes = bytes_, files = files_, total_bytes = total_bytes_;
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    double rate = secs > 0 ? bytes / secs : 0;
    std::string line = absl::StrCat(verb_, " ", HumanBytes(bytes));
    if (total_bytes > 0) absl::StrAppend(&line, " / ", HumanBytes(total_bytes));
    absl::StrAppend(&line, "  ", files);
    if (total_files_ > 0) absl::StrAppend(&line, "/", total_files_);
    absl::StrAppend(&line, " files  ", HumanBytes(static_cast<uint64_t>(rate)), "/s");
    if (!final && total_bytes > bytes && rate > 0) {
      absl::StrAppend(&line, "  ETA ", static_cast<int>((total_bytes - bytes) / rate), "s");
    }
    std::cerr << "\r\033[K" << line << (final ? "\n" : "") << std::flush;
  }

  std::string verb_;
  std::atomic<uint64_t> total_bytes_;
  const uint64_t total_files_;
  std::atomic<uint64_t> bytes_{0}, files_{0};
  const bool enabled_;
  std::mutex mu_;
  bool drawn_ = false;
  const std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace tusk::cli
