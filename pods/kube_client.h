#pragma once

// KubeClient: calls to the Kubernetes API over HTTPS (http::HttpClient,
// libcurl): no C++ client library is packaged, and the API is plain JSON.
//
// Where the cluster is and who tuskd is there comes from a kubeconfig file
// (its current context: server, CA, token or client certificate, namespace)
// or, inside a pod, from the service account Kubernetes mounts
// (KUBERNETES_SERVICE_HOST/PORT, /var/run/secrets/kubernetes.io/serviceaccount).
//
// Lifecycle: Open() once; Call() as often as needed. Thread safety: none (one
// caller; the kubernetes backend's reconciling thread).

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "http/http_client.h"

namespace tusk::pods {

struct KubeConfig {
  std::string server;      // https://HOST:PORT
  std::string ns;          // the namespace tuskd works in
  std::string token;       // bearer token, or
  std::string token_file;  // re-read now and then (projected tokens rotate)
  std::string ca_file;
  std::string client_cert;
  std::string client_key;
};

// Reads `kubeconfig` (YAML or JSON), or the in-cluster service account when
// it is empty. Inline data (certificate-authority-data, ...) is written to
// files under `scratch_dir`. `ns` overrides the namespace when set.
// InvalidArgument naming what is missing or malformed.
absl::StatusOr<KubeConfig> LoadKubeConfig(const std::string& kubeconfig, const std::string& ns,
                                          const std::string& scratch_dir);

class KubeClient {
 public:
  struct Reply {
    long status = 0;
    std::string body;
  };

  static absl::StatusOr<std::unique_ptr<KubeClient>> Open(const KubeConfig& config);

  const std::string& ns() const { return config_.ns; }

  // The image of container `container` (empty: the first) of pod `pod` in
  // this namespace: how tuskd, in a pod, finds its own image.
  absl::StatusOr<std::string> PodImage(const std::string& pod, const std::string& container);

  // One request; `path` begins with /api or /apis. Transport failures are
  // Unavailable; HTTP statuses are the caller's to read (Reply::status).
  absl::StatusOr<Reply> Call(const std::string& method, const std::string& path,
                             const std::string& body = "",
                             const std::string& content_type = "application/json");
  // Call() with the statuses made errors: 404 NotFound, 409 AlreadyExists
  // (or Aborted for a conflict on update), 401/403 PermissionDenied, 422 and
  // 400 InvalidArgument, the rest Unavailable; each with the API's message.
  absl::StatusOr<std::string> Do(const std::string& method, const std::string& path,
                                 const std::string& body = "",
                                 const std::string& content_type = "application/json");

 private:
  KubeClient(KubeConfig config, std::unique_ptr<http::HttpClient> http)
      : config_(std::move(config)), http_(std::move(http)) {}
  std::string Token();

  const KubeConfig config_;
  std::unique_ptr<http::HttpClient> http_;
  std::string token_;
  absl::Time token_read_ = absl::InfinitePast();
};

}  // namespace tusk::pods
