#include "server/local_runners.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/sandbox_paths.h"

namespace tusk::server {

LocalRunners::~LocalRunners() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::Status LocalRunners::CheckSpec(const pps::v1::PipelineSpec& spec) const {
  const auto& secrets = spec.transform().secrets();
  for (int i = 0; i < secrets.size(); ++i) {
    if (const char* dir = SandboxSystemDirOf(secrets[i].mount_path())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "transform.secrets[", i, "].mount_path: ", secrets[i].mount_path(), " is under /", dir,
          ", which local runners show read-only from the host; mount it elsewhere (e.g. /secrets/",
          secrets[i].name(), "), or run pods (--runners podman or kubernetes)"));
    }
  }
  return absl::OkStatus();
}

void LocalRunners::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void LocalRunners::Loop() {
  while (true) {
    {
      absl::MutexLock l(&mu_);
      auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping), absl::Milliseconds(100))) break;
    }
    Reconcile();
  }
  for (auto& [pipeline, slots] : slots_) {
    for (auto& s : slots) {
      if (s.pid > 0) {
        ::kill(s.pid, SIGKILL);
        ::waitpid(s.pid, nullptr, 0);
      }
    }
  }
}

void LocalRunners::Reconcile() {
  // Reap runners that ended.
  for (auto& [pipeline, slots] : slots_) {
    for (auto& s : slots) {
      if (s.pid <= 0) continue;
      int status = 0;
      if (::waitpid(s.pid, &status, WNOHANG) != s.pid) continue;
      s.pid = 0;
      dispatcher_->ReleaseRunner(s.name);
      bool quick = absl::Now() - s.started < absl::Seconds(10);
      s.failures = quick ? s.failures + 1 : 0;
      absl::Duration backoff =
          s.failures == 0 ? absl::ZeroDuration()
                          : std::min(absl::Seconds(30),
                                     absl::Milliseconds(250) * (1 << std::min(s.failures, 7)));
      s.next_start = absl::Now() + backoff;
      LOG(WARNING) << "runner " << s.name << " ended ("
                   << (WIFSIGNALED(status) ? absl::StrCat("signal ", WTERMSIG(status))
                                           : absl::StrCat("exit ", WEXITSTATUS(status)))
                   << "); restarting it"
                   << (backoff > absl::ZeroDuration() ? " in " + absl::FormatDuration(backoff)
                                                      : "");
    }
  }
  std::map<std::string, int> demand = dispatcher_->RunnerDemand();
  // Stop runners nobody wants any more.
  for (auto it = slots_.begin(); it != slots_.end();) {
    auto want = demand.find(it->first);
    size_t n = want == demand.end() ? 0 : static_cast<size_t>(want->second);
    while (it->second.size() > n) {
      Slot& s = it->second.back();
      if (s.pid > 0) {
        ::kill(s.pid, SIGKILL);
        ::waitpid(s.pid, nullptr, 0);
        dispatcher_->ReleaseRunner(s.name);
        LOG(INFO) << "stopped runner " << s.name;
      }
      it->second.pop_back();
    }
    if (it->second.empty()) {
      tokens_.erase(it->first);  // a pipeline made again gets a new token
      it = slots_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [pipeline, n] : demand) {
    auto& slots = slots_[pipeline];
    if (slots.size() < static_cast<size_t>(n)) slots.resize(n);
    for (int i = 0; i < n; ++i) {
      Slot& s = slots[i];
      if (s.pid == 0 && absl::Now() >= s.next_start) Spawn(pipeline, i, &s);
    }
  }
}

void LocalRunners::Spawn(const std::string& pipeline, int index, Slot* slot) {
  slot->generation++;
  slot->name = absl::StrCat(pipeline, "-", index, "-", slot->generation);
  std::vector<std::string> argv = {options_.runner_binary,
                                   "--tuskd",
                                   address_,
                                   "--pipeline",
                                   pipeline,
                                   "--name",
                                   slot->name,
                                   "--work-dir",
                                   absl::StrCat(options_.work_root, "/", pipeline, "-", index),
                                   "--sandbox",
                                   options_.sandbox};
  for (const auto& h : options_.hide) argv.insert(argv.end(), {"--hide", h});
  if (!options_.secrets_dir.empty())
    argv.insert(argv.end(), {"--secrets-dir", options_.secrets_dir});
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "TUSK_TOKEN=", 11) != 0) env.push_back(*e);
  }
  if (options_.runner_token) {
    auto& token = tokens_[pipeline];
    if (token.empty()) {
      auto made = options_.runner_token(pipeline);
      if (!made.ok()) {
        LOG(ERROR) << "cannot start runner " << slot->name
                   << ": no runner token: " << made.status();
        slot->next_start = absl::Now() + absl::Seconds(5);
        return;
      }
      token = made->token;
    }
    env.push_back("TUSK_TOKEN=" + token);
  }
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    LOG(ERROR) << "cannot start runner " << slot->name << ": fork failed";
    slot->next_start = absl::Now() + absl::Seconds(1);
    return;
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(0);  // tuskd is already gone
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  slot->pid = pid;
  slot->started = absl::Now();
  VLOG(1) << "started runner " << slot->name << " (pid " << pid << ")";
}

}  // namespace tusk::server
