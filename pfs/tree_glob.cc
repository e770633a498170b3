// Globs over a tree: * ? [abc] {a,b} within a path component, ** across
// components; only the subtrees a pattern can match are read.

#include <fnmatch.h>

#include <algorithm>
#include <map>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "pfs/file_hash.h"
#include "pfs/refs.h"
#include "pfs/tree.h"

namespace tusk::pfs {

absl::Status ValidateGlob(absl::string_view pattern) {
  int brace = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '\\') {
      ++i;
      continue;
    }
    if (c == '[') {
      size_t j = i + 1;
      if (j < pattern.size() && (pattern[j] == '!' || pattern[j] == '^')) ++j;
      if (j < pattern.size() && pattern[j] == ']') ++j;
      while (j < pattern.size() && pattern[j] != ']') {
        if (pattern[j] == '/') break;
        ++j;
      }
      if (j >= pattern.size() || pattern[j] != ']') {
        return absl::InvalidArgumentError(
            absl::StrCat("glob '", pattern, "': '[' at position ", i, " is not closed"));
      }
      i = j;
    } else if (c == '{') {
      ++brace;
    } else if (c == '}') {
      if (--brace < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("glob '", pattern, "': '}' at position ", i, " has no '{'"));
      }
    }
  }
  if (brace != 0) {
    return absl::InvalidArgumentError(absl::StrCat("glob '", pattern, "': '{' is not closed"));
  }
  return absl::OkStatus();
}

namespace {

// Expands the first {a,b,...} group of `pattern` into alternatives, recursively.
void ExpandBraces(const std::string& pattern, std::vector<std::string>* out) {
  size_t open = std::string::npos;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\') {
      ++i;
      continue;
    }
    if (pattern[i] == '{') {
      open = i;
      break;
    }
  }
  if (open == std::string::npos) {
    out->push_back(pattern);
    return;
  }
  int depth = 0;
  std::vector<std::string> alts;
  std::string cur;
  size_t close = std::string::npos;
  for (size_t i = open + 1; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '{') depth++;
    if (c == '}') {
      if (depth == 0) {
        close = i;
        break;
      }
      depth--;
    }
    if (c == ',' && depth == 0) {
      alts.push_back(cur);
      cur.clear();
      continue;
    }
    cur.push_back(c);
  }
  if (close == std::string::npos) {
    out->push_back(pattern);
    return;
  }
  alts.push_back(cur);
  for (const auto& alt : alts) {
    ExpandBraces(pattern.substr(0, open) + alt + pattern.substr(close + 1), out);
  }
}

bool HasMeta(absl::string_view s) { return s.find_first_of("*?[{\\") != absl::string_view::npos; }

class Globber {
 public:
  Globber(NodeStore* nodes, std::vector<std::string> parts)
      : nodes_(nodes), parts_(std::move(parts)) {}

  absl::Status Match(const Hash& dir, const std::string& path, size_t i) {
    if (i == parts_.size()) return absl::OkStatus();
    const std::string& p = parts_[i];
    bool last = i + 1 == parts_.size();
    if (p == "**") {
      // Zero components...
      if (last) {
        // '**' at the end matches everything beneath, files and directories.
        return ForEachEntry(nodes_, dir, [&](const Entry& e) -> absl::Status {
          std::string child = JoinPath(path, e.name());
          results_[child] = e;
          if (e.type() == Entry::DIR) {
            ASSIGN_OR_RETURN(Hash h, HashOf(e.hash(), "directory entry"));
            return Match(h, child, i);
          }
          return absl::OkStatus();
        });
      }
      RETURN_IF_ERROR(Match(dir, path, i + 1));
      // ...or one more directory, staying on '**'.
      return ForEachEntry(nodes_, dir, [&](const Entry& e) -> absl::Status {
        if (e.type() != Entry::DIR) return absl::OkStatus();
        ASSIGN_OR_RETURN(Hash h, HashOf(e.hash(), "directory entry"));
        return Match(h, JoinPath(path, e.name()), i);
      });
    }
    auto visit = [&](const Entry& e) -> absl::Status {
      std::string child = JoinPath(path, e.name());
      if (last) {
        results_[child] = e;
        return absl::OkStatus();
      }
      if (e.type() != Entry::DIR) return absl::OkStatus();
      ASSIGN_OR_RETURN(Hash h, HashOf(e.hash(), "directory entry"));
      return Match(h, child, i + 1);
    };
    if (!HasMeta(p)) {
      ASSIGN_OR_RETURN(auto e, FindEntry(nodes_, dir, p));
      if (e) return visit(*e);
      return absl::OkStatus();
    }
    return ForEachEntry(nodes_, dir, [&](const Entry& e) -> absl::Status {
      if (MatchComponent(p, e.name())) return visit(e);
      return absl::OkStatus();
    });
  }

  std::map<std::string, Entry>& results() { return results_; }

 private:
  NodeStore* nodes_;
  std::vector<std::string> parts_;
  std::map<std::string, Entry> results_;
};

}  // namespace

bool MatchComponent(absl::string_view pattern, absl::string_view name) {
  std::vector<std::string> alts;
  ExpandBraces(std::string(pattern), &alts);
  std::string n(name);
  for (const auto& alt : alts) {
    if (::fnmatch(alt.c_str(), n.c_str(), FNM_PERIOD * 0) == 0) return true;
  }
  return false;
}

absl::Status Glob(NodeStore* nodes, const Hash& root, absl::string_view pattern,
                  const std::function<absl::Status(const std::string&, const Entry&)>& fn) {
  RETURN_IF_ERROR(ValidateGlob(pattern));
  std::vector<std::string> parts = SplitPath(pattern);
  for (const auto& p : parts) {
    if (p == "." || p == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("glob '", pattern, "' contains a '", p, "' component"));
    }
  }
  if (parts.empty()) {
    ASSIGN_OR_RETURN(auto e, LookupPath(nodes, root, "/"));
    return fn("/", *e);
  }
  Globber g(nodes, parts);
  RETURN_IF_ERROR(g.Match(root, "/", 0));
  for (const auto& [path, e] : g.results()) RETURN_IF_ERROR(fn(path, e));
  return absl::OkStatus();
}

}  // namespace tusk::pfs
