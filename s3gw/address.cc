#include "s3gw/address.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "http/sigv4_verify.h"
#include "pfs/refs.h"

namespace tusk::s3gw {
namespace {

absl::Status Bad(const char* code, const std::string& what) {
  absl::Status st = absl::InvalidArgumentError(what);
  st.SetPayload(http::kS3ErrorCodePayload, absl::Cord(code));
  return st;
}

// The path below the ref: checked as a tusk path, but kept relative and
// with its trailing '/' (a listing prefix).
absl::StatusOr<std::string> CheckPath(const std::string& path) {
  if (path.find('\0') != std::string::npos) {
    return Bad("InvalidArgument", "the key has a NUL byte");
  }
  absl::Status utf8 = pfs::CheckUtf8("the key", path);
  if (!utf8.ok()) return Bad("InvalidArgument", std::string(utf8.message()));
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "." || part == "..") {
      return Bad("InvalidArgument",
                 absl::StrCat("the key '", path, "' has a '", part, "' component"));
    }
  }
  return path;
}

bool PlainBranch(const pfs::ParsedRef& r) { return !r.is_commit_id && r.ancestors == 0; }

}  // namespace

absl::StatusOr<S3Target> ParseTarget(absl::string_view host, absl::string_view decoded_path,
                                     absl::string_view domain) {
  S3Target t;
  absl::string_view h = host;
  if (!h.empty() && h.front() != '[') h = h.substr(0, h.find(':'));  // no port
  std::string lower = absl::AsciiStrToLower(h);
  absl::string_view path = decoded_path;
  absl::ConsumePrefix(&path, "/");
  if (!domain.empty() && absl::EndsWith(lower, absl::StrCat(".", absl::AsciiStrToLower(domain)))) {
    t.virtual_host = true;
    t.bucket = std::string(h.substr(0, h.size() - domain.size() - 1));
    t.key = std::string(path);
    return t;
  }
  size_t slash = path.find('/');
  t.bucket = std::string(path.substr(0, slash));
  if (slash != absl::string_view::npos) t.key = std::string(path.substr(slash + 1));
  return t;
}

absl::StatusOr<RepoAddress> ResolveBucketKey(const std::string& bucket, const std::string& key) {
  RepoAddress a;
  if (bucket.find('.') == std::string::npos) {
    if (!pfs::ValidateRepoName(bucket).ok()) {
      return Bad("InvalidBucketName", absl::StrCat("'", bucket, "' is not a repo name"));
    }
    a.repo = bucket;
    size_t slash = key.find('/');
    a.ref = key.substr(0, slash);
    if (slash != std::string::npos) {
      ASSIGN_OR_RETURN(a.path, CheckPath(key.substr(slash + 1)));
    }
    if (!a.ref.empty()) {
      auto parsed = pfs::ParseRef(a.ref);
      if (!parsed.ok()) {
        return Bad("InvalidArgument",
                   absl::StrCat("'", a.ref, "' (the key's first part) is not a ref of repo ",
                                bucket, ": ", parsed.status().message()));
      }
      a.read_only = !PlainBranch(*parsed);
    }
    return a;
  }
  // Pachyderm: [COMMIT.]BRANCH.REPO. The repo has no '.', a branch may.
  a.pachyderm_style = true;
  size_t last = bucket.rfind('.');
  a.repo = bucket.substr(last + 1);
  std::string rest = bucket.substr(0, last);
  size_t first = rest.find('.');
  if (first != std::string::npos && pfs::IsCommitId(rest.substr(0, first))) {
    a.ref = rest.substr(0, first);  // the commit; its branch is only a label
    a.read_only = true;
  } else {
    a.ref = rest;
  }
  if (!pfs::ValidateRepoName(a.repo).ok() ||
      (!a.read_only && !pfs::ValidateBranchName(a.ref).ok())) {
    return Bad("InvalidBucketName",
               absl::StrCat("'", bucket, "' is not BRANCH.REPO or COMMIT.BRANCH.REPO"));
  }
  ASSIGN_OR_RETURN(a.path, CheckPath(key));
  return a;
}

}  // namespace tusk::s3gw
