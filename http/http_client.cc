#include "http/http_client.h"

#include <curl/curl.h>

#include <cstring>
#include <mutex>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status.h"

namespace tusk::http {
namespace {

// libcurl's error codes, converted once here.
absl::Status FromCurlCode(CURLcode code, const std::string& url, const char* detail) {
  std::string what = absl::StrCat(url, ": ", detail[0] ? detail : curl_easy_strerror(code));
  switch (code) {
    case CURLE_OK:
      return absl::OkStatus();
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return absl::InvalidArgumentError(what);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
      return absl::FailedPreconditionError(what);
    case CURLE_OUT_OF_MEMORY:
      return absl::ResourceExhaustedError(what);
    default:
      return absl::UnavailableError(what);
  }
}

std::once_flag global_init;

}  // namespace

struct HttpClient::State {
  HttpOptions options;
  CURLM* multi = nullptr;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  char error[CURL_ERROR_SIZE] = {};
  std::string url;
  bool active = false;  // an easy handle is attached to the multi
  bool done = false;    // the transfer ended
  CURLcode result = CURLE_OK;
  Response response;
  bool headers_done = false;  // the final response's headers are in
  std::string buffer;         // body bytes not yet read
  size_t buffer_pos = 0;
  std::string upload_owned;  // request body, when the request owns it
  absl::string_view upload;  // request body
  size_t upload_pos = 0;

  ~State() {
    Detach();
    if (easy) curl_easy_cleanup(easy);
    if (multi) curl_multi_cleanup(multi);
  }

  void Detach() {
    if (active) curl_multi_remove_handle(multi, easy);
    active = false;
    if (headers) curl_slist_free_all(headers);
    headers = nullptr;
  }

  static size_t OnHeader(char* data, size_t size, size_t n, void* self) {
    auto* s = static_cast<State*>(self);
    absl::string_view line(data, size * n);
    if (absl::StartsWith(line, "HTTP/")) {
      // A new status line (after a 100 Continue, say) starts over.
      s->response = Response();
      s->headers_done = false;
      return size * n;
    }
    if (line == "\r\n" || line == "\n") {
      long code = 0;
      curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
      if (code >= 200) {
        s->response.status = code;
        s->headers_done = true;
      }
      return size * n;
    }
    size_t colon = line.find(':');
    if (colon != absl::string_view::npos) {
      std::string name = absl::AsciiStrToLower(line.substr(0, colon));
      std::string value(absl::StripAsciiWhitespace(line.substr(colon + 1)));
      if (name == "content-length") {
        int64_t v;
        if (absl::SimpleAtoi(value, &v)) s->response.content_length = v;
      }
      s->response.headers[name] = std::move(value);
    }
    return size * n;
  }

  static size_t OnData(char* data, size_t size, size_t n, void* self) {
    auto* s = static_cast<State*>(self);
    if (s->buffer_pos == s->buffer.size()) {
      s->buffer.clear();
      s->buffer_pos = 0;
    }
    s->buffer.append(data, size * n);
    return size * n;
  }

  static size_t OnRead(char* out, size_t size, size_t n, void* self) {
    auto* s = static_cast<State*>(self);
    size_t len = std::min(size * n, s->upload.size() - s->upload_pos);
    std::memcpy(out, s->upload.data() + s->upload_pos, len);
    s->upload_pos += len;
    return len;
  }

  // Moves the transfer along until `ready()` or the transfer ends.
  template <typename Ready>
  absl::Status Drive(Ready ready) {
    while (!done && !ready()) {
      int running = 0;
      CURLMcode mc = curl_multi_perform(multi, &running);
      if (mc != CURLM_OK) return absl::InternalError(curl_multi_strerror(mc));
      int queued;
      while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
        if (msg->msg == CURLMSG_DONE) {
          done = true;
          result = msg->data.result;
        }
      }
      if (done || ready()) break;
      mc = curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
      if (mc != CURLM_OK) return absl::InternalError(curl_multi_strerror(mc));
    }
    // Data that arrived before a failure is delivered before the failure.
    if (ready()) return absl::OkStatus();
    if (done && result != CURLE_OK) return FromCurlCode(result, url, error);
    return absl::OkStatus();
  }
};

