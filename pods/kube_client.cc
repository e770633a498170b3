#include "pods/kube_client.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/fs.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace tusk::pods {
namespace {

constexpr char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";

absl::Status Bad(const std::string& where, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

std::string Str(const YAML::Node& n, const char* key) {
  if (!n || !n.IsMap() || !n[key] || !n[key].IsScalar()) return "";
  return n[key].as<std::string>();
}

// The entry of `list` (clusters, users, contexts) named `name`.
YAML::Node Named(const YAML::Node& list, const std::string& name, const char* field) {
  if (!list || !list.IsSequence()) return YAML::Node();
  for (const auto& item : list) {
    if (Str(item, "name") == name) return item[field];
  }
  return YAML::Node();
}

// A file for `path` (relative to the kubeconfig's directory), or for
// base64 `data` written to scratch_dir/name.
absl::StatusOr<std::string> FileOrData(const std::string& path, const std::string& data,
                                       const std::string& base_dir, const std::string& scratch_dir,
                                       const std::string& name) {
  if (!path.empty()) return path[0] == '/' ? path : base_dir + "/" + path;
  if (data.empty()) return std::string();
  std::string raw;
  if (!absl::Base64Unescape(data, &raw)) {
    return absl::InvalidArgumentError(absl::StrCat(name, "-data is not base64"));
  }
  RETURN_IF_ERROR(MkdirAll(scratch_dir));
  const std::string file = scratch_dir + "/" + name;
  RETURN_IF_ERROR(WriteSecretFile(file, raw));
  return file;
}

absl::StatusOr<KubeConfig> InCluster() {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || port == nullptr) {
    return absl::FailedPreconditionError(
        "not in a Kubernetes pod (no KUBERNETES_SERVICE_HOST): give tuskd --kubeconfig");
  }
  KubeConfig c;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6
  c.server = absl::StrCat("https://", h, ":", port);
  c.token_file = absl::StrCat(kServiceAccountDir, "/token");
  c.ca_file = absl::StrCat(kServiceAccountDir, "/ca.crt");
  auto ns = ReadSmallFile(absl::StrCat(kServiceAccountDir, "/namespace"), 1024);
  c.ns = ns.ok() ? std::string(absl::StripAsciiWhitespace(*ns)) : "default";
  return c;
}

absl::StatusOr<KubeConfig> FromFile(const std::string& path, const std::string& scratch_dir) {
  ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path, 4 << 20));
  YAML::Node root;
  // yaml-cpp reports errors by exception; they stop here.
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Bad(path, e.msg);
  }
  if (!root.IsMap()) return Bad(path, "not a kubeconfig (a mapping)");
  const std::string context_name = Str(root, "current-context");
  if (context_name.empty()) return Bad(path, "no current-context");
  YAML::Node context = Named(root["contexts"], context_name, "context");
  if (!context) return Bad(path, absl::StrCat("context ", context_name, " is not defined"));
  YAML::Node cluster = Named(root["clusters"], Str(context, "cluster"), "cluster");
  if (!cluster)
    return Bad(path, absl::StrCat("cluster ", Str(context, "cluster"), " is not defined"));
  YAML::Node user = Named(root["users"], Str(context, "user"), "user");
  const std::string dir =
      path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  KubeConfig c;
  c.server = Str(cluster, "server");
  if (c.server.empty()) return Bad(path, "the cluster has no server");
  c.ns = Str(context, "namespace");
  if (c.ns.empty()) c.ns = "default";
  ASSIGN_OR_RETURN(c.ca_file, FileOrData(Str(cluster, "certificate-authority"),
                                         Str(cluster, "certificate-authority-data"), dir,
                                         scratch_dir, "ca.crt"));
  c.token = Str(user, "token");
  c.token_file = Str(user, "tokenFile");
  ASSIGN_OR_RETURN(c.client_cert,
                   FileOrData(Str(user, "client-certificate"), Str(user, "client-certificate-data"),
                              dir, scratch_dir, "client.crt"));
  ASSIGN_OR_RETURN(c.client_key, FileOrData(Str(user, "client-key"), Str(user, "client-key-data"),
                                            dir, scratch_dir, "client.key"));
  if (c.token.empty() && c.token_file.empty() && c.client_cert.empty()) {
    return Bad(path, absl::StrCat("user ", Str(context, "user"),
                                  " has no token, tokenFile or client certificate (exec and "
                                  "auth-provider plugins are not supported)"));
  }
  return c;
}

}  // namespace

