#pragma once

// HttpClient: HTTP(S) requests over libcurl, with the response body streamed
// to the caller in pieces, and connections kept alive between requests.
//
// Lifecycle: Create() one per thread (or per stream of work); Start() sends a
// request and returns once the response headers arrived; ReadBody() pulls the
// body until it returns 0; the next Start() may then reuse the connection.
// Starting a new request abandons the unread rest of the previous body.
//
// Thread safety: none; one request at a time per client.
//
// Errors: transport failures (resolve, connect, reset, timeout) are
// Unavailable; a TLS certificate problem is FailedPrecondition; a bad URL is
// InvalidArgument. HTTP error statuses are not errors here: the caller reads
// Response::status (and the body, which explains it).

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/backoff.h"

namespace tusk::http {

struct HttpOptions {
  absl::Duration connect_timeout = absl::Seconds(10);
  // A transfer that moves fewer than 1 byte/s for this long is abandoned.
  absl::Duration stall_timeout = absl::Seconds(60);
  std::string user_agent = "tusk";
  // TLS: the CA bundle (PEM) to trust instead of the system's, and a client
  // certificate and key (PEM files) to present. Empty: not set.
  std::string ca_file;
  std::string client_cert;
  std::string client_key;
};

struct Request {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // for PUT/POST/PATCH
  // For PUT/POST instead of `body`: bytes the caller keeps alive until the
  // response headers are in (a large part is not copied).
  absl::string_view body_ref;
};

struct Response {
  long status = 0;
  // Header names in lowercase; a repeated header keeps its last value.
  std::map<std::string, std::string> headers;
  // Content-Length, or -1 when the server did not send one.
  int64_t content_length = -1;
  std::string body;  // filled by Fetch() only

  std::string Header(const std::string& lowercase_name) const {
    auto it = headers.find(lowercase_name);
    return it == headers.end() ? "" : it->second;
  }
};

class HttpClient {
 public:
  static absl::StatusOr<std::unique_ptr<HttpClient>> Create(const HttpOptions& options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends `req` and waits for the response's status line and headers
  // (following no redirects: 3xx comes back as it is).
  absl::StatusOr<Response> Start(const Request& req);
  // Up to `n` bytes of the current response's body; 0 at its end.
  absl::StatusOr<size_t> ReadBody(char* buf, size_t n);
  // Start() and the whole body into Response::body (for small responses).
  absl::StatusOr<Response> Fetch(const Request& req);

 private:
  struct State;
  explicit HttpClient(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Percent-encodes `s` as RFC 3986 requires for a URI component: everything
// but A-Z a-z 0-9 - _ . ~ is encoded; '/' too unless `keep_slash`.
std::string UriEncode(const std::string& s, bool keep_slash);

}  // namespace tusk::http
