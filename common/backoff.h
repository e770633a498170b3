#pragma once

// Waits between retries: exponential backoff with full jitter.

#include "absl/time/time.h"

namespace tusk {

// How long to wait before retry `attempt` (0-based): uniformly random in
// [0, min(cap, base * 2^attempt)] ("full jitter"), so that many clients
// retrying at once spread out.
absl::Duration RetryBackoff(int attempt, absl::Duration base, absl::Duration cap);

}  // namespace tusk
