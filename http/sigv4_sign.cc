// sigv4-sign: signs requests read from stdin with tusk's SigV4 signer, for
// tests that compare it with another implementation (botocore).
//
// Input, one request per line, fields separated by tabs:
//   METHOD  BASE_URL  KEY  QUERY  UNIX_SECONDS  PAYLOAD_SHA256  ACCESS  SECRET  TOKEN  REGION
// KEY is the raw object key (percent-encoded here as S3Client does); QUERY is
// name=value pairs joined by '&' with raw names and values (each encoded
// here), or empty. Output per line: the final URL, a tab, the Authorization
// header (or "error: ..." for a request the signer rejects).

#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "http/sigv4.h"

int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    std::vector<std::string> f = absl::StrSplit(line, '\t');
    if (f.size() != 10) {
      std::cout << "error: expected 10 fields, got " << f.size() << "\n";
      continue;
    }
    tusk::http::Request req;
    req.method = f[0];
    req.url = absl::StrCat(f[1], "/", tusk::http::UriEncode(f[2], /*keep_slash=*/true));
    if (!f[3].empty()) {
      std::vector<std::string> parts;
      for (absl::string_view pair : absl::StrSplit(f[3], '&')) {
        size_t eq = pair.find('=');
        std::string name(pair.substr(0, eq));
        std::string value = eq == absl::string_view::npos ? "" : std::string(pair.substr(eq + 1));
        parts.push_back(absl::StrCat(tusk::http::UriEncode(name, false), "=",
                                     tusk::http::UriEncode(value, false)));
      }
      absl::StrAppend(&req.url, "?", absl::StrJoin(parts, "&"));
    }
    int64_t secs = 0;
    if (!absl::SimpleAtoi(f[4], &secs)) {
      std::cout << "error: bad time\n";
      continue;
    }
    tusk::http::Credentials creds{f[6], f[7], f[8]};
    absl::Status s = tusk::http::SignV4(creds, f[9], "s3", absl::FromUnixSeconds(secs), f[5], &req);
    if (!s.ok()) {
      std::cout << "error: " << s.message() << "\n";
      continue;
    }
    std::string auth;
    for (const auto& [k, v] : req.headers) {
      if (k == "authorization") auth = v;
    }
    std::cout << req.url << "\t" << auth << "\n";
  }
  return 0;
}
