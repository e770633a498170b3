#pragma once

// BoundedLog: a command's output kept within a bound, its start and its end
// (a datum's log). Not thread-safe.

#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace tusk::runner {

// Keeps the first and last `cap/2` bytes of a stream.
class BoundedLog {
 public:
  explicit BoundedLog(size_t cap) : half_(cap / 2) {}
  void Append(absl::string_view s) {
    total_ += s.size();
    size_t to_head = std::min(s.size(), half_ - std::min(half_, head_.size()));
    head_.append(s.data(), to_head);
    s.remove_prefix(to_head);
    if (s.empty()) return;
    tail_.append(s.data(), s.size());
    if (tail_.size() > 2 * half_) tail_.erase(0, tail_.size() - half_);
  }
  // The start of the log not yet sent live (logs -f), from byte *offset:
  // at most cap/2 bytes in all, the part that Get() always returns as is.
  absl::string_view Unsent(uint64_t* offset) const {
    *offset = sent_;
    return absl::string_view(head_).substr(sent_);
  }
  void MarkSent(size_t n) { sent_ += n; }
  std::string Get(bool* truncated) const {
    if (tail_.size() > half_) {
      *truncated = true;
      return absl::StrCat(head_, "\n[... ", total_ - head_.size() - half_, " bytes cut ...]\n",
                          tail_.substr(tail_.size() - half_));
    }
    *truncated = false;
    return head_ + tail_;
  }

 private:
  size_t half_;
  size_t total_ = 0;
  size_t sent_ = 0;
  std::string head_, tail_;
};

}  // namespace tusk::runner
