#include "pods/pod_backend.h"

#include "absl/strings/str_cat.h"

namespace tusk::pods {

absl::Status PodBackend::CheckSpec(const pps::v1::PipelineSpec& spec) const {
  if (spec.transform().image().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "transform.image is required: this tuskd runs pipelines in their images as pods "
        "(--runners ",
        name(), "); start tuskd with --runners local to run commands on its host"));
  }
  return absl::OkStatus();
}

void PodBackend::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void PodBackend::StopLoop() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

std::optional<pps::v1::RunnerStatus> PodBackend::Status(const std::string& pipeline) {
  absl::MutexLock l(&mu_);
  auto it = statuses_.find(pipeline);
  if (it == statuses_.end()) return std::nullopt;
  return it->second;
}

void PodBackend::PublishStatuses(std::map<std::string, pps::v1::RunnerStatus> statuses) {
  absl::MutexLock l(&mu_);
  statuses_ = std::move(statuses);
}

void PodBackend::Loop() {
  Begin();
  while (true) {
    Pass();
    absl::MutexLock l(&mu_);
    auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping), poll_)) break;
  }
  End();
}

}  // namespace tusk::pods
