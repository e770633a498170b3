#include "pods/pod_spec.h"

#include <filesystem>
#include <fstream>

#include "dispatcher/spec.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "pods/scaling.h"

namespace tusk::pods {
namespace {

using ::nlohmann::json;
using ::testing::HasSubstr;

dispatcher::RunnerWant Want(const std::string& spec_json, uint64_t version = 3) {
  dispatcher::RunnerWant w;
  auto st = google::protobuf::util::JsonStringToMessage(spec_json, &w.spec);
  EXPECT_TRUE(st.ok()) << st.message();
  auto norm = dispatcher::NormalizePipelineSpec(&w.spec);
  EXPECT_TRUE(norm.ok()) << norm.message();
  w.pipeline = w.spec.pipeline().name();
  w.version = version;
  w.ceiling = static_cast<int>(w.spec.parallelism_spec().constant());
  return w;
}

constexpr char kEdges[] = R"j({
  "pipeline": {"name": "edges"},
  "transform": {"cmd": ["python3", "/edges.py"], "image": "pachyderm/opencv:1.0",
                "working_dir": "/work", "user": "1000:2000",
                "image_pull_secrets": ["regcred"],
                "secrets": [{"name": "s3-creds", "key": "secret", "env_var": "AWS_SECRET"},
                            {"name": "tls", "mount_path": "/etc/tls"}]},
  "input": {"pfs": {"repo": "images", "glob": "/*"}},
  "parallelism_spec": {"constant": 4},
  "resource_requests": {"memory": "256Mi", "cpu": 0.5},
  "resource_limits": {"memory": "1Gi", "cpu": 2, "disk": "10Gi",
                      "gpu": {"type": "nvidia.com/gpu", "number": 1}},
  "sidecar_resource_limits": {"memory": "128Mi"},
  "node_selector": {"disktype": "ssd"},
  "scheduling_spec": {"priority_class_name": "batch", "node_selector": {"zone": "a"}},
  "tolerations": [{"key": "dedicated", "operator": "EQUAL", "value": "tusk",
                   "effect": "NO_SCHEDULE"}]
})j";

const json* Container(const json& pod, const std::string& name) {
  for (const json& c : pod["containers"]) {
    if (c["name"] == name) return &c;
  }
  return nullptr;
}

