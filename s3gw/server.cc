#include "s3gw/server.h"

#include <microhttpd.h>
#include <netdb.h>
#include <sys/socket.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/metrics.h"

namespace tusk::s3gw {

std::string HttpRequest::Header(absl::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

bool HttpRequest::HasHeader(absl::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, name)) return true;
  }
  return false;
}

namespace {

metrics::Counter* SentBytes() {
  static metrics::Counter* c = metrics::GetCounter("tusk_s3_sent_bytes_total",
                                                   "Bytes of response bodies the S3 gateway sent");
  return c;
}

metrics::Counter* ReceivedBytes() {
  static metrics::Counter* c = metrics::GetCounter(
      "tusk_s3_received_bytes_total", "Bytes of request bodies the S3 gateway received");
  return c;
}

metrics::Gauge* Connections() {
  static metrics::Gauge* g =
      metrics::GetGauge("tusk_s3_connections", "Connections open to the S3 gateway");
  return g;
}

// The state of one request, from its first line to the end of its response.
struct Exchange {
  std::string raw_uri;
  absl::Time start = absl::Now();
  std::string op = "other";
  bool begun = false;
  std::unique_ptr<BodySink> sink;
  absl::Status failed;  // the sink's first error; the rest of the body is dropped
};

// A response body pulled from a BodySource as the socket drains.
struct Pull {
  std::unique_ptr<BodySource> source;
  std::string pending;
  size_t offset = 0;
};

constexpr size_t kBlockSize = 512 << 10;

ssize_t PullBody(void* cls, uint64_t /*pos*/, char* buf, size_t max) {
  auto* pull = static_cast<Pull*>(cls);
  while (pull->offset == pull->pending.size()) {
    auto next = pull->source->Next();
    if (!next.ok()) {
      LOG(WARNING) << "s3 gateway: response body cut short: " << next.status();
      return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (next->empty()) return MHD_CONTENT_READER_END_OF_STREAM;
    pull->pending = std::move(*next);
    pull->offset = 0;
  }
  size_t n = std::min(max, pull->pending.size() - pull->offset);
  std::memcpy(buf, pull->pending.data() + pull->offset, n);
  pull->offset += n;
  SentBytes()->Inc(static_cast<double>(n));
  return static_cast<ssize_t>(n);
}

void FreeBody(void* cls) { delete static_cast<Pull*>(cls); }

MHD_Result Queue(MHD_Connection* conn, Exchange* ex, HttpResponse r) {
  metrics::GetCounter("tusk_s3_requests_total", "S3 gateway requests, by operation and HTTP status",
                      {{"op", ex->op}, {"code", absl::StrCat(r.status)}})
      ->Inc();
  metrics::GetHistogram("tusk_s3_request_duration_seconds",
                        "Time from a request's first line to its response (body sent after), by "
                        "operation",
                        metrics::SecondsBuckets(), {{"op", ex->op}})
      ->Observe(absl::ToDoubleSeconds(absl::Now() - ex->start));
  SentBytes()->Inc(static_cast<double>(r.body.size()));
  MHD_Response* resp;
  if (r.stream) {
    auto* pull = new Pull{std::move(r.stream), "", 0};
    resp = MHD_create_response_from_callback(r.stream_size, kBlockSize, &PullBody, pull, &FreeBody);
  } else if (r.head_only) {
    // HEAD: the size of what a GET would send, and no body.
    resp = MHD_create_response_from_callback(
        r.stream_size, 4096,
        [](void*, uint64_t, char*, size_t) -> ssize_t { return MHD_CONTENT_READER_END_OF_STREAM; },
        nullptr, nullptr);
  } else {
    resp = MHD_create_response_from_buffer(r.body.size(), r.body.data(), MHD_RESPMEM_MUST_COPY);
  }
  if (resp == nullptr) return MHD_NO;
  for (const auto& [k, v] : r.headers) MHD_add_response_header(resp, k.c_str(), v.c_str());
  MHD_Result result = MHD_queue_response(conn, static_cast<unsigned>(r.status), resp);
  MHD_destroy_response(resp);
  return result;
}

MHD_Result CollectHeader(void* cls, MHD_ValueKind, const char* key, const char* value) {
  auto* req = static_cast<HttpRequest*>(cls);
  req->headers.emplace_back(key ? key : "", value ? value : "");
  return MHD_YES;
}

std::string RemoteAddress(MHD_Connection* conn) {
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (info == nullptr || info->client_addr == nullptr) return "";
  char host[NI_MAXHOST];
  const sockaddr* sa = info->client_addr;
  socklen_t len = sa->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (getnameinfo(sa, len, host, sizeof(host), nullptr, 0, NI_NUMERICHOST) != 0) return "";
  return host;
}

}  // namespace

struct HttpServer::Impl {
  HttpHandler* handler = nullptr;
  MHD_Daemon* daemon = nullptr;

