#include "pods/kube_runners.h"

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/proto_util.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "pods/scaling.h"

namespace tusk::pods {
namespace {

using nlohmann::json;

// Waiting reasons that mean the pod will not run without a change.
constexpr const char* kTroubleReasons[] = {
    "ImagePullBackOff",           "ErrImagePull",      "InvalidImageName",
    "CreateContainerConfigError", "CrashLoopBackOff",  "CreateContainerError",
    "ErrImageNeverPull",          "RunContainerError", "PreCreateHookError",
};
// An OOM kill this recent is still news.
constexpr absl::Duration kOomMemory = absl::Minutes(5);

std::string Selector() { return absl::StrCat("labelSelector=", kNameLabel, "%3D", kRunnerName); }

std::string Get(const json& j, std::initializer_list<const char*> path) {
  const json* cur = &j;
  for (const char* key : path) {
    if (!cur->is_object() || !cur->contains(key)) return "";
    cur = &(*cur)[key];
  }
  if (cur->is_string()) return cur->get<std::string>();
  if (cur->is_number_integer()) return absl::StrCat(cur->get<int64_t>());
  return "";
}

int64_t GetInt(const json& j, std::initializer_list<const char*> path) {
  int64_t v = 0;
  absl::SimpleAtoi(Get(j, path), &v);
  return v;
}

const json& Items(const json& list) {
  static const json kEmpty = json::array();
  return list.is_object() && list.contains("items") && list["items"].is_array() ? list["items"]
                                                                                : kEmpty;
}

absl::StatusOr<json> ParseJson(const std::string& body, const std::string& what) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return absl::DataLossError(absl::StrCat(what, ": not JSON"));
  return j;
}

// The container's status named `name` in the pod, or null.
const json* ContainerStatus(const json& pod, const std::string& name) {
  for (const char* key : {"containerStatuses", "initContainerStatuses"}) {
    if (!pod.contains("status") || !pod["status"].contains(key)) continue;
    for (const json& cs : pod["status"][key]) {
      if (cs.value("name", "") == name) return &cs;
    }
  }
  return nullptr;
}

absl::Time ParseTime(const std::string& rfc3339) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, rfc3339, &t, &err)) return absl::InfinitePast();
  return t;
}

}  // namespace

struct KubeRunners::Listing {
  std::map<std::string, json> deployments;  // by name
  std::vector<json> pods;
  std::set<std::string> secrets;
};

KubeRunners::~KubeRunners() { StopLoop(); }

void KubeRunners::Begin() { LOG(INFO) << "kubernetes runners in namespace " << client_->ns(); }

void KubeRunners::Pass() {
  if (auto st = Reconcile(); !st.ok()) {
    LOG_EVERY_N(WARNING, 10) << "kubernetes: " << st;
  }
}

