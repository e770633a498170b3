#pragma once

// How many runners a pipeline should have now: the rule the podman and
// kubernetes backends share.
//
// - paused: 0;
// - busy (its job has queued or leased datums): parallelism_spec.constant,
//   or with `autoscaling: true` min(constant, queued + leased datums), never
//   fewer than it has now (a runner scaled away mid-datum would only hand
//   its datum back);
// - idle for less than `grace`: what it has now (a new commit soon after
//   finds its runners warm);
// - idle for `grace` or longer: 0 (an idle pipeline holds no pod).

#include <algorithm>

#include "absl/time/time.h"
#include "dispatcher/runner_backend.h"

namespace tusk::pods {

inline int DesiredReplicas(const dispatcher::RunnerWant& want, int current, absl::Duration grace) {
  if (want.paused) return 0;
  if (want.work > 0) {
    int busy = want.spec.autoscaling()
                   ? static_cast<int>(std::min<uint64_t>(want.ceiling, want.work))
                   : want.ceiling;
    return std::min(want.ceiling, std::max({busy, current, 1}));
  }
  return want.idle < grace ? current : 0;
}

}  // namespace tusk::pods