TEST(PodSpecTest, KubernetesPodHasTheRunnerTheUserAndTheAgent) {
  PodOptions o;
  o.tuskd_address = "tusk:1650";
  o.token_secret = "tusk-runner-edges";
  auto spec = RunnerPodSpec(Want(kEdges), o);
  ASSERT_TRUE(spec.ok()) << spec.status();
  json pod = json::parse(*spec);
  // The agent comes from the tusk image through an init container.
  ASSERT_EQ(pod["initContainers"].size(), 1u);
  EXPECT_EQ(pod["initContainers"][0]["image"], "localhost/tusk:dev");
  const json* user = Container(pod, "user");
  const json* runner = Container(pod, "runner");
  ASSERT_NE(user, nullptr);
  ASSERT_NE(runner, nullptr);
  EXPECT_EQ((*user)["image"], "pachyderm/opencv:1.0");
  EXPECT_EQ((*user)["command"][0], "/tusk/bin/tusk-exec-agent");
  EXPECT_EQ((*user)["workingDir"], "/work");
  // Non-root, no capabilities, read-only root, for both containers.
  for (const json* c : {user, runner}) {
    EXPECT_EQ((*c)["securityContext"]["readOnlyRootFilesystem"], true);
    EXPECT_EQ((*c)["securityContext"]["allowPrivilegeEscalation"], false);
    EXPECT_EQ((*c)["securityContext"]["capabilities"]["drop"][0], "ALL");
  }
  EXPECT_EQ(pod["securityContext"]["runAsUser"], 1000);
  EXPECT_EQ(pod["securityContext"]["runAsGroup"], 2000);
  EXPECT_EQ(pod["securityContext"]["runAsNonRoot"], true);
  EXPECT_EQ(pod["automountServiceAccountToken"], false);
  EXPECT_EQ(pod["serviceAccountName"], "tusk-runner");
  // The token is the runner's alone; the user's container has the secrets.
  std::string runner_env = (*runner)["env"].dump();
  EXPECT_THAT(runner_env, HasSubstr("tusk-runner-edges"));
  EXPECT_THAT(runner_env, HasSubstr("metadata.name"));
  std::string user_env = (*user)["env"].dump();
  EXPECT_THAT(user_env, Not(HasSubstr("TUSK_TOKEN")));
  EXPECT_THAT(user_env, HasSubstr("AWS_SECRET"));
  EXPECT_THAT(user_env, HasSubstr("s3-creds"));
  EXPECT_THAT(pod["volumes"].dump(), HasSubstr("\"secretName\":\"tls\""));
  EXPECT_THAT((*user)["volumeMounts"].dump(), HasSubstr("/etc/tls"));
  // The runner is pinned to the pipeline version.
  std::string cmd = (*runner)["command"].dump();
  EXPECT_THAT(cmd, HasSubstr("\"--pipeline-version\",\"3\""));
  EXPECT_THAT(cmd, HasSubstr("$(TUSK_RUNNER_NAME)"));
  // Scheduling and resources with Kubernetes' names.
  EXPECT_EQ(pod["nodeSelector"]["disktype"], "ssd");
  EXPECT_EQ(pod["nodeSelector"]["zone"], "a");
  EXPECT_EQ(pod["priorityClassName"], "batch");
  EXPECT_EQ(pod["tolerations"][0]["operator"], "Equal");
  EXPECT_EQ(pod["tolerations"][0]["effect"], "NoSchedule");
  EXPECT_EQ(pod["imagePullSecrets"][0]["name"], "regcred");
  EXPECT_EQ((*user)["resources"]["requests"]["memory"], "256Mi");
  EXPECT_EQ((*user)["resources"]["requests"]["cpu"], "500m");
  EXPECT_EQ((*user)["resources"]["limits"]["memory"], "1Gi");
  EXPECT_EQ((*user)["resources"]["limits"]["ephemeral-storage"], "10Gi");
  EXPECT_EQ((*user)["resources"]["limits"]["nvidia.com/gpu"], "1");
  EXPECT_EQ((*runner)["resources"]["limits"]["memory"], "128Mi");
}

TEST(PodSpecTest, PodmanReadsSecretsFromFilesAndMountsTuskdsSocket) {
  auto dir = std::filesystem::temp_directory_path() / ("pods_test_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir / "s3-creds");
  std::ofstream(dir / "s3-creds" / "secret") << "hunter2";
  PodOptions o;
  o.kubernetes = false;
  o.secrets_dir = dir.string();
  o.tuskd_address = "unix:/tusk/tuskd/tuskd.sock";
  o.tuskd_socket_dir = "/data/run";
  o.token = "tusk_abc_def";
  o.runner_name = "pod-0";
  auto spec = RunnerPodSpec(Want(kEdges), o);
  ASSERT_TRUE(spec.ok()) << spec.status();
  json pod = json::parse(*spec);
  const json* user = Container(pod, "user");
  const json* runner = Container(pod, "runner");
  EXPECT_THAT((*user)["env"].dump(), HasSubstr("hunter2"));
  EXPECT_THAT(pod["volumes"].dump(), HasSubstr((dir / "tls").string()));
  EXPECT_THAT((*runner)["env"].dump(), HasSubstr("tusk_abc_def"));
  EXPECT_THAT((*user)["volumeMounts"].dump(), Not(HasSubstr("tuskd-socket")));
  EXPECT_THAT((*runner)["volumeMounts"].dump(), HasSubstr("/tusk/tuskd"));
  EXPECT_FALSE(pod.contains("serviceAccountName"));

  // A missing secret file is a clear error, not an empty variable.
  std::filesystem::remove(dir / "s3-creds" / "secret");
  auto missing = RunnerPodSpec(Want(kEdges), o);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("s3-creds"));
  std::filesystem::remove_all(dir);
}

