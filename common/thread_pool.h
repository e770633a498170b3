#pragma once

// A fixed-size pool of worker threads running submitted tasks in FIFO order.
//
// Lifecycle: threads start in the constructor; the destructor runs every task
// already submitted, then joins. Thread-safe: Submit may be called from any
// thread, including from a task.

#include <deque>
#include <functional>
#include <future>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace tusk {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Schedule(std::function<void()> task);

  // Runs fn on the pool; the future yields its result.
  template <typename F>
  auto Submit(F fn) -> std::future<decltype(fn())> {
    using R = decltype(fn());
    auto task = std::make_shared<std::packaged_task<R()>>(std::move(fn));
    std::future<R> f = task->get_future();
    Schedule([task] { (*task)(); });
    return f;
  }

  int size() const { return static_cast<int>(threads_.size()); }

 private:
  void Work();

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace tusk
