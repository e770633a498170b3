#include "pods/podman_runners.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/fs.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/proto_util.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "pods/command.h"
#include "pods/scaling.h"

namespace tusk::pods {
namespace {

using nlohmann::json;

// A pod that ran this long before it ended was not crash-looping.
constexpr absl::Duration kQuickDeath = absl::Seconds(10);

// Kubernetes' names for why a pod cannot be made, from podman's words.
std::string CreateFailureReason(const std::string& err) {
  if (absl::StrContains(err, "invalid reference format")) return "InvalidImageName";
  if (absl::StrContains(err, "image not known") || absl::StrContains(err, "pull") ||
      absl::StrContains(err, "manifest unknown") || absl::StrContains(err, "initializing source")) {
    return "ErrImagePull";
  }
  return "CreateContainerConfigError";
}

std::string LastLines(const std::string& s, size_t n) {
  std::vector<absl::string_view> lines = absl::StrSplit(s, '\n', absl::SkipEmpty());
  if (lines.size() > n) lines.erase(lines.begin(), lines.end() - n);
  return absl::StrJoin(lines, "\n");
}

// The pod's own volume names (see PodOptions::volume_prefix), short enough
// for a Kubernetes name whatever the pod's.
std::string VolumePrefix(const std::string& pod) {
  return absl::StrCat("tusk-", Sha256(pod).Hex().substr(0, 12), "-");
}

// What podman said went wrong: its "Error: ..." line, else its last lines.
std::string PodmanError(const std::string& err) {
  std::vector<absl::string_view> lines = absl::StrSplit(err, '\n', absl::SkipEmpty());
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    absl::string_view line = *it;
    if (absl::ConsumePrefix(&line, "Error: ")) return std::string(line);
  }
  return LastLines(err, 3);
}

}  // namespace

PodmanRunners::~PodmanRunners() { StopLoop(); }

void PodmanRunners::Begin() {
  // Pods an earlier tuskd of this data directory left behind.
  if (auto pods = ListPods(); pods.ok()) {
    std::vector<Slot> left(pods->size());
    std::vector<Slot*> all;
    for (const auto& [pod, containers] : *pods) {
      LOG(INFO) << "removing pod " << pod << " left by an earlier tuskd";
      left[all.size()].pod = pod;
      all.push_back(&left[all.size()]);
    }
    RemovePods(all, "");
  } else {
    LOG(ERROR) << "podman: " << pods.status();
  }
}

void PodmanRunners::End() {
  std::vector<Slot*> all;
  for (auto& [name, p] : pipelines_) {
    for (auto& s : p.slots) {
      if (!s.pod.empty()) all.push_back(&s);
    }
  }
  RemovePods(all, "");
}

absl::StatusOr<std::map<std::string, std::map<std::string, std::string>>>
PodmanRunners::ListPods() {
  const std::string prefix = absl::StrCat("tusk-", options_.owner, "-");
  ASSIGN_OR_RETURN(CommandResult r, RunCommand({options_.podman, "pod", "ps", "--format", "json"},
                                               "", absl::Seconds(30)));
  if (r.exit_code != 0) {
    return absl::UnavailableError(absl::StrCat("podman pod ps: ", LastLines(r.err, 3)));
  }
  json pods = json::parse(r.out, nullptr, false);
  if (!pods.is_array()) return absl::DataLossError("podman pod ps printed something not JSON");
  std::map<std::string, std::map<std::string, std::string>> out;
  for (const json& p : pods) {
    std::string name = p.value("Name", "");
    if (!absl::StartsWith(name, prefix)) continue;
    auto& containers = out[name];
    if (!p.contains("Containers") || !p["Containers"].is_array()) continue;
    for (const json& c : p["Containers"]) {
      std::string cname = c.value("Names", "");
      if (absl::StartsWith(cname, name + "-")) {
        containers[cname.substr(name.size() + 1)] = c.value("Status", "");
      }
    }
  }
  return out;
}

