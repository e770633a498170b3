#include "pfs/refs.h"

#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/hash.h"
#include "common/status.h"
#include "common/utf8.h"

namespace tusk::pfs {
namespace {

bool IsNameChar(char c, bool allow_dot) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
         (allow_dot && c == '.');
}

}  // namespace

absl::Status CheckUtf8(absl::string_view what, absl::string_view s) {
  if (IsValidUtf8(s)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, " \"", absl::CHexEscape(s.substr(0, 200)), "\" is not valid UTF-8"));
}

absl::Status ValidateRepoName(absl::string_view name) {
  RETURN_IF_ERROR(CheckUtf8("repo name", name));
  if (name.empty()) return absl::InvalidArgumentError("repo name is empty");
  if (name.size() > 63) {
    return absl::InvalidArgumentError(
        absl::StrCat("repo name '", name, "' is longer than 63 characters"));
  }
  if (name[0] == '-') {
    return absl::InvalidArgumentError(absl::StrCat("repo name '", name, "' starts with '-'"));
  }
  for (char c : name) {
    if (!IsNameChar(c, false)) {
      return absl::InvalidArgumentError(
          absl::StrCat("repo name '", name, "' may only contain letters, digits, '_' and '-'"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateBranchName(absl::string_view name) {
  RETURN_IF_ERROR(CheckUtf8("branch name", name));
  if (name.empty()) return absl::InvalidArgumentError("branch name is empty");
  if (name.size() > 255) {
    return absl::InvalidArgumentError(
        absl::StrCat("branch name '", name.substr(0, 64), "...' is longer than 255 characters"));
  }
  if (name[0] == '-' || name[0] == '.') {
    return absl::InvalidArgumentError(
        absl::StrCat("branch name '", name, "' starts with '", name.substr(0, 1), "'"));
  }
  if (absl::StrContains(name, "..")) {
    return absl::InvalidArgumentError(absl::StrCat("branch name '", name, "' contains '..'"));
  }
  for (char c : name) {
    if (!IsNameChar(c, true)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "branch name '", name, "' may only contain letters, digits, '_', '-' and '.'"));
    }
  }
  if (IsCommitId(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("branch name '", name, "' looks like a commit id (32 hex characters)"));
  }
  return absl::OkStatus();
}

bool IsCommitId(absl::string_view s) {
  if (s.size() != 32) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string NewCommitId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t words[2] = {rng(), rng()};
  return ToHex(absl::string_view(reinterpret_cast<const char*>(words), sizeof(words)));
}

absl::StatusOr<std::string> NormalizePath(absl::string_view path) {
  RETURN_IF_ERROR(CheckUtf8("path", path));
  if (path.size() > 4096) {
    return absl::InvalidArgumentError(
        absl::StrCat("path '", path.substr(0, 64), "...' is longer than 4096 bytes"));
  }
  std::string out;
  out.reserve(path.size() + 1);
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty()) continue;
    if (part == "." || part == "..") {
      return absl::InvalidArgumentError(absl::StrCat("path '", path, "' contains a '", part,
                                                     "' component; paths may not escape or alias"));
    }
    for (char c : part) {
      if (c == '\0') {
        return absl::InvalidArgumentError(absl::StrCat("path '", path, "' contains a NUL byte"));
      }
    }
    if (part.size() > 255) {
      return absl::InvalidArgumentError(
          absl::StrCat("path '", path.substr(0, 64), "...' has a component longer than 255 bytes"));
    }
    out.push_back('/');
    out.append(part.data(), part.size());
  }
  if (out.empty()) out = "/";
  return out;
}

std::vector<std::string> SplitPath(absl::string_view normalized) {
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(normalized, '/', absl::SkipEmpty())) {
    parts.emplace_back(part);
  }
  return parts;
}

std::string JoinPath(absl::string_view dir, absl::string_view name) {
  if (dir == "/" || dir.empty()) return absl::StrCat("/", name);
  return absl::StrCat(dir, "/", name);
}

absl::StatusOr<ParsedRef> ParseRef(absl::string_view ref) {
  if (ref.empty()) return absl::InvalidArgumentError("ref is empty");
  size_t end = ref.find_first_of("^~");
  ParsedRef out;
  out.base = std::string(ref.substr(0, end));
  if (IsCommitId(out.base)) {
    out.is_commit_id = true;
  } else {
    absl::Status s = ValidateBranchName(out.base);
    if (!s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("ref '", ref, "' is neither a branch name nor a commit id: ", s.message()));
    }
  }
  size_t i = end;
  while (i != absl::string_view::npos && i < ref.size()) {
    if (ref[i] == '^') {
      out.ancestors++;
      ++i;
      continue;
    }
    // '~N'; a bare '~' means '~1' as in git.
    size_t j = i + 1;
    while (j < ref.size() && ref[j] >= '0' && ref[j] <= '9') ++j;
    int n = 1;
    if (j > i + 1) {
      if (!absl::SimpleAtoi(ref.substr(i + 1, j - i - 1), &n) || n > 1000000) {
        return absl::InvalidArgumentError(absl::StrCat("ref '", ref, "': bad ancestor count"));
      }
    }
    if (j < ref.size() && ref[j] != '^' && ref[j] != '~') {
      return absl::InvalidArgumentError(
          absl::StrCat("ref '", ref, "': unexpected '", ref.substr(j, 1), "' after '~'"));
    }
    out.ancestors += n;
    i = j;
  }
  return out;
}

absl::StatusOr<FileSpec> ParseFileSpec(absl::string_view spec) {
  FileSpec out;
  // Repo and ref cannot contain ':' or '@'; the path may contain both.
  size_t colon = spec.find(':');
  size_t at = spec.substr(0, colon).find('@');
  absl::string_view repo = spec.substr(0, std::min(at, colon));
  out.repo = std::string(repo);
  absl::Status s = ValidateRepoName(repo);
  if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("'", spec, "': ", s.message()));
  out.ref = kDefaultBranch;
  if (at != absl::string_view::npos) {
    absl::string_view ref = spec.substr(
        at + 1, colon == absl::string_view::npos ? absl::string_view::npos : colon - at - 1);
    auto parsed = ParseRef(ref);
    if (!parsed.ok()) return parsed.status();
    out.ref = std::string(ref);
    out.has_ref = true;
  }
  out.path = "/";
  if (colon != absl::string_view::npos) {
    auto path = NormalizePath(spec.substr(colon + 1));
    if (!path.ok()) return path.status();
    out.path = *path;
    out.has_path = true;
  }
  return out;
}

}  // namespace tusk::pfs