TEST(PodSpecTest, RunnersTrustTuskdsCaFromASecretTheUserCannotSee) {
  PodOptions o;
  o.tls_ca_secret = "tusk-tls";
  o.tls_ca_key = "tls.crt";
  auto spec = RunnerPodSpec(Want(kEdges), o);
  ASSERT_TRUE(spec.ok()) << spec.status();
  json pod = json::parse(*spec);
  EXPECT_THAT((*Container(pod, "runner"))["command"].dump(),
              HasSubstr("\"--tls-ca\",\"/tusk/tls/ca.crt\""));
  EXPECT_THAT((*Container(pod, "runner"))["volumeMounts"].dump(), HasSubstr("/tusk/tls"));
  EXPECT_THAT((*Container(pod, "user"))["volumeMounts"].dump(), Not(HasSubstr("/tusk/tls")));
  EXPECT_THAT(pod["volumes"].dump(), HasSubstr("\"key\":\"tls.crt\",\"path\":\"ca.crt\""));
}

TEST(PodSpecTest, PodPatchIsApplied) {
  std::string spec = R"j({"pipeline": {"name": "p"},
    "transform": {"cmd": ["true"], "image": "busybox"},
    "input": {"pfs": {"repo": "in", "glob": "/*"}},
    "pod_patch": "[{\"op\": \"add\", \"path\": \"/hostname\", \"value\": \"patched\"}]"})j";
  auto out = RunnerPodSpec(Want(spec), PodOptions{});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(json::parse(*out)["hostname"], "patched");

  // A patch that does not apply to the pod fails with the reason.
  std::string bad = R"j({"pipeline": {"name": "p"},
    "transform": {"cmd": ["true"], "image": "busybox"},
    "input": {"pfs": {"repo": "in", "glob": "/*"}},
    "pod_patch": "[{\"op\": \"remove\", \"path\": \"/nothing/here\"}]"})j";
  auto failed = RunnerPodSpec(Want(bad), PodOptions{});
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(failed.status().message()), HasSubstr("pod_patch"));
}

TEST(PodSpecTest, PodSpecIsMergedBeforePodPatchAndMetadataLabelsThePods) {
  std::string spec = R"j({"pipeline": {"name": "p"},
    "transform": {"cmd": ["true"], "image": "busybox"},
    "input": {"pfs": {"repo": "in", "glob": "/*"}},
    "pod_spec": "{\"hostname\": \"merged\", \"dnsPolicy\": \"None\"}",
    "pod_patch": "[{\"op\": \"replace\", \"path\": \"/dnsPolicy\", \"value\": \"Default\"}]",
    "metadata": {"labels": {"team": "vision", "app.kubernetes.io/name": "mine"},
                 "annotations": {"owner": "ana"}}})j";
  auto out = RunnerPodSpec(Want(spec), PodOptions{});
  ASSERT_TRUE(out.ok()) << out.status();
  json pod = json::parse(*out);
  EXPECT_EQ(pod["hostname"], "merged");
  EXPECT_EQ(pod["dnsPolicy"], "Default");  // the patch comes after the merge
  auto d = RunnerDeployment(Want(spec), PodOptions{}, 1);
  ASSERT_TRUE(d.ok()) << d.status();
  json labels = json::parse(*d)["spec"]["template"]["metadata"]["labels"];
  EXPECT_EQ(labels["team"], "vision");
  EXPECT_EQ(labels["app.kubernetes.io/name"], "tusk-runner");  // tusk's own label wins
  EXPECT_EQ(json::parse(*d)["spec"]["template"]["metadata"]["annotations"]["owner"], "ana");
}

