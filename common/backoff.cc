#include "common/backoff.h"

#include <algorithm>
#include <random>

namespace tusk {

absl::Duration RetryBackoff(int attempt, absl::Duration base, absl::Duration cap) {
  absl::Duration limit = base * (1 << std::min(std::max(attempt, 0), 16));
  if (limit > cap) limit = cap;
  thread_local std::mt19937_64 rng(std::random_device{}());
  std::uniform_int_distribution<int64_t> d(0, absl::ToInt64Microseconds(limit));
  return absl::Microseconds(d(rng));
}

}  // namespace tusk
