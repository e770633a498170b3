#pragma once

// PodmanRunners: the podman runner backend (`tuskd --runners podman`). Each
// runner is a podman pod made by `podman kube play` from the pipeline's
// runner pod (pods/pod_spec.h: the spec that goes to Kubernetes, as a Pod),
// so a laptop runs pipelines in their own images without a cluster.
//
// - The runner container reaches tuskd through tuskd's unix socket, a host
//   directory mounted into that container alone; the pod's network is
//   `none` (loopback only) unless transform.network, so the user's code has
//   no route to tuskd.
// - tuskd supervises the pods as a ReplicaSet would: replicas follow
//   DesiredReplicas (pods/scaling.h); a pod whose container ended is
//   removed, its runner's datum leased again at once, and the pod made
//   again after a backoff that grows while it keeps failing. What went
//   wrong (the image cannot be found, the runner keeps crashing, a
//   container was OOMKilled) is the pipeline's RunnerStatus.
// - Pods are named tusk-<owner>-<pipeline>-v<version>-<index>, <owner> a
//   hash of this tuskd's data directory: several tuskds share one podman
//   without touching each other's pods. Pods of this owner found at start
//   (tuskd died) are removed first.
//
// Lifecycle: Start() launches the reconciling thread; the destructor stops
// it and removes every pod. Thread-safe.

#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "dispatcher/dispatcher.h"
#include "pods/pod_backend.h"
#include "pods/pod_spec.h"

namespace tusk::pods {

struct PodmanRunnersOptions {
  std::string podman = "podman";
  // The pods' runner image, tuskd's socket and address, secrets directory.
  PodOptions pod;
  std::string owner;     // a short id of this tuskd (see above)
  std::string work_dir;  // where the pods' YAML files are kept (mode 0700)
  absl::Duration idle_grace = absl::Minutes(5);
  absl::Duration poll = absl::Seconds(1);
  // With authentication on: a runner token for a pipeline.
  std::function<absl::StatusOr<std::string>(const std::string& pipeline)> runner_token;
};

class PodmanRunners : public PodBackend {
 public:
  PodmanRunners(dispatcher::Dispatcher* dispatcher, PodmanRunnersOptions options)
      : PodBackend(options.poll), dispatcher_(dispatcher), options_(std::move(options)) {}
  ~PodmanRunners() override;

  absl::string_view name() const override { return "podman"; }

 private:
  struct Slot {
    std::string pod;  // empty: none now
    uint64_t version = 0;
    absl::Time started;
    absl::Time next_start;
    int failures = 0;  // quick deaths in a row
  };
  struct PipelineState {
    std::vector<Slot> slots;
    std::string token;
    pps::v1::RunnerStatus status;
  };

  // PodBackend: pods an earlier tuskd left go first, then passes; at the
  // end every pod goes.
  void Begin() override;
  void Pass() override { Reconcile(); }
  void End() override;
  void Reconcile();
  // Containers of our pods: pod name -> (container name -> state).
  absl::StatusOr<std::map<std::string, std::map<std::string, std::string>>> ListPods();
  void CreatePod(const dispatcher::RunnerWant& want, int index, Slot* slot, PipelineState* p);
  // Removes the pod; its runner's leases go back at once (with `reason` as
  // the attempt's error when set).
  void RemovePod(Slot* slot, const std::string& reason);
  void RemovePods(const std::vector<Slot*>& slots, const std::string& reason);
  // Why a pod's containers ended (OOMKilled, exit codes, the runner's last
  // log lines) and whether it was an OOM kill.
  std::string WhyEnded(const std::string& pod, bool* oom_killed);
  void SetTrouble(PipelineState* p, const std::string& reason, const std::string& message);

  dispatcher::Dispatcher* const dispatcher_;
  const PodmanRunnersOptions options_;
  std::map<std::string, PipelineState> pipelines_;  // reconciling thread only
};

}  // namespace tusk::pods