  static void* OnUri(void* /*cls*/, const char* uri, MHD_Connection*) {
    auto* ex = new Exchange();
    ex->raw_uri = uri ? uri : "";
    return ex;
  }

  static void OnConnection(void*, MHD_Connection*, void**, MHD_ConnectionNotificationCode code) {
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
      Connections()->Inc();
    } else {
      Connections()->Dec();
    }
  }

  static void OnCompleted(void*, MHD_Connection*, void** con_cls, MHD_RequestTerminationCode) {
    // A sink destroyed here without Finish is a request the client gave up
    // on: its destructor drops what it staged.
    delete static_cast<Exchange*>(*con_cls);
    *con_cls = nullptr;
  }

  static MHD_Result OnRequest(void* cls, MHD_Connection* conn, const char* /*url*/,
                              const char* method, const char* /*version*/, const char* upload_data,
                              size_t* upload_data_size, void** con_cls) {
    auto* self = static_cast<Impl*>(cls);
    auto* ex = static_cast<Exchange*>(*con_cls);
    if (ex == nullptr) return MHD_NO;  // OnUri always makes one
    if (!ex->begun) {
      ex->begun = true;
      HttpRequest req;
      req.method = method ? method : "";
      size_t q = ex->raw_uri.find('?');
      req.raw_path = ex->raw_uri.substr(0, q);
      if (q != std::string::npos) req.raw_query = ex->raw_uri.substr(q + 1);
      MHD_get_connection_values(conn, MHD_HEADER_KIND, &CollectHeader, &req);
      req.remote = RemoteAddress(conn);
      HttpHandler::Begun begun = self->handler->Begin(req);
      if (!begun.op.empty()) ex->op = begun.op;
      if (begun.sink == nullptr) return Queue(conn, ex, std::move(begun.response));
      ex->sink = std::move(begun.sink);
      return MHD_YES;
    }
    if (*upload_data_size > 0) {
      ReceivedBytes()->Inc(static_cast<double>(*upload_data_size));
      if (ex->failed.ok())
        ex->failed = ex->sink->Write(absl::string_view(upload_data, *upload_data_size));
      *upload_data_size = 0;
      return MHD_YES;
    }
    HttpResponse resp = ex->failed.ok() ? ex->sink->Finish() : ex->sink->Fail(ex->failed);
    ex->sink.reset();
    return Queue(conn, ex, std::move(resp));
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  if (impl_->daemon != nullptr) MHD_stop_daemon(impl_->daemon);
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                              HttpHandler* handler) {
  absl::string_view listen = options.listen;
  size_t colon = listen.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address '", listen, "' is not HOST:PORT"));
  }
  std::string host(listen.substr(0, colon));
  std::string port(listen.substr(colon + 1));
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]"))
    host = host.substr(1, host.size() - 2);
  int port_number = 0;
  if (!absl::SimpleAtoi(port, &port_number) || port_number < 0 || port_number > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("listen address '", listen, "' has a bad port"));
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0 || found == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address '", listen, "': ", gai_strerror(rc)));
  }
  sockaddr_storage addr{};
  std::memcpy(&addr, found->ai_addr, found->ai_addrlen);
  const bool v6 = found->ai_family == AF_INET6;
  freeaddrinfo(found);

  auto impl = std::make_unique<Impl>();
  impl->handler = handler;
  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO;
  if (v6) flags |= MHD_USE_IPv6;
  impl->daemon = MHD_start_daemon(
      flags, static_cast<uint16_t>(port_number), nullptr, nullptr, &Impl::OnRequest, impl.get(),
      MHD_OPTION_SOCK_ADDR, reinterpret_cast<sockaddr*>(&addr), MHD_OPTION_THREAD_POOL_SIZE,
      static_cast<unsigned>(options.threads), MHD_OPTION_URI_LOG_CALLBACK, &Impl::OnUri, nullptr,
      MHD_OPTION_NOTIFY_COMPLETED, &Impl::OnCompleted, nullptr, MHD_OPTION_NOTIFY_CONNECTION,
      &Impl::OnConnection, nullptr, MHD_OPTION_CONNECTION_TIMEOUT,
      static_cast<unsigned>(options.idle_timeout_seconds), MHD_OPTION_CONNECTION_LIMIT,
      static_cast<unsigned>(options.max_connections), MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      static_cast<size_t>(256 << 10), MHD_OPTION_LISTEN_BACKLOG_SIZE, 512u, MHD_OPTION_END);
  if (impl->daemon == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve S3 on ", listen, " (address in use or not local)"));
  }
  auto server = std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
  const MHD_DaemonInfo* info =
      MHD_get_daemon_info(server->impl_->daemon, MHD_DAEMON_INFO_BIND_PORT);
  if (info != nullptr) server->port_ = info->port;
  return server;
}

}  // namespace tusk::s3gw