void PodmanRunners::SetTrouble(PipelineState* p, const std::string& reason,
                               const std::string& message) {
  if (p->status.reason() != reason || p->status.message() != message) {
    LOG(WARNING) << "pipeline " << p->status.workload() << ": " << reason << ": " << message;
    *p->status.mutable_since() = NowTimestamp();
  }
  p->status.set_reason(reason);
  p->status.set_message(message);
}

void PodmanRunners::Reconcile() {
  auto pods = ListPods();
  if (!pods.ok()) {
    LOG_EVERY_N(ERROR, 30) << "podman: " << pods.status();
    return;
  }
  const absl::Time now = absl::Now();
  std::vector<dispatcher::RunnerWant> wants = dispatcher_->RunnerWants();
  std::map<std::string, const dispatcher::RunnerWant*> by_name;
  for (const auto& w : wants) by_name[w.pipeline] = &w;

  // Pods that ended, or went away behind our back.
  for (auto& [name, p] : pipelines_) {
    for (auto& s : p.slots) {
      if (s.pod.empty()) continue;
      auto it = pods->find(s.pod);
      bool ended = it == pods->end();
      std::string why = ended ? "its pod was removed" : "";
      if (!ended) {
        for (const char* c : {"user", "runner"}) {
          auto st = it->second.find(c);
          if (st != it->second.end() && (st->second == "exited" || st->second == "stopped")) {
            ended = true;
          }
        }
      }
      if (!ended) continue;
      auto want = by_name.find(name);
      if (want == by_name.end() || want->second->version != s.version) {
        // The pipeline moved on (its runner saw the new version and left).
        RemovePod(&s, "");
        continue;
      }
      bool oom = false;
      if (why.empty()) why = WhyEnded(s.pod, &oom);
      const bool quick = now - s.started < kQuickDeath;
      s.failures = quick ? s.failures + 1 : 1;
      absl::Duration backoff =
          std::min(absl::Seconds(60), absl::Seconds(1) * (1 << std::min(s.failures - 1, 6)));
      s.next_start = now + backoff;
      if (oom) {
        SetTrouble(&p, "OOMKilled", why);
      } else if (s.failures >= 2) {
        SetTrouble(&p, "CrashLoopBackOff",
                   absl::StrCat("back-off ", absl::FormatDuration(backoff),
                                " restarting the runner pod: ", why));
      } else {
        SetTrouble(&p, "Error", why);
      }
      RemovePod(&s, oom ? absl::StrCat("OOMKilled: ", why) : "");
    }
  }

  // Pipelines gone: their pods go.
  for (auto it = pipelines_.begin(); it != pipelines_.end();) {
    if (by_name.count(it->first)) {
      ++it;
      continue;
    }
    for (auto& s : it->second.slots) {
      if (!s.pod.empty()) RemovePod(&s, "");
    }
    it = pipelines_.erase(it);
  }

  for (const auto& want : wants) {
    PipelineState& p = pipelines_[want.pipeline];
    // Another version's pods go first: an old pod must not run new datums.
    int current = 0;
    for (auto& s : p.slots) {
      if (s.pod.empty()) continue;
      if (s.version != want.version) {
        LOG(INFO) << "pipeline " << want.pipeline << " is at version " << want.version
                  << ": removing pod " << s.pod;
        RemovePod(&s, "");
        s.failures = 0;
        s.next_start = now;
      } else {
        ++current;
      }
    }
    const int desired = DesiredReplicas(want, current, options_.idle_grace);
    p.status.set_backend("podman");
    p.status.set_workload(WorkloadName(want.pipeline, want.version));
    p.status.set_desired(desired);
    while (static_cast<int>(p.slots.size()) > desired) {
      Slot& s = p.slots.back();
      if (!s.pod.empty()) {
        LOG(INFO) << "pipeline " << want.pipeline << ": scaling to " << desired
                  << " runners: removing pod " << s.pod;
        RemovePod(&s, "");
      }
      p.slots.pop_back();
    }
    if (static_cast<int>(p.slots.size()) < desired) p.slots.resize(desired);
    int ready = 0;
    for (int i = 0; i < desired; ++i) {
      Slot& s = p.slots[i];
      if (s.pod.empty() && now >= s.next_start) CreatePod(want, i, &s, &p);
      if (!s.pod.empty() && (*pods).count(s.pod)) ++ready;
    }
    p.status.set_ready(ready);
    // Trouble clears once every runner wanted has been up for a while.
    if (!p.status.reason().empty() && ready == desired) {
      bool settled = true;
      for (const auto& s : p.slots) settled = settled && now - s.started >= kQuickDeath;
      if (settled) {
        LOG(INFO) << "pipeline " << want.pipeline << ": runner pods are running again";
        p.status.clear_reason();
        p.status.clear_message();
        p.status.clear_since();
        for (auto& s : p.slots) s.failures = 0;
      }
    }
  }
  std::map<std::string, pps::v1::RunnerStatus> statuses;
  for (const auto& [name, p] : pipelines_) statuses[name] = p.status;
  PublishStatuses(std::move(statuses));
}

