#include "server/stream_watchdog.h"

#include <grpcpp/server_context.h>

#include <algorithm>
#include <vector>

#include "absl/time/clock.h"

namespace tusk::server {

StreamWatchdog::StreamWatchdog(absl::Duration idle) : idle_(idle) {
  if (idle_ > absl::ZeroDuration() && idle_ != absl::InfiniteDuration()) {
    thread_ = std::thread([this] { Loop(); });
  }
}

StreamWatchdog::~StreamWatchdog() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

std::unique_ptr<StreamWatchdog::Watch> StreamWatchdog::Start(grpc::ServerContext* ctx) {
  auto w = std::unique_ptr<Watch>(new Watch(this, ctx));
  absl::MutexLock lock(&mu_);
  watches_.insert(w.get());
  return w;
}

StreamWatchdog::Watch::~Watch() {
  // Under the lock: the watchdog never cancels a context whose handler is
  // gone.
  absl::MutexLock lock(&dog_->mu_);
  dog_->watches_.erase(this);
}

void StreamWatchdog::Watch::OnIdle(std::function<void()> fn) {
  absl::MutexLock lock(&dog_->mu_);
  on_idle_ = std::move(fn);
}

void StreamWatchdog::Loop() {
  // Checked a few times per idle period: a stream is cancelled between
  // `idle` and `idle` plus a quarter of it (at most a second) after its last
  // message.
  const absl::Duration tick = std::min(idle_ / 4, absl::Seconds(1));
  absl::MutexLock lock(&mu_);
  while (!stop_) {
    mu_.AwaitWithTimeout(absl::Condition(&stop_), tick);
    if (stop_) break;
    const int64_t now = absl::GetCurrentTimeNanos();
    const int64_t idle = absl::ToInt64Nanoseconds(idle_);
    std::vector<std::function<void()>> actions;
    for (Watch* w : watches_) {
      const int64_t last = w->last_.load();
      if (!w->expired_.load() && last < now - idle) {
        w->expired_ = true;
        if (w->on_idle_) actions.push_back(std::move(w->on_idle_));
        w->on_idle_ = nullptr;
      }
      if (!w->cancelled_ && last < now - 2 * idle) {
        w->cancelled_ = true;
        w->ctx_->TryCancel();
      }
    }
    // Outside the lock: an action may wait for what a handler holds, and a
    // handler ends (destroying its Watch) under the lock.
    mu_.Unlock();
    for (auto& a : actions) a();
    mu_.Lock();
  }
}

}  // namespace tusk::server
