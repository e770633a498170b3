#pragma once

// KubeRunners: the kubernetes runner backend (`tuskd --runners kubernetes`).
// One Deployment per pipeline version, through the Kubernetes API:
//
// - Named tusk-<pipeline>-v<version> (pods/pod_spec.h), labelled with the
//   pipeline and version, its template annotated with a hash of the pod
//   spec. A new version gets a new Deployment and the old one is deleted; a
//   changed pod spec for the same version (a new runner image) replaces the
//   Deployment's template; a tuskd restart with nothing changed touches
//   nothing. A Deployment, not a bare ReplicaSet: it replaces pods that die
//   and rolls a changed template out by itself, and `kubectl rollout` works.
// - Replicas follow the work (pods/scaling.h): the queue drives scale-up,
//   not CPU; an idle pipeline goes to zero after the grace period.
// - Orphans: at start the cluster's runner Deployments are listed first,
//   then the index's pipelines; a Deployment whose pipeline is gone (deleted
//   while tuskd was down) or whose version is old is deleted, as is a token
//   Secret whose pipeline is gone. Creations and replacements are paced
//   (a few per pass), so a restart does not restart every pipeline at once.
// - Runner tokens: each pipeline's runners read theirs from the Secret
//   tusk-runner-<pipeline> (key "token"), made when first needed.
// - Pod trouble (ImagePullBackOff, ErrImagePull, InvalidImageName,
//   CreateContainerConfigError, CrashLoopBackOff, Unschedulable, OOMKilled)
//   is the pipeline's RunnerStatus. A pod that is deleted, evicted or fails,
//   or whose runner container restarts, hands its runner's datum back at
//   once (Dispatcher::ReleaseRunner; an OOM kill fails the attempt with
//   OOMKilled).
//
// Lifecycle: Start() launches the reconciling thread; the destructor stops
// it and leaves the cluster's objects as they are (a restarted tuskd finds
// them). Thread-safe.

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "dispatcher/dispatcher.h"
#include "pods/kube_client.h"
#include "pods/pod_backend.h"
#include "pods/pod_spec.h"

namespace tusk::pods {

struct KubeRunnersOptions {
  PodOptions pod;  // runner image, tuskd's address for the runners
  absl::Duration idle_grace = absl::Minutes(5);
  absl::Duration poll = absl::Seconds(1);
  int changes_per_pass = 3;  // Deployments created or replaced per pass
  // With authentication on: a new runner token for a pipeline.
  std::function<absl::StatusOr<std::string>(const std::string& pipeline)> runner_token;
};

class KubeRunners : public PodBackend {
 public:
  KubeRunners(dispatcher::Dispatcher* dispatcher, std::unique_ptr<KubeClient> client,
              KubeRunnersOptions options)
      : PodBackend(options.poll),
        dispatcher_(dispatcher),
        client_(std::move(client)),
        options_(std::move(options)) {}
  ~KubeRunners() override;

  absl::string_view name() const override { return "kubernetes"; }

 private:
  struct PodSeen {
    std::string uid;
    int runner_restarts = 0;
    int user_restarts = 0;
  };
  struct PipelineState {
    pps::v1::RunnerStatus status;
    std::map<std::string, PodSeen> pods;  // by pod name (= runner name)
  };

  struct Listing;  // the cluster's runner objects in one pass (kube_runners.cc)

  void Begin() override;
  void Pass() override;
  absl::Status Reconcile();
  // Makes, replaces or scales the Deployment of `want`; `budget` counts the
  // creations and replacements left for this pass.
  absl::Status Apply(const dispatcher::RunnerWant& want, const Listing& cluster, int* budget);
  absl::Status EnsureTokenSecret(const std::string& pipeline, const Listing& cluster);
  // Reads the pods of a pipeline version: trouble, readiness, runners gone.
  void WatchPods(const dispatcher::RunnerWant& want, const Listing& cluster, PipelineState* p);

  dispatcher::Dispatcher* const dispatcher_;
  const std::unique_ptr<KubeClient> client_;  // reconciling thread only
  const KubeRunnersOptions options_;
  std::map<std::string, PipelineState> pipelines_;  // reconciling thread only
};

}  // namespace tusk::pods