absl::Status KubeRunners::Reconcile() {
  const std::string ns = client_->ns();
  // The cluster's objects first, then the index's pipelines: a Deployment
  // made after this listing cannot be taken for an orphan.
  Listing cluster;
  ASSIGN_OR_RETURN(std::string body,
                   client_->Do("GET", absl::StrCat("/apis/apps/v1/namespaces/", ns, "/deployments?",
                                                   Selector())));
  ASSIGN_OR_RETURN(json deployments, ParseJson(body, "the runner Deployments"));
  for (const json& d : Items(deployments)) cluster.deployments[Get(d, {"metadata", "name"})] = d;
  ASSIGN_OR_RETURN(
      body, client_->Do("GET", absl::StrCat("/api/v1/namespaces/", ns, "/pods?", Selector())));
  ASSIGN_OR_RETURN(json pods, ParseJson(body, "the runner pods"));
  for (const json& p : Items(pods)) cluster.pods.push_back(p);
  ASSIGN_OR_RETURN(
      body, client_->Do("GET", absl::StrCat("/api/v1/namespaces/", ns, "/secrets?", Selector())));
  ASSIGN_OR_RETURN(json secrets, ParseJson(body, "the runner Secrets"));
  std::map<std::string, std::string> secret_pipeline;
  for (const json& s : Items(secrets)) {
    cluster.secrets.insert(Get(s, {"metadata", "name"}));
    secret_pipeline[Get(s, {"metadata", "name"})] =
        Get(s, {"metadata", "annotations", kPipelineAnnotation});
  }

  std::vector<dispatcher::RunnerWant> wants = dispatcher_->RunnerWants();
  std::map<std::string, const dispatcher::RunnerWant*> by_name;
  for (const auto& w : wants) by_name[w.pipeline] = &w;

  // Orphans (pipelines deleted, maybe while tuskd was down) and old versions.
  for (const auto& [name, d] : cluster.deployments) {
    const std::string pipeline = Get(d, {"metadata", "annotations", kPipelineAnnotation});
    auto want = by_name.find(pipeline);
    const bool current = want != by_name.end() && Get(d, {"metadata", "labels", kVersionLabel}) ==
                                                      absl::StrCat(want->second->version);
    if (current) continue;
    LOG(INFO) << "deleting Deployment " << name << " ("
              << (want == by_name.end() ? "its pipeline " + pipeline + " is gone"
                                        : "pipeline " + pipeline + " is at version " +
                                              absl::StrCat(want->second->version))
              << ")";
    auto st =
        client_->Do("DELETE", absl::StrCat("/apis/apps/v1/namespaces/", ns, "/deployments/", name),
                    R"({"propagationPolicy": "Background"})");
    if (!st.ok() && !absl::IsNotFound(st.status())) LOG(WARNING) << st.status();
  }
  for (const auto& [secret, pipeline] : secret_pipeline) {
    if (by_name.count(pipeline)) continue;
    LOG(INFO) << "deleting Secret " << secret << " (its pipeline " << pipeline << " is gone)";
    auto st = client_->Do("DELETE", absl::StrCat("/api/v1/namespaces/", ns, "/secrets/", secret));
    if (!st.ok() && !absl::IsNotFound(st.status())) LOG(WARNING) << st.status();
  }

  int budget = options_.changes_per_pass;
  for (const auto& want : wants) {
    PipelineState& p = pipelines_[want.pipeline];
    p.status.set_backend("kubernetes");
    p.status.set_workload(WorkloadName(want.pipeline, want.version));
    absl::Status st =
        options_.runner_token ? EnsureTokenSecret(want.pipeline, cluster) : absl::OkStatus();
    if (st.ok()) st = Apply(want, cluster, &budget);
    WatchPods(want, cluster, &p);
    if (!st.ok()) {
      // The Deployment could not be made: that is the pipeline's trouble.
      if (p.status.reason() != "CreateContainerConfigError")
        *p.status.mutable_since() = NowTimestamp();
      p.status.set_reason("CreateContainerConfigError");
      p.status.set_message(std::string(st.message()));
      LOG_EVERY_N(WARNING, 10) << "pipeline " << want.pipeline << ": " << st;
    }
  }
  for (auto it = pipelines_.begin(); it != pipelines_.end();) {
    it = by_name.count(it->first) ? std::next(it) : pipelines_.erase(it);
  }
  std::map<std::string, pps::v1::RunnerStatus> statuses;
  for (const auto& [name, p] : pipelines_) statuses[name] = p.status;
  PublishStatuses(std::move(statuses));
  return absl::OkStatus();
}

absl::Status KubeRunners::EnsureTokenSecret(const std::string& pipeline, const Listing& cluster) {
  const std::string name = TokenSecretName(pipeline);
  if (cluster.secrets.count(name)) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::string token, options_.runner_token(pipeline));
  json labels = {{kNameLabel, kRunnerName},
                 {kManagedByLabel, kManagedBy},
                 {kPipelineLabel, PipelineLabelValue(pipeline)}};
  json secret = {
      {"apiVersion", "v1"},
      {"kind", "Secret"},
      {"metadata",
       {{"name", name}, {"labels", labels}, {"annotations", {{kPipelineAnnotation, pipeline}}}}},
      {"type", "Opaque"},
      {"data", {{"token", absl::Base64Escape(token)}}}};
  auto st = client_->Do("POST", absl::StrCat("/api/v1/namespaces/", client_->ns(), "/secrets"),
                        secret.dump());
  if (!st.ok() && !absl::IsAlreadyExists(st.status())) return st.status();
  LOG(INFO) << "made Secret " << name << " with the runner token of pipeline " << pipeline;
  return absl::OkStatus();
}

