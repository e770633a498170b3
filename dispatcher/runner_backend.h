#pragma once

// RunnerBackend: what starts and stops the runners of pipelines. tuskd keeps
// one (`tuskd --runners local|podman|kubernetes`):
//
// - local: tusk-runner processes on tuskd's host, commands in bubblewrap; no
//   image (server/local_runners.h);
// - podman: one podman pod per runner, made from the pod spec that goes to
//   Kubernetes (pods/podman_runners.h);
// - kubernetes: one Deployment per pipeline version through the Kubernetes
//   API (pods/kube_runners.h).
//
// A backend reads what the dispatcher wants (Dispatcher::RunnerWants: the
// pipelines, their versions and specs, and how much work each has) and makes
// the world match, again and again; it tells the dispatcher at once when a
// runner is gone (Dispatcher::ReleaseRunner) so that its datum is leased
// again without waiting for the lease to expire.
//
// Lifecycle: made by tuskd after the dispatcher, Start()ed once, destroyed
// before the dispatcher. Implementations are thread-safe.

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/pps.pb.h"

namespace tusk::dispatcher {

// One pipeline's claim on runners (Dispatcher::RunnerWants).
struct RunnerWant {
  std::string pipeline;
  uint64_t version = 0;
  pps::v1::PipelineSpec spec;
  bool paused = false;
  int ceiling = 1;      // parallelism_spec.constant
  uint64_t work = 0;    // queued + leased datums of its running job
  absl::Duration idle;  // how long work has been 0 (zero while busy)
};

class RunnerBackend {
 public:
  virtual ~RunnerBackend() = default;

  // "local", "podman" or "kubernetes".
  virtual absl::string_view name() const = 0;
  // Whether a pipeline's transform.image is what its command runs in.
  virtual bool RunsImages() const = 0;
  // Checks a spec before it is accepted: InvalidArgument naming the field
  // this backend cannot honour.
  virtual absl::Status CheckSpec(const pps::v1::PipelineSpec& spec) const {
    (void)spec;
    return absl::OkStatus();
  }
  // Starts reconciling in a thread of the backend's own.
  virtual void Start() = 0;
  // How `pipeline`'s runners are doing, if the backend knows.
  virtual std::optional<pps::v1::RunnerStatus> Status(const std::string& pipeline) {
    (void)pipeline;
    return std::nullopt;
  }
};

}  // namespace tusk::dispatcher
