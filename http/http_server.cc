#include "http/http_server.h"

#include <civetweb.h>

#include <mutex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/metrics.h"

namespace tusk::http {
namespace {

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

void Send(mg_connection* conn, const HttpResponse& r) {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            r.status, Reason(r.status), r.content_type.c_str(), r.body.size());
  mg_write(conn, r.body.data(), r.body.size());
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const std::string& listen, std::map<std::string, HttpHandler> routes, int threads) {
  static std::once_flag init;
  std::call_once(init, [] { mg_init_library(0); });
  auto s = std::unique_ptr<HttpServer>(new HttpServer());
  s->routes_ = std::move(routes);
  const std::string nthreads = absl::StrCat(threads);
  const char* options[] = {"listening_ports",   listen.c_str(), "num_threads", nthreads.c_str(),
                           "enable_keep_alive", "no",           nullptr};
  mg_callbacks callbacks{};
  // civetweb logs bind errors through this callback; keep them for the status.
  callbacks.log_message = [](const mg_connection*, const char*) { return 1; };
  s->ctx_ = mg_start(&callbacks, s.get(), options);
  if (s->ctx_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve HTTP on ", listen, " (address in use or invalid)"));
  }
  mg_set_request_handler(s->ctx_, "/", &HttpServer::Dispatch, s.get());
  mg_server_port ports[4];
  int n = mg_get_server_ports(s->ctx_, 4, ports);
  if (n > 0) s->port_ = ports[0].port;
  return s;
}

HttpServer::~HttpServer() {
  if (ctx_ != nullptr) mg_stop(ctx_);
}

int HttpServer::Dispatch(mg_connection* conn, void* self) {
  auto* server = static_cast<HttpServer*>(self);
  const mg_request_info* info = mg_get_request_info(conn);
  HttpRequest req;
  req.method = info->request_method ? info->request_method : "";
  req.path = info->local_uri ? info->local_uri : "";
  req.query = info->query_string ? info->query_string : "";
  auto route = server->routes_.find(req.path);
  HttpResponse resp;
  if (route == server->routes_.end()) {
    resp.status = 404;
    resp.body = "no such path: " + req.path + "\n";
  } else {
    resp = route->second(req);
  }
  Send(conn, resp);
  return resp.status;
}

std::map<std::string, HttpHandler> ObservabilityRoutes(std::function<absl::Status()> ready) {
  std::map<std::string, HttpHandler> routes;
  routes["/metrics"] = [](const HttpRequest& req) {
    HttpResponse r;
    if (req.method != "GET" && req.method != "HEAD") {
      r.status = 405;
      r.body = "GET only\n";
      return r;
    }
    r.content_type = metrics::kTextContentType;
    r.body = metrics::TextExposition();
    return r;
  };
  routes["/healthz"] = [](const HttpRequest&) {
    HttpResponse r;
    r.body = "ok\n";
    return r;
  };
  routes["/readyz"] = [ready = std::move(ready)](const HttpRequest&) {
    HttpResponse r;
    absl::Status s = ready ? ready() : absl::OkStatus();
    if (s.ok()) {
      r.body = "ready\n";
    } else {
      r.status = 503;
      r.body = absl::StrCat("not ready: ", s.message(), "\n");
    }
    return r;
  };
  return routes;
}

}  // namespace tusk::http
