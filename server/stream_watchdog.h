#pragma once

// StreamWatchdog: ends client streams that have gone quiet. A handler of a
// long-lived client stream (PutFile) calls Start() and Touch()es the returned
// Watch on every message. A stream with no message for `idle` expires: the
// Watch's on-idle action runs (from the watchdog's thread; PutFile drops its
// automatic commit there, which frees the branch), and the handler, seeing
// expired() when the client speaks again, tells it why. A stream still silent
// after twice `idle` is cancelled (grpc::ServerContext::TryCancel), so that
// its blocked Read returns and the handler's thread is freed.
//
// Lifecycle: construct before serving (starts one thread), destroy after the
// server has stopped (every Watch must be gone by then).
// Thread safety: thread-safe; a Watch is used by its handler's thread only,
// apart from the watchdog's own check.

#include <atomic>
#include <functional>
#include <memory>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace grpc {
class ServerContext;
}

namespace tusk::server {

class StreamWatchdog {
 public:
  // `idle` zero or infinite: never cancels (Watch still works).
  explicit StreamWatchdog(absl::Duration idle);
  ~StreamWatchdog();
  StreamWatchdog(const StreamWatchdog&) = delete;
  StreamWatchdog& operator=(const StreamWatchdog&) = delete;

  class Watch {
   public:
    ~Watch();
    // A message arrived.
    void Touch() { last_ = absl::GetCurrentTimeNanos(); }
    // Whether the stream was idle for too long (its on-idle action ran).
    bool expired() const { return expired_.load(); }
    // What to do when the stream expires; runs once, on the watchdog's
    // thread, and must not touch the handler's state.
    void OnIdle(std::function<void()> fn);

   private:
    friend class StreamWatchdog;
    Watch(StreamWatchdog* dog, grpc::ServerContext* ctx) : dog_(dog), ctx_(ctx) { Touch(); }
    StreamWatchdog* const dog_;
    grpc::ServerContext* const ctx_;
    std::atomic<int64_t> last_;
    std::atomic<bool> expired_{false};
    bool cancelled_ = false;         // guarded by the watchdog's mu_
    std::function<void()> on_idle_;  // guarded by the watchdog's mu_
  };

  std::unique_ptr<Watch> Start(grpc::ServerContext* ctx);
  absl::Duration idle() const { return idle_; }

 private:
  void Loop();

  const absl::Duration idle_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<Watch*> watches_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace tusk::server
