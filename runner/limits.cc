#include "runner/limits.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/log.h"

namespace tusk::runner {
namespace {

// This process's cgroup in the v1 hierarchy of `controller`, as a path under
// /sys/fs/cgroup/<controller>; empty if there is none.
std::string OwnCgroup(const std::string& controller) {
  std::ifstream f("/proc/self/cgroup");
  std::string line;
  while (std::getline(f, line)) {
    std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3) continue;
    for (absl::string_view c : absl::StrSplit(parts[1], ',')) {
      if (c == controller) {
        std::string dir = absl::StrCat("/sys/fs/cgroup/", controller, parts[2]);
        while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
        return dir;
      }
    }
  }
  return "";
}

bool WriteFile(const std::string& path, const std::string& value) {
  std::ofstream f(path);
  f << value;
  f.flush();
  return static_cast<bool>(f);
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The number after `key` in a "key value" list (memory.oom_control, pids.events).
uint64_t Field(const std::string& text, absl::string_view key) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<absl::string_view> kv = absl::StrSplit(line, ' ');
    uint64_t v = 0;
    if (kv.size() == 2 && kv[0] == key && absl::SimpleAtoi(kv[1], &v)) return v;
  }
  return 0;
}

// Kills every process of a v1 group and removes the directory.
void KillAndRemove(const std::string& dir) {
  if (dir.empty()) return;
  for (int round = 0; round < 50; ++round) {
    std::istringstream procs(ReadFile(dir + "/cgroup.procs"));
    pid_t pid;
    bool any = false;
    while (procs >> pid) {
      ::kill(pid, SIGKILL);
      any = true;
    }
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
    if (!any && errno != EBUSY) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  LOG(WARNING) << "cannot remove cgroup " << dir << ": " << std::strerror(errno);
}

}  // namespace

Cgroups::Group::~Group() {
  KillAndRemove(pids_);
  KillAndRemove(memory_);
}

bool Cgroups::Group::OomKilled() const {
  return Field(ReadFile(memory_ + "/memory.oom_control"), "oom_kill") > 0;
}

bool Cgroups::Group::HitProcessLimit() const {
  return Field(ReadFile(pids_ + "/pids.events"), "max") > 0;
}

std::unique_ptr<Cgroups> Cgroups::Probe(const std::string& runner_name) {
  auto c = std::unique_ptr<Cgroups>(new Cgroups());
  c->memory_root_ = OwnCgroup("memory");
  c->pids_root_ = OwnCgroup("pids");
  if (c->memory_root_.empty() || c->pids_root_.empty()) return nullptr;
  c->prefix_ = absl::StrCat("tusk-", runner_name, "-");
  auto probe = c->Create("probe", 64 << 20, 16);
  if (!probe.ok()) {
    VLOG(1) << "cgroups not usable here: " << probe.status();
    return nullptr;
  }
  return c;
}

absl::StatusOr<std::unique_ptr<Cgroups::Group>> Cgroups::Create(const std::string& attempt,
                                                                uint64_t memory,
                                                                uint64_t processes) {
  auto g = std::unique_ptr<Group>(new Group());
  const std::string name = prefix_ + attempt;
  for (auto [root, dir] : {std::pair<const std::string&, std::string*>{memory_root_, &g->memory_},
                           {pids_root_, &g->pids_}}) {
    std::string path = root + "/" + name;
    KillAndRemove(path);  // left by an earlier runner of this name
    if (::mkdir(path.c_str(), 0755) != 0) {
      return absl::InternalError(absl::StrCat("mkdir ", path, ": ", std::strerror(errno)));
    }
    *dir = path;
    g->procs_.push_back(path + "/cgroup.procs");
  }
  // Memory and swap alike, so that a command cannot swap its way past it.
  if (memory > 0) {
    if (!WriteFile(g->memory_ + "/memory.limit_in_bytes", absl::StrCat(memory))) {
      return absl::InternalError(absl::StrCat("cannot set ", g->memory_, "/memory.limit_in_bytes"));
    }
    WriteFile(g->memory_ + "/memory.memsw.limit_in_bytes", absl::StrCat(memory));
  }
  if (!WriteFile(g->pids_ + "/pids.max", absl::StrCat(processes))) {
    return absl::InternalError(absl::StrCat("cannot set ", g->pids_, "/pids.max"));
  }
  return g;
}

}  // namespace tusk::runner
