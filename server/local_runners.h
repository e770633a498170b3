#pragma once

// LocalRunners: the embedded default's workers. Keeps `parallelism` tusk-runner
// processes per running pipeline on this machine, restarts one that dies
// (after a backoff that grows while it keeps dying), tells the dispatcher at
// once so that its datum is leased again, and stops the runners of pipelines
// that are deleted or stopped. Runners die with tuskd (PR_SET_PDEATHSIG).
//
// Lifecycle: Start() launches the supervising thread; the destructor kills
// every runner and joins it. Thread-safe.

#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "dispatcher/dispatcher.h"
#include "server/tokens.h"

namespace tusk::server {

struct LocalRunnersOptions {
  std::string runner_binary;      // path of tusk-runner
  std::string work_root;          // scratch directories, one per runner
  std::vector<std::string> hide;  // directories the commands must not see
  std::string sandbox = "auto";
  std::string secrets_dir;  // transform.secrets (NAME/KEY files)
  // With authentication on: a new runner token for a pipeline (given to its
  // runners in TUSK_TOKEN, which their commands do not inherit).
  std::function<absl::StatusOr<TokenStore::Created>(const std::string& pipeline)> runner_token;
};

class LocalRunners : public dispatcher::RunnerBackend {
 public:
  LocalRunners(dispatcher::Dispatcher* dispatcher, LocalRunnersOptions options)
      : dispatcher_(dispatcher), options_(std::move(options)) {}
  ~LocalRunners() override;

  absl::string_view name() const override { return "local"; }
  bool RunsImages() const override { return false; }
  // transform.secrets' mount_path must be outside the host's system
  // directories, which the sandbox shows read-only.
  absl::Status CheckSpec(const pps::v1::PipelineSpec& spec) const override;
  // tuskd's address for the runners, known once it serves; before Start().
  void SetAddress(const std::string& address) { address_ = address; }
  void Start() override;

 private:
  struct Slot {
    pid_t pid = 0;
    std::string name;
    int generation = 0;
    int failures = 0;  // quick deaths in a row
    absl::Time started;
    absl::Time next_start;
  };
  void Loop();
  void Reconcile();
  void Spawn(const std::string& pipeline, int index, Slot* slot);

  dispatcher::Dispatcher* const dispatcher_;
  const LocalRunnersOptions options_;
  std::string address_;
  std::thread thread_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::vector<Slot>> slots_;  // supervising thread only
  std::map<std::string, std::string> tokens_;       // supervising thread only
};

}  // namespace tusk::server