TEST(PodSpecTest, BadPodFieldsAreRefusedWithTheirNames) {
  auto check = [](const std::string& extra) {
    dispatcher::PipelineSpec spec;
    std::string j = absl::StrCat(R"j({"pipeline": {"name": "p"},
      "input": {"pfs": {"repo": "in", "glob": "/*"}}, )j",
                                 extra, "}");
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(j, &spec).ok()) << j;
    return std::string(dispatcher::NormalizePipelineSpec(&spec).message());
  };
  const std::string t = R"j("transform": {"cmd": ["x"], "image": "i")j";
  EXPECT_THAT(check(t + R"j(, "user": "root"}, "autoscaling": true)j"),
              HasSubstr("transform.user"));
  EXPECT_THAT(check(t + R"j(, "user": "0"})j"), HasSubstr("not root"));
  EXPECT_THAT(check(t + R"j(}, "pod_patch": "{")j"), HasSubstr("pod_patch is not JSON"));
  EXPECT_THAT(check(t + R"j(}, "pod_patch": "[{\"op\": \"frob\", \"path\": \"/a\"}]")j"),
              HasSubstr("pod_patch[0]: op 'frob'"));
  EXPECT_THAT(check(t + R"j(}, "tolerations": [{"operator": "MAYBE"}])j"),
              HasSubstr("tolerations[0].operator"));
  EXPECT_THAT(check(t + R"j(, "secrets": [{"name": "Bad_Name", "env_var": "X", "key": "k"}]})j"),
              HasSubstr("transform.secrets[0].name"));
  EXPECT_THAT(check(t + R"j(, "secrets": [{"name": "s", "mount_path": "/pfs/x"}]})j"),
              HasSubstr("under /pfs"));
  EXPECT_THAT(check(t + R"j(}, "resource_requests": {"memory": "lots"})j"),
              HasSubstr("resource_requests.memory"));
  EXPECT_THAT(check(t + R"j(}, "resource_limits": {"gpu": {"number": 1}})j"),
              HasSubstr("resource_limits.gpu.type"));
}

TEST(PodSpecTest, NamesAreKubernetesSafeAndDistinct) {
  EXPECT_EQ(WorkloadName("edges", 2), "tusk-edges-v2");
  EXPECT_EQ(TokenSecretName("edges"), "tusk-runner-edges");
  // Case and '_' are changed, so a hash keeps two such pipelines apart.
  EXPECT_NE(KubeName("My_Pipe"), KubeName("my-pipe"));
  EXPECT_THAT(KubeName("My_Pipe"), ::testing::StartsWith("my-pipe-"));
  EXPECT_EQ(PipelineLabelValue("edges"), "edges");
  EXPECT_THAT(PipelineLabelValue("edges_"), ::testing::StartsWith("h-"));
  std::string long_name(63, 'a');
  EXPECT_LE(WorkloadName(long_name, 1000000).size(), 63u);
}

TEST(PodSpecTest, DeploymentCarriesLabelsAndTheSpecHash) {
  auto w = Want(kEdges, 7);
  PodOptions o;
  auto d = RunnerDeployment(w, o, 2);
  ASSERT_TRUE(d.ok()) << d.status();
  json j = json::parse(*d);
  EXPECT_EQ(j["metadata"]["name"], "tusk-edges-v7");
  EXPECT_EQ(j["spec"]["replicas"], 2);
  EXPECT_EQ(j["metadata"]["labels"][kVersionLabel], "7");
  EXPECT_EQ(j["spec"]["selector"]["matchLabels"][kPipelineLabel], "edges");
  const std::string hash = j["spec"]["template"]["metadata"]["annotations"][kSpecHashAnnotation];
  EXPECT_EQ(hash, SpecHash(*RunnerPodSpec(w, o)));
  // The same spec gives the same hash; another image another.
  auto w2 = w;
  w2.spec.mutable_transform()->set_image("pachyderm/opencv:2.0");
  EXPECT_NE(SpecHash(*RunnerPodSpec(w2, o)), hash);
}

TEST(ScalingTest, ReplicasFollowTheWork) {
  auto w = Want(kEdges);  // constant 4
  const absl::Duration grace = absl::Minutes(5);
  w.work = 10;
  EXPECT_EQ(DesiredReplicas(w, 0, grace), 4);
  w.spec.set_autoscaling(true);
  w.work = 2;
  EXPECT_EQ(DesiredReplicas(w, 0, grace), 2);
  EXPECT_EQ(DesiredReplicas(w, 3, grace), 3);  // not scaled down while busy
  w.work = 100;
  EXPECT_EQ(DesiredReplicas(w, 1, grace), 4);  // the ceiling
  w.work = 0;
  w.idle = absl::Minutes(1);
  EXPECT_EQ(DesiredReplicas(w, 4, grace), 4);  // warm for the grace period
  w.idle = absl::Minutes(6);
  EXPECT_EQ(DesiredReplicas(w, 4, grace), 0);  // then nothing
  w.work = 5;
  w.paused = true;
  EXPECT_EQ(DesiredReplicas(w, 4, grace), 0);
}

}  // namespace
}  // namespace tusk::pods
