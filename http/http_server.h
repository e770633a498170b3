#pragma once

// HttpServer: tusk's HTTP listener (civetweb underneath): /metrics, /healthz
// and /readyz on tuskd (--http-listen), tusk-ingest and tusk-runner; later
// the S3 gateway. A route is an exact path; a request for any other path is
// 404. Handlers run on the server's threads, concurrently.
//
// Lifecycle: Start() serves when it returns; the destructor stops serving
// and waits for handlers in progress. Thread-safe.

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

struct mg_context;
struct mg_connection;

namespace tusk::http {

struct HttpRequest {
  std::string method;
  std::string path;
  std::string query;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpServer {
 public:
  // Listens on `listen` (HOST:PORT; port 0 picks one). Unavailable if the
  // address cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const std::string& listen, std::map<std::string, HttpHandler> routes, int threads = 4);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }

 private:
  HttpServer() = default;
  static int Dispatch(::mg_connection* conn, void* self);

  std::map<std::string, HttpHandler> routes_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
};

// The routes every tusk process serves: /metrics (common/metrics), /healthz
// (the process is up: always 200) and /readyz (200 when `ready` is OK, else
// 503 with its message).
std::map<std::string, HttpHandler> ObservabilityRoutes(std::function<absl::Status()> ready);

}  // namespace tusk::http
