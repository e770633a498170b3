#pragma once

// PodBackend: what the podman and kubernetes runner backends share: a
// reconciling thread that makes a pass every `poll` until stopped, the
// pipelines' runner statuses it publishes after each pass, and the rule
// that a pipeline runs in its image (transform.image is required).
//
// Lifecycle: Start() launches the thread: Begin(), then Pass() every poll,
// then End() once stopping. A derived class calls StopLoop() first thing in
// its destructor, so that no pass runs on a half-destroyed object.
// Thread-safe.

#include <map>
#include <optional>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "dispatcher/runner_backend.h"

namespace tusk::pods {

class PodBackend : public dispatcher::RunnerBackend {
 public:
  bool RunsImages() const override { return true; }
  absl::Status CheckSpec(const pps::v1::PipelineSpec& spec) const override;
  void Start() override;
  std::optional<pps::v1::RunnerStatus> Status(const std::string& pipeline) override;

 protected:
  explicit PodBackend(absl::Duration poll) : poll_(poll) {}
  // Stops and joins the thread (idempotent).
  void StopLoop();
  virtual void Begin() {}
  virtual void Pass() = 0;
  virtual void End() {}
  // Replaces the statuses Status() returns.
  void PublishStatuses(std::map<std::string, pps::v1::RunnerStatus> statuses);

 private:
  void Loop();

  const absl::Duration poll_;
  std::thread thread_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, pps::v1::RunnerStatus> statuses_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tusk::pods