HttpClient::HttpClient(std::unique_ptr<State> state) : state_(std::move(state)) {}
HttpClient::~HttpClient() = default;

absl::StatusOr<std::unique_ptr<HttpClient>> HttpClient::Create(const HttpOptions& options) {
  std::call_once(global_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  auto state = std::make_unique<State>();
  state->options = options;
  state->multi = curl_multi_init();
  state->easy = curl_easy_init();
  if (!state->multi || !state->easy)
    return absl::ResourceExhaustedError("cannot create a curl handle");
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(state)));
}

absl::StatusOr<Response> HttpClient::Start(const Request& req) {
  State& s = *state_;
  s.Detach();
  s.url = req.url;
  s.done = false;
  s.result = CURLE_OK;
  s.response = Response();
  s.headers_done = false;
  s.buffer.clear();
  s.buffer_pos = 0;
  if (req.body.empty()) {
    s.upload_owned.clear();
    s.upload = req.body_ref;
  } else {
    s.upload_owned = req.body;
    s.upload = s.upload_owned;
  }
  s.upload_pos = 0;
  s.error[0] = 0;

  CURL* e = s.easy;
  curl_easy_reset(e);
  curl_easy_setopt(e, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s.error);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, s.options.user_agent.c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(s.options.connect_timeout)));
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
                   static_cast<long>(absl::ToInt64Seconds(s.options.stall_timeout)));
  if (!s.options.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, s.options.ca_file.c_str());
  if (!s.options.client_cert.empty()) {
    curl_easy_setopt(e, CURLOPT_SSLCERT, s.options.client_cert.c_str());
    curl_easy_setopt(e, CURLOPT_SSLKEY, s.options.client_key.c_str());
  }
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &State::OnHeader);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &s);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &State::OnData);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
  if (req.method == "GET") {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else if (req.method == "HEAD") {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (req.method == "PUT" || req.method == "POST" || req.method == "PATCH") {
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, &State::OnRead);
    curl_easy_setopt(e, CURLOPT_READDATA, &s);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(s.upload.size()));
    if (req.method != "PUT") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  } else {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
  for (const auto& [name, value] : req.headers) {
    s.headers = curl_slist_append(s.headers, absl::StrCat(name, ": ", value).c_str());
  }
  // curl adds "Expect: 100-continue" to uploads; S3-like servers do not need
  // the extra round trip.
  s.headers = curl_slist_append(s.headers, "Expect:");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, s.headers);

  CURLMcode mc = curl_multi_add_handle(s.multi, e);
  if (mc != CURLM_OK) return absl::InternalError(curl_multi_strerror(mc));
  s.active = true;
  RETURN_IF_ERROR(s.Drive([&] { return s.headers_done; }));
  if (!s.headers_done) {
    return absl::UnavailableError(absl::StrCat(req.url, ": the server sent no response"));
  }
  return s.response;
}

absl::StatusOr<size_t> HttpClient::ReadBody(char* buf, size_t n) {
  State& s = *state_;
  if (!s.active) return absl::FailedPreconditionError("no request in progress");
  RETURN_IF_ERROR(s.Drive([&] { return s.buffer_pos < s.buffer.size(); }));
  size_t len = std::min(n, s.buffer.size() - s.buffer_pos);
  std::memcpy(buf, s.buffer.data() + s.buffer_pos, len);
  s.buffer_pos += len;
  return len;
}

absl::StatusOr<Response> HttpClient::Fetch(const Request& req) {
  ASSIGN_OR_RETURN(Response resp, Start(req));
  char buf[64 * 1024];
  for (;;) {
    ASSIGN_OR_RETURN(size_t n, ReadBody(buf, sizeof(buf)));
    if (n == 0) break;
    resp.body.append(buf, n);
  }
  return resp;
}

std::string UriEncode(const std::string& s, bool keep_slash) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (c == '/' && keep_slash)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace tusk::http
