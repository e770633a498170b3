#include "pods/pod_spec.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/fs.h"
#include "common/hash.h"
#include "common/json_patch.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace tusk::pods {
namespace {

using nlohmann::json;
using pps::v1::PipelineSpec;
using pps::v1::ResourceSpec;

constexpr size_t kMaxSecretBytes = 1 << 20;  // Kubernetes' own limit on a Secret

// Pachyderm's enum spellings to Kubernetes' (NO_SCHEDULE -> NoSchedule).
std::string KubeEnum(const std::string& v) {
  if (v.empty() || v.find('_') == std::string::npos) {
    if (v == "EXISTS") return "Exists";
    if (v == "EQUAL") return "Equal";
    return v;
  }
  std::string out;
  for (absl::string_view part : absl::StrSplit(v, '_')) {
    if (part.empty()) continue;
    out += absl::AsciiStrToUpper(part.substr(0, 1));
    out += absl::AsciiStrToLower(part.substr(1));
  }
  return out;
}

// A ResourceSpec as a container's requests or limits.
json Resources(const ResourceSpec& r, bool limits) {
  json out = json::object();
  if (!r.memory().empty()) out["memory"] = r.memory();
  if (r.cpu() > 0) {
    // Kubernetes quantities: millicores keep it exact.
    out["cpu"] = absl::StrCat(static_cast<int64_t>(std::llround(r.cpu() * 1000)), "m");
  }
  if (!r.disk().empty()) out["ephemeral-storage"] = r.disk();
  // Extended resources (GPUs) are set as limits; requests follow them.
  if (limits && r.gpu().number() > 0) out[r.gpu().type()] = absl::StrCat(r.gpu().number());
  return out;
}

json ContainerResources(const ResourceSpec& requests, const ResourceSpec& limits) {
  json out = json::object();
  json req = Resources(requests, false);
  json lim = Resources(limits, true);
  if (!req.empty()) out["requests"] = req;
  if (!lim.empty()) out["limits"] = lim;
  return out;
}

json Restricted() {
  return {{"allowPrivilegeEscalation", false},
          {"readOnlyRootFilesystem", true},
          {"runAsNonRoot", true},
          {"capabilities", {{"drop", json::array({"ALL"})}}}};
}

json Mount(const std::string& name, const std::string& path, bool read_only = false) {
  json m = {{"name", name}, {"mountPath", path}};
  if (read_only) m["readOnly"] = true;
  return m;
}

json EmptyDir(const std::string& name) { return {{"name", name}, {"emptyDir", json::object()}}; }

constexpr const char* kEmptyDirs[] = {"pfs", "tusk-bin", "tusk-run", "user-tmp", "runner-tmp"};

}  // namespace

PodUser UserOf(const PipelineSpec& spec) {
  PodUser u;
  const std::string& user = spec.transform().user();
  if (user.empty()) return u;
  std::vector<std::string> ids = absl::StrSplit(user, ':');
  // The spec was checked (NormalizePipelineSpec): numbers, uid not 0.
  if (absl::SimpleAtoi(ids[0], &u.uid)) u.gid = u.uid;
  if (ids.size() == 2) absl::SimpleAtoi(ids[1], &u.gid);
  return u;
}