void PodmanRunners::CreatePod(const dispatcher::RunnerWant& want, int index, Slot* slot,
                              PipelineState* p) {
  const absl::Time now = absl::Now();
  const std::string pod = absl::StrCat("tusk-", options_.owner, "-", KubeName(want.pipeline), "-v",
                                       want.version, "-", index);
  auto fail = [&](const std::string& reason, const std::string& message) {
    slot->failures++;
    absl::Duration backoff =
        std::min(absl::Seconds(60), absl::Seconds(2) * (1 << std::min(slot->failures - 1, 5)));
    slot->next_start = now + backoff;
    SetTrouble(p, slot->failures >= 2 && reason == "ErrImagePull" ? "ImagePullBackOff" : reason,
               message);
  };
  PodOptions po = options_.pod;
  po.kubernetes = false;
  po.runner_name = pod;
  po.volume_prefix = VolumePrefix(pod);
  if (options_.runner_token) {
    if (p->token.empty()) {
      auto token = options_.runner_token(want.pipeline);
      if (!token.ok()) {
        fail("CreateContainerConfigError",
             absl::StrCat("no runner token: ", token.status().message()));
        return;
      }
      p->token = *token;
    }
    po.token = p->token;
  }
  if (want.spec.transform().image().empty()) {
    fail("InvalidImageName", "transform.image is empty: podman runners run the pipeline's image");
    return;
  }
  auto doc = RunnerPod(want, po, pod);
  if (!doc.ok()) {
    fail("CreateContainerConfigError", std::string(doc.status().message()));
    return;
  }
  // tuskd restarts what ends (as a ReplicaSet would), not podman.
  json j = json::parse(*doc, nullptr, false);
  j["spec"]["restartPolicy"] = "Never";
  const std::string file = absl::StrCat(options_.work_dir, "/", pod, ".json");
  if (auto st = WriteSecretFile(file, j.dump(2)); !st.ok()) {
    fail("CreateContainerConfigError", std::string(st.message()));
    return;
  }
  std::vector<std::string> argv = {options_.podman, "kube", "play"};
  if (!want.spec.transform().network()) argv.insert(argv.end(), {"--network", "none"});
  argv.push_back(file);
  slot->version = want.version;
  slot->started = now;
  auto r = RunCommand(argv, "", absl::Minutes(5));
  if (!r.ok() || r->exit_code != 0) {
    std::string err = r.ok() ? PodmanError(r->err) : std::string(r.status().message());
    Slot gone;
    gone.pod = pod;
    RemovePod(&gone, "");  // what kube play made before it failed
    fail(CreateFailureReason(err), absl::StrCat("podman kube play: ", err));
    return;
  }
  slot->pod = pod;
  LOG(INFO) << "pipeline " << want.pipeline << ": started runner pod " << pod << " (image "
            << want.spec.transform().image() << ")";
}