absl::StatusOr<KubeConfig> LoadKubeConfig(const std::string& kubeconfig, const std::string& ns,
                                          const std::string& scratch_dir) {
  ASSIGN_OR_RETURN(KubeConfig c,
                   kubeconfig.empty() ? InCluster() : FromFile(kubeconfig, scratch_dir));
  if (!ns.empty()) c.ns = ns;
  return c;
}

absl::StatusOr<std::unique_ptr<KubeClient>> KubeClient::Open(const KubeConfig& config) {
  http::HttpOptions o;
  o.ca_file = config.ca_file;
  o.client_cert = config.client_cert;
  o.client_key = config.client_key;
  o.user_agent = "tuskd";
  o.stall_timeout = absl::Seconds(30);
  ASSIGN_OR_RETURN(auto http, http::HttpClient::Create(o));
  return std::unique_ptr<KubeClient>(new KubeClient(config, std::move(http)));
}

std::string KubeClient::Token() {
  if (config_.token_file.empty()) return config_.token;
  if (absl::Now() - token_read_ > absl::Minutes(1)) {
    auto t = ReadSmallFile(config_.token_file, 64 << 10);
    if (t.ok()) {
      token_ = std::string(absl::StripAsciiWhitespace(*t));
      token_read_ = absl::Now();
    }
  }
  return token_;
}

absl::StatusOr<KubeClient::Reply> KubeClient::Call(const std::string& method,
                                                   const std::string& path, const std::string& body,
                                                   const std::string& content_type) {
  http::Request req;
  req.method = method;
  req.url = config_.server + path;
  req.body = body;
  req.headers.push_back({"Accept", "application/json"});
  if (!body.empty()) req.headers.push_back({"Content-Type", content_type});
  const std::string token = Token();
  if (!token.empty()) req.headers.push_back({"Authorization", "Bearer " + token});
  ASSIGN_OR_RETURN(http::Response resp, http_->Fetch(req));
  return Reply{resp.status, std::move(resp.body)};
}

absl::StatusOr<std::string> KubeClient::Do(const std::string& method, const std::string& path,
                                           const std::string& body,
                                           const std::string& content_type) {
  ASSIGN_OR_RETURN(Reply r, Call(method, path, body, content_type));
  if (r.status >= 200 && r.status < 300) return std::move(r.body);
  // The API's Status object says why.
  nlohmann::json s = nlohmann::json::parse(r.body, nullptr, false);
  std::string message = s.is_object() ? s.value("message", "") : "";
  if (message.empty()) message = r.body.substr(0, 200);
  message = absl::StrCat(method, " ", path, ": ", message);
  switch (r.status) {
    case 404:
      return absl::NotFoundError(message);
    case 409:
      return s.is_object() && s.value("reason", "") == "AlreadyExists"
                 ? absl::AlreadyExistsError(message)
                 : absl::AbortedError(message);
    case 401:
    case 403:
      return absl::PermissionDeniedError(message);
    case 400:
    case 422:
      return absl::InvalidArgumentError(message);
    default:
      return absl::UnavailableError(absl::StrCat("HTTP ", r.status, ": ", message));
  }
}

absl::StatusOr<std::string> KubeClient::PodImage(const std::string& pod,
                                                 const std::string& container) {
  ASSIGN_OR_RETURN(std::string body,
                   Do("GET", absl::StrCat("/api/v1/namespaces/", config_.ns, "/pods/", pod)));
  nlohmann::json p = nlohmann::json::parse(body, nullptr, false);
  if (p.is_object() && p.contains("spec") && p["spec"].contains("containers")) {
    for (const auto& c : p["spec"]["containers"]) {
      if (container.empty() || c.value("name", "") == container) return c.value("image", "");
    }
  }
  return absl::NotFoundError(absl::StrCat("pod ", pod, " has no container ", container));
}

}  // namespace tusk::pods
