#include "dispatcher/datums.h"

#include <algorithm>
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "pfs/refs.h"

namespace tusk::dispatcher {
namespace {

// Separates the parts of a combined datum's key. Below any byte a path may
// hold after '/', so combined keys sort by their first part first.
constexpr char kKeySep = '\x01';

std::string StripParens(const std::string& glob) {
  std::string out;
  for (char c : glob) {
    if (c != '(' && c != ')') out.push_back(c);
  }
  return out;
}

bool MatchParts(const std::vector<std::string>& pat, size_t pi,
                const std::vector<std::string>& path, size_t i) {
  if (pi == pat.size()) return i == path.size();
  if (pat[pi] == "**") {
    for (size_t j = i; j <= path.size(); ++j) {
      if (MatchParts(pat, pi + 1, path, j)) return true;
    }
    return false;
  }
  if (i == path.size()) return false;
  return pfs::MatchComponent(pat[pi], path[i]) && MatchParts(pat, pi + 1, path, i + 1);
}

// The glob as an ECMAScript regex over whole paths, keeping its capture groups.
std::string GlobRegex(const std::string& glob) {
  std::string re;
  for (size_t i = 0; i < glob.size(); ++i) {
    char c = glob[i];
    switch (c) {
      case '*':
        if (i + 1 < glob.size() && glob[i + 1] == '*') {
          re += ".*";
          ++i;
        } else {
          re += "[^/]*";
        }
        break;
      case '?':
        re += "[^/]";
        break;
      case '[': {
        size_t end = glob.find(']', i + 1);
        if (end == std::string::npos) {
          re += "\\[";
          break;
        }
        std::string cls = glob.substr(i + 1, end - i - 1);
        if (!cls.empty() && cls[0] == '!') cls[0] = '^';
        re += "[" + cls + "]";
        i = end;
        break;
      }
      case '{':
        re += "(?:";
        break;
      case '}':
        re += ")";
        break;
      case ',':
        re += "|";
        break;
      case '(':
      case ')':
        re.push_back(c);
        break;
      default:
        if (std::string("\\^$.|+[]").find(c) != std::string::npos) re.push_back('\\');
        re.push_back(c);
    }
  }
  return re;
}

DatumInput MakeInput(const PFSInput& in, const ResolvedInput& r, const std::string& path,
                     const pfs::Entry& e) {
  DatumInput d;
  d.set_name(in.name());
  d.set_repo(in.repo());
  d.set_branch(in.branch());
  d.set_commit(r.commit);
  d.set_path(path);
  auto h = Hash::FromRaw(e.hash());
  d.set_hash(h.ok() ? h->Hex() : "");
  d.set_dir(e.type() == pfs::Entry::DIR);
  d.set_empty_files(in.empty_files());
  return d;
}

// Files of one pfs input that match its glob (an empty root directory is no datum).
absl::Status GlobInput(pfs::NodeStore* nodes, const PFSInput& in, const ResolvedInputs& resolved,
                       std::vector<DatumInput>* out) {
  auto it = resolved.find(in.name());
  if (it == resolved.end()) {
    return absl::InternalError(absl::StrCat("input ", in.name(), " is not resolved"));
  }
  const ResolvedInput& r = it->second;
  if (r.root.IsZero()) return absl::OkStatus();
  return pfs::Glob(nodes, r.root, StripParens(in.glob()),
                   [&](const std::string& path, const pfs::Entry& e) {
                     out->push_back(MakeInput(in, r, path, e));
                     return absl::OkStatus();
                   });
}

absl::StatusOr<std::vector<Datum>> List(pfs::NodeStore* nodes, const Input& input,
                                        const ResolvedInputs& resolved, bool top) {
  std::vector<Datum> out;
  if (input.has_pfs()) {
    std::vector<DatumInput> files;
    RETURN_IF_ERROR(GlobInput(nodes, input.pfs(), resolved, &files));
    for (auto& f : files) {
      Datum d;
      d.key = top ? f.path() : absl::StrCat(f.name(), f.path());
      d.inputs.push_back(std::move(f));
      out.push_back(std::move(d));
    }
  } else if (input.cross_size() > 0) {
    out.push_back(Datum{});
    for (const Input& child : input.cross()) {
      ASSIGN_OR_RETURN(auto part, List(nodes, child, resolved, false));
      std::vector<Datum> next;
      next.reserve(out.size() * part.size());
      for (const Datum& a : out) {
        for (const Datum& b : part) {
          Datum d = a;
          d.key = a.key.empty() ? b.key : absl::StrCat(a.key, std::string(1, kKeySep), b.key);
          for (const auto& in : b.inputs) d.inputs.push_back(in);
          next.push_back(std::move(d));
        }
      }
      out = std::move(next);
    }
  } else if (input.union__size() > 0) {
    for (const Input& child : input.union_()) {
      ASSIGN_OR_RETURN(auto part, List(nodes, child, resolved, false));
      for (auto& d : part) out.push_back(std::move(d));
    }
  } else if (input.join_size() > 0 || input.group_size() > 0) {
    bool join = input.join_size() > 0;
    const auto& children = join ? input.join() : input.group();
    // key value -> per child, its matching files
    std::map<std::string, std::vector<std::vector<DatumInput>>> by_key;
    for (int i = 0; i < children.size(); ++i) {
      const PFSInput& in = children[i].pfs();
      std::vector<DatumInput> files;
      RETURN_IF_ERROR(GlobInput(nodes, in, resolved, &files));
      for (auto& f : files) {
        std::vector<std::string> caps = GlobCaptures(in.glob(), f.path());
        std::string k = ExpandKey(join ? in.join_on() : in.group_by(), caps);
        auto& slot = by_key[k];
        slot.resize(children.size());
        slot[i].push_back(std::move(f));
      }
    }
    for (auto& [k, per_child] : by_key) {
      if (!join) {
        Datum d;
        d.key = k;
        for (auto& files : per_child) {
          for (auto& f : files) d.inputs.push_back(std::move(f));
        }
        out.push_back(std::move(d));
        continue;
      }
      // A join datum needs a match in every input; an outer_join input's
      // files make datums of their own where others have no match.
      bool all = true, outer = false;
      for (int i = 0; i < children.size(); ++i) {
        if (per_child[i].empty()) {
          all = false;
        } else if (children[i].pfs().outer_join()) {
          outer = true;
        }
      }
      if (!all && !outer) continue;
      std::vector<Datum> combos(1);
      for (int i = 0; i < children.size(); ++i) {
        if (per_child[i].empty()) continue;
        std::vector<Datum> next;
        for (const Datum& a : combos) {
          for (const DatumInput& f : per_child[i]) {
            Datum d = a;
            d.key = a.key.empty()
                        ? absl::StrCat(f.name(), f.path())
                        : absl::StrCat(a.key, std::string(1, kKeySep), f.name(), f.path());
            d.inputs.push_back(f);
            next.push_back(std::move(d));
          }
        }
        combos = std::move(next);
      }
      for (auto& d : combos) {
        d.key = absl::StrCat(k, std::string(1, kKeySep), d.key);
        out.push_back(std::move(d));
      }
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<Datum>> ListDatums(pfs::NodeStore* nodes, const Input& input,
                                              const ResolvedInputs& resolved) {
  ASSIGN_OR_RETURN(auto out, List(nodes, input, resolved, /*top=*/true));
  std::sort(out.begin(), out.end(), [](const Datum& a, const Datum& b) { return a.key < b.key; });
  // A union of overlapping inputs can yield one key twice; keep each once.
  out.erase(std::unique(out.begin(), out.end(),
                        [](const Datum& a, const Datum& b) { return a.key == b.key; }),
            out.end());
  return out;
}

absl::StatusOr<std::set<std::string>> ChangedDatumKeys(pfs::NodeStore* nodes, const PFSInput& input,
                                                       const Hash& old_root, const Hash& new_root) {
  std::set<std::string> keys;
  std::string glob = StripParens(input.glob());
  std::vector<std::string> pat = pfs::SplitPath(glob);
  bool deep = std::find(pat.begin(), pat.end(), "**") != pat.end();
  RETURN_IF_ERROR(pfs::DiffTrees(nodes, old_root, new_root, "/", [&](const pfs::PathDiff& d) {
    std::vector<std::string> parts = pfs::SplitPath(d.path);
    // The datums containing this file are the matching prefixes of its path.
    size_t from = deep ? 0 : std::min(pat.size(), parts.size());
    size_t to = deep ? parts.size() : from;
    for (size_t n = from; n <= to; ++n) {
      std::vector<std::string> prefix(parts.begin(), parts.begin() + n);
      if (MatchParts(pat, 0, prefix, 0)) {
        keys.insert(n == 0 ? "/" : absl::StrCat("/", absl::StrJoin(prefix, "/")));
      }
    }
    return absl::OkStatus();
  }));
  return keys;
}

absl::StatusOr<std::optional<Datum>> LookupDatum(pfs::NodeStore* nodes, const PFSInput& input,
                                                 const ResolvedInput& resolved,
                                                 const std::string& key) {
  if (resolved.root.IsZero()) return std::optional<Datum>();
  ASSIGN_OR_RETURN(auto e, pfs::LookupPath(nodes, resolved.root, key));
  if (!e) return std::optional<Datum>();
  Datum d;
  d.key = key;
  d.inputs.push_back(MakeInput(input, resolved, key, *e));
  return std::optional<Datum>(std::move(d));
}

Hash DatumHash(uint64_t salt, const Datum& datum) {
  Sha256Hasher h;
  h.Update(absl::StrCat("tusk-datum-v1", std::string(1, '\0'), salt, std::string(1, '\0')));
  for (const auto& in : datum.inputs) {
    h.Update(absl::StrCat(in.name(), std::string(1, '\0'), in.path(), std::string(1, '\0'),
                          in.dir() ? "d" : "f", in.hash(), std::string(1, '\0')));
  }
  return h.Finish();
}

bool MatchGlobPath(const std::string& glob, const std::string& path) {
  return MatchParts(pfs::SplitPath(StripParens(glob)), 0, pfs::SplitPath(path), 0);
}

std::vector<std::string> GlobCaptures(const std::string& glob, const std::string& path) {
  std::regex re(GlobRegex(glob));
  std::smatch m;
  if (!std::regex_match(path, m, re)) return {};
  std::vector<std::string> out;
  for (size_t i = 1; i < m.size(); ++i) out.push_back(m[i].str());
  return out;
}

std::string ExpandKey(const std::string& key, const std::vector<std::string>& captures) {
  std::string out;
  for (size_t i = 0; i < key.size(); ++i) {
    if (key[i] == '$' && i + 1 < key.size() &&
        std::isdigit(static_cast<unsigned char>(key[i + 1]))) {
      size_t j = i + 1;
      int n = 0;
      while (j < key.size() && std::isdigit(static_cast<unsigned char>(key[j])))
        n = n * 10 + (key[j++] - '0');
      if (n >= 1 && static_cast<size_t>(n) <= captures.size()) out += captures[n - 1];
      i = j - 1;
    } else {
      out.push_back(key[i]);
    }
  }
  return out;
}

}  // namespace tusk::dispatcher