void PodmanRunners::RemovePod(Slot* slot, const std::string& reason) { RemovePods({slot}, reason); }

void PodmanRunners::RemovePods(const std::vector<Slot*>& slots, const std::string& reason) {
  if (slots.empty()) return;
  // One podman call for all of them: at shutdown there may be many, and
  // each call costs a second or so.
  // --ignore: a pod already gone must not stop the others going (podman
  // 4.3 otherwise stops at the first missing name and exits 0).
  std::vector<std::string> rm = {options_.podman, "pod",    "rm", "--ignore",
                                 "--force",       "--time", "0"};
  std::vector<std::string> volumes = {options_.podman, "volume", "rm", "--force"};
  for (Slot* slot : slots) {
    rm.push_back(slot->pod);
    // podman keeps a kube pod's emptyDirs as named volumes: they go too.
    for (const auto& v : PodVolumes(VolumePrefix(slot->pod))) volumes.push_back(v);
  }
  auto r = RunCommand(rm, "", absl::Minutes(2));
  if (!r.ok() || (r->exit_code != 0 && !absl::StrContains(r->err, "no such pod"))) {
    LOG(WARNING) << "cannot remove pod " << slots[0]->pod << (slots.size() > 1 ? " and others" : "")
                 << ": " << (r.ok() ? LastLines(r->err, 2) : std::string(r.status().message()));
  }
  auto vr = RunCommand(volumes, "", absl::Minutes(2));
  if (!vr.ok() || vr->exit_code != 0) {
    LOG(WARNING) << "cannot remove the volumes of pod " << slots[0]->pod << ": "
                 << (vr.ok() ? LastLines(vr->err, 2) : std::string(vr.status().message()));
  }
  for (Slot* slot : slots) {
    ::unlink(absl::StrCat(options_.work_dir, "/", slot->pod, ".json").c_str());
    // The runner in it is gone: its datum is leased again now.
    dispatcher_->ReleaseRunner(slot->pod, reason);
    slot->pod.clear();
  }
}

std::string PodmanRunners::WhyEnded(const std::string& pod, bool* oom_killed) {
  *oom_killed = false;
  std::vector<std::string> parts;
  auto r =
      RunCommand({options_.podman, "inspect", "--format", "json", pod + "-user", pod + "-runner"},
                 "", absl::Seconds(30));
  if (r.ok() && r->exit_code == 0) {
    json cs = json::parse(r->out, nullptr, false);
    if (cs.is_array()) {
      for (const json& c : cs) {
        if (!c.contains("State") || !c["State"].is_object()) continue;
        const json& st = c["State"];
        std::string status = st.value("Status", "");
        if (status != "exited" && status != "stopped") continue;
        std::string cname = c.value("Name", "");
        if (absl::StartsWith(cname, pod + "-")) cname = cname.substr(pod.size() + 1);
        if (st.value("OOMKilled", false)) {
          *oom_killed = true;
          parts.push_back(
              absl::StrCat("container ", cname, " went over its memory limit and was killed"));
        } else {
          parts.push_back(
              absl::StrCat("container ", cname, " exited with status ", st.value("ExitCode", -1)));
        }
      }
    }
  }
  auto logs =
      RunCommand({options_.podman, "logs", "--tail", "3", pod + "-runner"}, "", absl::Seconds(30));
  if (logs.ok() && logs->exit_code == 0) {
    std::string last = LastLines(logs->out + logs->err, 3);
    if (!last.empty()) parts.push_back(absl::StrCat("runner log: ", last));
  }
  if (parts.empty()) return "its containers ended";
  return absl::StrJoin(parts, "; ");
}

}  // namespace tusk::pods
