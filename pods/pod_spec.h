#pragma once

// The runner pod of a pipeline version: one Kubernetes pod spec that both
// the kubernetes backend (as a Deployment's template) and the podman backend
// (`podman kube play`) run. runner/README.md explains its shape:
//
//   init container  tusk-init  (the tusk image) copies the static
//                              tusk-exec-agent into the tusk-bin volume;
//   container       user       (transform.image) runs the agent as its
//                              entrypoint; the datum's command runs there;
//   container       runner     (the tusk image) tusk-runner --exec-agent:
//                              leases, materialises /pfs, uploads /pfs/out.
//
// Both containers run as the same user that is not root (transform.user, by
// default 65532), with no capabilities, no privilege escalation and a
// read-only root file system; /pfs, /tmp and the agent's socket are
// emptyDirs. The runner's token reaches the runner container only; the
// user's container gets the secrets its spec names and nothing of tusk's.
//
// Thread safety: the functions are pure.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "dispatcher/runner_backend.h"

namespace tusk::pods {

// Labels and annotations on every object tuskd makes for runners.
inline constexpr char kManagedByLabel[] = "app.kubernetes.io/managed-by";
inline constexpr char kManagedBy[] = "tuskd";
inline constexpr char kNameLabel[] = "app.kubernetes.io/name";
inline constexpr char kRunnerName[] = "tusk-runner";
inline constexpr char kPipelineLabel[] = "tusk.io/pipeline";  // PipelineLabelValue
inline constexpr char kVersionLabel[] = "tusk.io/pipeline-version";
inline constexpr char kPipelineAnnotation[] = "tusk.io/pipeline";  // the exact name
inline constexpr char kSpecHashAnnotation[] = "tusk.io/spec-hash";

// Where the pod's volumes are mounted.
inline constexpr char kAgentSocket[] = "/tusk/run/agent.sock";
inline constexpr char kTuskdSocketDir[] = "/tusk/tuskd";
inline constexpr char kTlsCaDir[] = "/tusk/tls";

struct PodOptions {
  // The tusk image: tusk-runner and tusk-exec-agent (scripts/build-image.sh).
  std::string runner_image = "localhost/tusk:dev";
  std::string image_pull_policy = "IfNotPresent";
  // What the runner dials: host:port (kubernetes: tuskd's Service), or
  // unix:PATH under kTuskdSocketDir (podman: tuskd_socket_dir mounted there).
  std::string tuskd_address;
  std::string tuskd_socket_dir;  // podman: a host directory with tuskd's socket
  // The runner's token: from this Secret's key "token" (kubernetes), or this
  // value (podman; the pod's YAML is kept private). Neither: auth is off.
  std::string token_secret;
  std::string token;
  // The runner's name: kubernetes gives each pod's name through the downward
  // API; podman names each pod itself.
  std::string runner_name;  // empty: the pod's name (kubernetes)
  std::string service_account = "tusk-runner";
  // transform.secrets: kubernetes reads Secrets; the local backends read
  // the file KEY in secrets_dir/NAME, given to the pod as a host directory
  // (mount_path) or a value (env_var).
  bool kubernetes = true;
  std::string secrets_dir;
  // Prefixed to the pod's volume names. podman 4.3 makes an emptyDir a
  // named volume shared by every pod that uses the name, so each podman pod
  // needs names of its own (PodVolumes lists them for removal).
  std::string volume_prefix;
  // Kubernetes, tuskd serving TLS: the Secret and key of the CA bundle the
  // runners trust, mounted in the runner container alone (at kTlsCaDir).
  std::string tls_ca_secret;
  std::string tls_ca_key;
  // Extra arguments for tusk-runner.
  std::vector<std::string> runner_args;
};

// The user and group pods run as: transform.user, or 65532:65532.
struct PodUser {
  int64_t uid = 65532;
  int64_t gid = 65532;
};
PodUser UserOf(const pps::v1::PipelineSpec& spec);

// A Kubernetes-safe form of a pipeline name for object names: lowercase,
// '-' for '_', with a short hash of the exact name when that changed it.
std::string KubeName(const std::string& pipeline);
// The workload of a pipeline version: tusk-<KubeName>-v<version>.
std::string WorkloadName(const std::string& pipeline, uint64_t version);
// The runner token's Secret for a pipeline: tusk-runner-<KubeName>.
std::string TokenSecretName(const std::string& pipeline);
// The pipeline's name as a label value (itself when valid, else a hash).
std::string PipelineLabelValue(const std::string& pipeline);

// The runner pod's spec (a Kubernetes PodSpec as JSON) for `want`, with its
// pod_patch applied. InvalidArgument if the patch does not apply or a secret
// file (podman) is missing.
absl::StatusOr<std::string> RunnerPodSpec(const dispatcher::RunnerWant& want,
                                          const PodOptions& options);

// The names of the pod's emptyDir volumes with `volume_prefix`.
std::vector<std::string> PodVolumes(const std::string& volume_prefix);

// The labels of the pods (and workload) of `want`.
std::map<std::string, std::string> RunnerLabels(const dispatcher::RunnerWant& want);

// The Deployment (apps/v1, JSON) of `want` with `replicas`, its template
// annotated with the hash of the pod spec (kSpecHashAnnotation).
absl::StatusOr<std::string> RunnerDeployment(const dispatcher::RunnerWant& want,
                                             const PodOptions& options, int replicas);

// A Pod (v1, JSON) named `name` from the pod spec (podman kube play).
absl::StatusOr<std::string> RunnerPod(const dispatcher::RunnerWant& want, const PodOptions& options,
                                      const std::string& name);

// A pod spec's SHA-256 (40 hex digits), what a workload's annotation holds.
std::string SpecHash(const std::string& pod_spec_json);

}  // namespace tusk::pods