absl::Status KubeRunners::Apply(const dispatcher::RunnerWant& want, const Listing& cluster,
                                int* budget) {
  const std::string ns = client_->ns();
  const std::string name = WorkloadName(want.pipeline, want.version);
  auto existing = cluster.deployments.find(name);
  const bool exists = existing != cluster.deployments.end();
  const int current = exists ? static_cast<int>(GetInt(existing->second, {"spec", "replicas"})) : 0;
  const int desired = DesiredReplicas(want, current, options_.idle_grace);
  PipelineState& p = pipelines_[want.pipeline];
  p.status.set_desired(desired);
  PodOptions po = options_.pod;
  po.kubernetes = true;
  if (options_.runner_token) po.token_secret = TokenSecretName(want.pipeline);
  if (!exists) {
    if (desired == 0 || *budget <= 0) return absl::OkStatus();  // idle pipelines hold nothing
    ASSIGN_OR_RETURN(std::string doc, RunnerDeployment(want, po, desired));
    --*budget;
    RETURN_IF_ERROR(
        client_->Do("POST", absl::StrCat("/apis/apps/v1/namespaces/", ns, "/deployments"), doc)
            .status());
    LOG(INFO) << "pipeline " << want.pipeline << ": made Deployment " << name << " with " << desired
              << " replicas (image " << want.spec.transform().image() << ")";
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(std::string doc, RunnerDeployment(want, po, desired));
  json d = json::parse(doc, nullptr, false);
  const std::string have =
      Get(existing->second, {"spec", "template", "metadata", "annotations", kSpecHashAnnotation});
  const std::string want_hash =
      Get(d, {"spec", "template", "metadata", "annotations", kSpecHashAnnotation});
  if (have != want_hash) {
    if (*budget <= 0) return absl::OkStatus();
    --*budget;
    d["metadata"]["resourceVersion"] = Get(existing->second, {"metadata", "resourceVersion"});
    RETURN_IF_ERROR(client_
                        ->Do("PUT",
                             absl::StrCat("/apis/apps/v1/namespaces/", ns, "/deployments/", name),
                             d.dump())
                        .status());
    LOG(INFO) << "pipeline " << want.pipeline << ": replaced the pod template of " << name;
    return absl::OkStatus();
  }
  if (current != desired) {
    RETURN_IF_ERROR(
        client_
            ->Do("PATCH",
                 absl::StrCat("/apis/apps/v1/namespaces/", ns, "/deployments/", name, "/scale"),
                 absl::StrCat(R"({"spec": {"replicas": )", desired, "}}"),
                 "application/merge-patch+json")
            .status());
    LOG(INFO) << "pipeline " << want.pipeline << ": scaled " << name << " from " << current
              << " to " << desired << " (" << want.work << " datums queued or running)";
  }
  return absl::OkStatus();
}

void KubeRunners::WatchPods(const dispatcher::RunnerWant& want, const Listing& cluster,
                            PipelineState* p) {
  const std::string label = PipelineLabelValue(want.pipeline);
  const std::string version = absl::StrCat(want.version);
  const absl::Time now = absl::Now();
  std::string reason, message;
  int ready = 0;
  std::set<std::string> present;
  for (const json& pod : cluster.pods) {
    if (Get(pod, {"metadata", "labels", kPipelineLabel}) != label) continue;
    const std::string name = Get(pod, {"metadata", "name"});
    const std::string uid = Get(pod, {"metadata", "uid"});
    const std::string phase = Get(pod, {"status", "phase"});
    const bool gone = !Get(pod, {"metadata", "deletionTimestamp"}).empty() || phase == "Failed" ||
                      phase == "Succeeded";
    const json* runner = ContainerStatus(pod, "runner");
    const json* user = ContainerStatus(pod, "user");
    const int runner_restarts = runner ? static_cast<int>(GetInt(*runner, {"restartCount"})) : 0;
    const int user_restarts = user ? static_cast<int>(GetInt(*user, {"restartCount"})) : 0;
    std::string oom;
    for (const char* c : {"user", "runner"}) {
      const json* cs = ContainerStatus(pod, c);
      if (cs == nullptr) continue;
      for (const char* state : {"state", "lastState"}) {
        if (Get(*cs, {state, "terminated", "reason"}) == "OOMKilled" &&
            now - ParseTime(Get(*cs, {state, "terminated", "finishedAt"})) < kOomMemory) {
          oom = absl::StrCat("container ", c, " of pod ", name,
                             " went over its memory limit and was killed");
        }
      }
    }
    if (Get(pod, {"metadata", "labels", kVersionLabel}) == version && !gone) {
      present.insert(name);
      if (pod.contains("status") && pod["status"].contains("conditions")) {
        for (const json& c : pod["status"]["conditions"]) {
          if (c.value("type", "") == "PodScheduled" && c.value("status", "") == "False" &&
              c.value("reason", "") == "Unschedulable") {
            reason = "Unschedulable";
            message = c.value("message", "");
          }
          if (c.value("type", "") == "Ready" && c.value("status", "") == "True") ++ready;
        }
      }
      for (const char* c : {"tusk-init", "user", "runner"}) {
        const json* cs = ContainerStatus(pod, c);
        if (cs == nullptr) continue;
        const std::string waiting = Get(*cs, {"state", "waiting", "reason"});
        for (const char* t : kTroubleReasons) {
          if (waiting == t) {
            reason = waiting;
            message = absl::StrCat("container ", c, " of pod ", name, ": ",
                                   Get(*cs, {"state", "waiting", "message"}));
          }
        }
      }
      if (reason.empty() && !oom.empty()) {
        reason = "OOMKilled";
        message = oom;
      }
    }
    auto seen = p->pods.find(name);
    if (gone) {
      if (seen != p->pods.end()) {
        LOG(INFO) << "runner pod " << name << " is "
                  << (phase == "Failed"      ? "failed"
                      : phase == "Succeeded" ? "done"
                                             : "going away")
                  << ": its datum goes back to the queue";
        dispatcher_->ReleaseRunner(name, oom.empty() ? "" : "OOMKilled: " + oom);
        p->pods.erase(seen);
      }
      continue;
    }
    if (seen != p->pods.end() && seen->second.uid == uid) {
      // The runner restarted (its lease died with it), or the user's
      // container did (the command with it).
      if (runner_restarts > seen->second.runner_restarts ||
          user_restarts > seen->second.user_restarts) {
        dispatcher_->ReleaseRunner(name, oom.empty() ? "" : "OOMKilled: " + oom);
      }
    }
    p->pods[name] = PodSeen{uid, runner_restarts, user_restarts};
  }
  for (auto it = p->pods.begin(); it != p->pods.end();) {
    if (present.count(it->first)) {
      ++it;
      continue;
    }
    bool listed = false;
    for (const json& pod : cluster.pods)
      listed = listed || Get(pod, {"metadata", "name"}) == it->first;
    if (listed) {
      ++it;  // another version's pod, still going
      continue;
    }
    LOG(INFO) << "runner pod " << it->first << " is gone: its datum goes back to the queue";
    dispatcher_->ReleaseRunner(it->first);
    it = p->pods.erase(it);
  }
  p->status.set_ready(ready);
  if (p->status.reason() != reason) {
    if (!reason.empty()) {
      LOG(WARNING) << "pipeline " << want.pipeline << ": " << reason << ": " << message;
      *p->status.mutable_since() = NowTimestamp();
    } else {
      p->status.clear_since();
    }
  }
  p->status.set_reason(reason);
  p->status.set_message(message);
}

}  // namespace tusk::pods