std::string KubeName(const std::string& pipeline) {
  std::string out;
  for (char c : pipeline) {
    out.push_back(c == '_' ? '-' : absl::ascii_tolower(c));
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  while (!out.empty() && out.front() == '-') out.erase(out.begin());
  if (out.size() > 40) out.resize(40);
  if (out != pipeline || out.empty()) {
    // Two pipelines that differ only in case or '_' get different names.
    out = absl::StrCat(out.empty() ? "p" : out, "-", Sha256(pipeline).Hex().substr(0, 6));
  }
  return out;
}

std::string WorkloadName(const std::string& pipeline, uint64_t version) {
  return absl::StrCat("tusk-", KubeName(pipeline), "-v", version);
}

std::string TokenSecretName(const std::string& pipeline) {
  return absl::StrCat("tusk-runner-", KubeName(pipeline));
}

std::string PipelineLabelValue(const std::string& pipeline) {
  bool ok = !pipeline.empty() && absl::ascii_isalnum(pipeline.front()) &&
            absl::ascii_isalnum(pipeline.back());
  return ok ? pipeline : absl::StrCat("h-", Sha256(pipeline).Hex().substr(0, 16));
}

std::map<std::string, std::string> RunnerLabels(const dispatcher::RunnerWant& want) {
  std::map<std::string, std::string> labels = {{kNameLabel, kRunnerName},
                                               {kManagedByLabel, kManagedBy},
                                               {kPipelineLabel, PipelineLabelValue(want.pipeline)},
                                               {kVersionLabel, absl::StrCat(want.version)}};
  // The spec's metadata.labels, where they do not clash with tusk's own.
  for (const auto& [k, v] : want.spec.metadata().labels()) labels.emplace(k, v);
  return labels;
}

// The spec's metadata.annotations, added to `annotations` (tusk's win).
void AddUserAnnotations(const dispatcher::RunnerWant& want, json* annotations) {
  for (const auto& [k, v] : want.spec.metadata().annotations()) {
    if (!annotations->contains(k)) (*annotations)[k] = v;
  }
}

// 40 hex digits: podman refuses annotation values over 63 characters.
std::vector<std::string> PodVolumes(const std::string& volume_prefix) {
  std::vector<std::string> out;
  for (const char* v : kEmptyDirs) out.push_back(volume_prefix + v);
  return out;
}

std::string SpecHash(const std::string& pod_spec_json) {
  return Sha256(pod_spec_json).Hex().substr(0, 40);
}

absl::StatusOr<std::string> RunnerPodSpec(const dispatcher::RunnerWant& want,
                                          const PodOptions& options) {
  const PipelineSpec& spec = want.spec;
  const pps::v1::Transform& t = spec.transform();
  const PodUser user = UserOf(spec);

  const std::string& vp = options.volume_prefix;
  json volumes = json::array();
  for (const std::string& v : PodVolumes(vp)) volumes.push_back(EmptyDir(v));

  // The user's container: the agent as entrypoint, the secrets it asks for.
  json user_env = json::array();
  json user_mounts =
      json::array({Mount(vp + "pfs", "/pfs"), Mount(vp + "tusk-bin", "/tusk/bin", true),
                   Mount(vp + "tusk-run", "/tusk/run"), Mount(vp + "user-tmp", "/tmp")});
  for (int i = 0; i < t.secrets_size(); ++i) {
    const pps::v1::SecretMount& s = t.secrets(i);
    if (!s.mount_path().empty()) {
      const std::string vol = absl::StrCat(vp, "secret-", i);
      json v = {{"name", vol}};
      if (options.kubernetes) {
        v["secret"] = {{"secretName", s.name()}};
        if (!s.key().empty()) {
          v["secret"]["items"] = json::array({{{"key", s.key()}, {"path", s.key()}}});
        }
      } else {
        v["hostPath"] = {{"path", absl::StrCat(options.secrets_dir, "/", s.name())},
                         {"type", "Directory"}};
      }
      volumes.push_back(v);
      user_mounts.push_back(Mount(vol, s.mount_path(), true));
    }
    if (!s.env_var().empty()) {
      if (options.kubernetes) {
        user_env.push_back(
            {{"name", s.env_var()},
             {"valueFrom", {{"secretKeyRef", {{"name", s.name()}, {"key", s.key()}}}}}});
      } else {
        const std::string path = absl::StrCat(options.secrets_dir, "/", s.name(), "/", s.key());
        if (options.secrets_dir.empty()) {
          return absl::FailedPreconditionError(absl::StrCat(
              "transform.secrets: secret ", s.name(),
              " is asked for, but tuskd has no --secrets-dir (the directory of NAME/KEY files "
              "that local and podman runners read secrets from)"));
        }
        auto value = ReadSmallFile(path, kMaxSecretBytes);
        if (!value.ok()) {
          return absl::FailedPreconditionError(absl::StrCat("transform.secrets: key ", s.key(),
                                                            " of secret ", s.name(), ": ",
                                                            value.status().message()));
        }
        user_env.push_back({{"name", s.env_var()}, {"value", *value}});
      }
    }
  }
  json user_container = {
      {"name", "user"},
      {"image", t.image()},
      {"imagePullPolicy", options.image_pull_policy},
      {"command", json::array({"/tusk/bin/tusk-exec-agent", "--socket", kAgentSocket})},
      {"volumeMounts", user_mounts},
      {"securityContext", Restricted()},
      {"resources", ContainerResources(spec.resource_requests(), spec.resource_limits())}};
  if (!user_env.empty()) user_container["env"] = user_env;
  if (!t.working_dir().empty()) user_container["workingDir"] = t.working_dir();

  // The runner: leases for this pipeline version, its token, tuskd's address.
  json runner_env = json::array();
  if (!options.token_secret.empty()) {
    runner_env.push_back(
        {{"name", "TUSK_TOKEN"},
         {"valueFrom", {{"secretKeyRef", {{"name", options.token_secret}, {"key", "token"}}}}}});
  } else if (!options.token.empty()) {
    runner_env.push_back({{"name", "TUSK_TOKEN"}, {"value", options.token}});
  }
  std::string runner_name = options.runner_name;
  if (runner_name.empty()) {
    runner_env.push_back({{"name", "TUSK_RUNNER_NAME"},
                          {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}});
    runner_name = "$(TUSK_RUNNER_NAME)";  // expanded by the kubelet
  }
  json runner_cmd = json::array(
      {"/usr/local/bin/tusk-runner", "--tuskd", options.tuskd_address, "--pipeline", want.pipeline,
       "--pipeline-version", absl::StrCat(want.version), "--name", runner_name, "--exec-agent",
       kAgentSocket, "--pfs-dir", "/pfs", "--work-dir", "/tmp/runner", "--sandbox", "none"});
  if (!options.tls_ca_secret.empty()) {
    runner_cmd.push_back("--tls-ca");
    runner_cmd.push_back(absl::StrCat(kTlsCaDir, "/ca.crt"));
  }
  for (const auto& a : options.runner_args) runner_cmd.push_back(a);
  json runner_mounts = json::array({Mount(vp + "pfs", "/pfs"), Mount(vp + "tusk-run", "/tusk/run"),
                                    Mount(vp + "runner-tmp", "/tmp")});
  if (!options.tuskd_socket_dir.empty()) {
    volumes.push_back({{"name", vp + "tuskd-socket"},
                       {"hostPath", {{"path", options.tuskd_socket_dir}, {"type", "Directory"}}}});
    runner_mounts.push_back(Mount(vp + "tuskd-socket", kTuskdSocketDir));
  }
  if (!options.tls_ca_secret.empty()) {
    json items = json::array({{{"key", options.tls_ca_key}, {"path", "ca.crt"}}});
    json secret = {{"secretName", options.tls_ca_secret}, {"items", items}};
    volumes.push_back({{"name", vp + "tuskd-ca"}, {"secret", secret}});
    runner_mounts.push_back(Mount(vp + "tuskd-ca", kTlsCaDir, true));
  }
  json runner_container = {{"name", "runner"},
                           {"image", options.runner_image},
                           {"imagePullPolicy", options.image_pull_policy},
                           {"command", runner_cmd},
                           {"volumeMounts", runner_mounts},
                           {"securityContext", Restricted()},
                           {"resources", ContainerResources(spec.sidecar_resource_requests(),
                                                            spec.sidecar_resource_limits())}};
  if (!runner_env.empty()) runner_container["env"] = runner_env;

  json init = {{"name", "tusk-init"},
               {"image", options.runner_image},
               {"imagePullPolicy", options.image_pull_policy},
               {"command",
                json::array({"cp", "/usr/local/bin/tusk-exec-agent", "/tusk/bin/tusk-exec-agent"})},
               {"volumeMounts", json::array({Mount(vp + "tusk-bin", "/tusk/bin")})},
               {"securityContext", Restricted()}};

  json pod = {{"initContainers", json::array({init})},
              {"containers", json::array({user_container, runner_container})},
              {"volumes", volumes},
              {"restartPolicy", "Always"},
              {"terminationGracePeriodSeconds", 10},
              {"enableServiceLinks", false},
              {"automountServiceAccountToken", false},
              {"securityContext",
               {{"runAsNonRoot", true},
                {"runAsUser", user.uid},
                {"runAsGroup", user.gid},
                {"fsGroup", user.gid},
                {"seccompProfile", {{"type", "RuntimeDefault"}}}}}};
  if (options.kubernetes) pod["serviceAccountName"] = options.service_account;
  if (t.image_pull_secrets_size() > 0) {
    json secrets = json::array();
    for (const auto& s : t.image_pull_secrets()) secrets.push_back({{"name", s}});
    pod["imagePullSecrets"] = secrets;
  }
  json selector = json::object();
  for (const auto& [k, v] : spec.node_selector()) selector[k] = v;
  for (const auto& [k, v] : spec.scheduling_spec().node_selector()) selector[k] = v;
  if (!selector.empty()) pod["nodeSelector"] = selector;
  if (!spec.scheduling_spec().priority_class_name().empty()) {
    pod["priorityClassName"] = spec.scheduling_spec().priority_class_name();
  }
  if (spec.tolerations_size() > 0) {
    json tolerations = json::array();
    for (const auto& tol : spec.tolerations()) {
      json j = json::object();
      if (!tol.key().empty()) j["key"] = tol.key();
      if (!tol.operator_().empty()) j["operator"] = KubeEnum(tol.operator_());
      if (!tol.value().empty()) j["value"] = tol.value();
      if (!tol.effect().empty()) j["effect"] = KubeEnum(tol.effect());
      if (tol.toleration_seconds() > 0) j["tolerationSeconds"] = tol.toleration_seconds();
      tolerations.push_back(j);
    }
    pod["tolerations"] = tolerations;
  }
  std::string out = pod.dump();
  if (!spec.pod_spec().empty()) {
    ASSIGN_OR_RETURN(out, ApplyMergePatch(out, spec.pod_spec()));
  }
  if (!spec.pod_patch().empty()) {
    ASSIGN_OR_RETURN(out, ApplyJsonPatch(out, spec.pod_patch()));
  }
  return out;
}

absl::StatusOr<std::string> RunnerDeployment(const dispatcher::RunnerWant& want,
                                             const PodOptions& options, int replicas) {
  ASSIGN_OR_RETURN(std::string pod_spec, RunnerPodSpec(want, options));
  json labels = json::object();
  for (const auto& [k, v] : RunnerLabels(want)) labels[k] = v;
  json annotations = {{kPipelineAnnotation, want.pipeline},
                      {kSpecHashAnnotation, SpecHash(pod_spec)}};
  AddUserAnnotations(want, &annotations);
  json selector = {{kPipelineLabel, labels[kPipelineLabel]},
                   {kVersionLabel, labels[kVersionLabel]},
                   {kNameLabel, kRunnerName}};
  json d = {{"apiVersion", "apps/v1"},
            {"kind", "Deployment"},
            {"metadata",
             {{"name", WorkloadName(want.pipeline, want.version)},
              {"labels", labels},
              {"annotations", annotations}}},
            {"spec",
             {{"replicas", replicas},
              {"selector", {{"matchLabels", selector}}},
              // A runner that goes away hands its datum back at once: replacing
              // pods one by one is all a rollout needs.
              {"strategy", {{"type", "RollingUpdate"}}},
              {"template",
               {{"metadata", {{"labels", labels}, {"annotations", annotations}}},
                {"spec", json::parse(pod_spec, nullptr, false)}}}}}};
  return d.dump();
}

absl::StatusOr<std::string> RunnerPod(const dispatcher::RunnerWant& want, const PodOptions& options,
                                      const std::string& name) {
  ASSIGN_OR_RETURN(std::string pod_spec, RunnerPodSpec(want, options));
  json labels = json::object();
  for (const auto& [k, v] : RunnerLabels(want)) labels[k] = v;
  json annotations = {{kPipelineAnnotation, want.pipeline},
                      {kSpecHashAnnotation, SpecHash(pod_spec)}};
  AddUserAnnotations(want, &annotations);
  json p = {{"apiVersion", "v1"},
            {"kind", "Pod"},
            {"metadata", {{"name", name}, {"labels", labels}, {"annotations", annotations}}},
            {"spec", json::parse(pod_spec, nullptr, false)}};
  return p.dump();
}

}  // namespace tusk::pods
