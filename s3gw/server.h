#pragma once

// HttpServer: the S3 gateway's HTTP/1.1 listener (libmicrohttpd underneath,
// private to this file's .cc). A pool of threads, each polling many
// connections with epoll: keep-alive connections cost a socket, not a
// thread. Request bodies are handed over piece by piece as they arrive and
// response bodies are pulled piece by piece as the socket drains, so a
// 10 GiB object passes through in bounded memory. Chunked transfer encoding
// and `Expect: 100-continue` are handled here.
//
// Metrics: tusk_s3_requests_total{op,code}, tusk_s3_request_duration_seconds{op},
// tusk_s3_received_bytes_total, tusk_s3_sent_bytes_total, tusk_s3_connections.
//
// Lifecycle: Start() serves when it returns; the destructor stops accepting,
// closes connections and waits for handlers in progress. The handler must
// outlive the server. Handlers run on the pool's threads, concurrently; one
// request's calls (Begin, its sink's Write and Finish, its body source's
// Next) all come from one thread, in order.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tusk::s3gw {

struct HttpRequest {
  std::string method;
  std::string raw_path;                                      // as sent: still %-encoded
  std::string raw_query;                                     // after '?', as sent; empty if none
  std::vector<std::pair<std::string, std::string>> headers;  // names as sent
  std::string remote;                                        // the client's address

  // The value of header `name` (any case); "" if absent.
  std::string Header(absl::string_view name) const;
  bool HasHeader(absl::string_view name) const;
};

// A response body produced on demand (an object's content).
class BodySource {
 public:
  virtual ~BodySource() = default;
  // The next piece, in order; empty at the end. An error after the headers
  // went out can only cut the connection (the client sees a short body).
  virtual absl::StatusOr<std::string> Next() = 0;
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // no Content-Length: it is set here
  std::string body;
  // When set, the body is `stream_size` bytes pulled from here instead
  // (HEAD: the size is sent, no body).
  std::unique_ptr<BodySource> stream;
  uint64_t stream_size = 0;
  // Content-Length: stream_size without a body (HEAD).
  bool head_only = false;
};

// Receives a request's body as it arrives.
class BodySink {
 public:
  virtual ~BodySink() = default;
  // The next piece of the body. An error ends the request: the rest of the
  // body is read and dropped, and Fail's response is sent.
  virtual absl::Status Write(absl::string_view data) = 0;
  // The body is complete: the response.
  virtual HttpResponse Finish() = 0;
  // The response after Write failed with `error`.
  virtual HttpResponse Fail(const absl::Status& error) = 0;
};

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // What to do with a request whose head arrived: answer at once (`sink`
  // null), or read its body into `sink`. A request destroyed before its
  // body ended (the client went away) never gets Finish: the sink's
  // destructor must leave nothing behind.
  struct Begun {
    HttpResponse response;
    std::unique_ptr<BodySink> sink;
    // The request's kind, for metrics (tusk_s3_requests_total{op}).
    std::string op;
  };
  virtual Begun Begin(const HttpRequest& request) = 0;
};

struct HttpServerOptions {
  std::string listen = "127.0.0.1:0";  // HOST:PORT; port 0 picks one
  int threads = 8;
  // A connection idle this long is closed.
  int idle_timeout_seconds = 120;
  int max_connections = 1024;
};

class HttpServer {
 public:
  // Unavailable if the address cannot be bound; InvalidArgument if it is not
  // HOST:PORT.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                           HttpHandler* handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace tusk::s3gw
