// Diffs of two trees: walks only the nodes that differ (equal subtrees have
// equal hashes).

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

namespace {

// A node on one side of a diff, with its level.
struct LeveledNode {
  Hash hash;
  int level;
};

// Expands both sides' node sets level by level, dropping nodes present on both
// sides (equal hash: equal entries), until only differing leaves remain; then
// returns the entries of those leaves.
absl::Status DiffNodeSets(NodeStore* nodes, const Hash& a_root, const Hash& b_root,
                          std::map<std::string, Entry>* a_out,
                          std::map<std::string, Entry>* b_out) {
  std::vector<LeveledNode> a, b;
  auto level_of = [&](const Hash& h) -> absl::StatusOr<int> {
    ASSIGN_OR_RETURN(auto n, nodes->Get(h));
    return static_cast<int>(n->level());
  };
  if (!a_root.IsZero()) {
    ASSIGN_OR_RETURN(int l, level_of(a_root));
    a.push_back({a_root, l});
  }
  if (!b_root.IsZero()) {
    ASSIGN_OR_RETURN(int l, level_of(b_root));
    b.push_back({b_root, l});
  }
  while (true) {
    // Cancel equal nodes.
    absl::flat_hash_map<Hash, int> b_count;
    for (const auto& it : b) b_count[it.hash]++;
    std::vector<LeveledNode> a2;
    absl::flat_hash_map<Hash, int> cancelled;
    for (const auto& it : a) {
      auto f = b_count.find(it.hash);
      if (f != b_count.end() && f->second > 0) {
        f->second--;
        cancelled[it.hash]++;
      } else {
        a2.push_back(it);
      }
    }
    std::vector<LeveledNode> b2;
    for (const auto& it : b) {
      auto f = cancelled.find(it.hash);
      if (f != cancelled.end() && f->second > 0) {
        f->second--;
      } else {
        b2.push_back(it);
      }
    }
    a.swap(a2);
    b.swap(b2);
    int max_level = 0;
    for (const auto& it : a) max_level = std::max(max_level, it.level);
    for (const auto& it : b) max_level = std::max(max_level, it.level);
    if (max_level == 0) break;
    auto expand = [&](std::vector<LeveledNode>* side) -> absl::Status {
      std::vector<LeveledNode> out;
      for (const auto& it : *side) {
        if (it.level != max_level) {
          out.push_back(it);
          continue;
        }
        ASSIGN_OR_RETURN(auto n, nodes->Get(it.hash));
        for (const auto& c : n->children()) {
          ASSIGN_OR_RETURN(Hash h, HashOf(c.hash(), "tree node"));
          out.push_back({h, max_level - 1});
        }
      }
      side->swap(out);
      return absl::OkStatus();
    };
    RETURN_IF_ERROR(expand(&a));
    RETURN_IF_ERROR(expand(&b));
  }
  for (const auto& it : a) {
    ASSIGN_OR_RETURN(auto n, nodes->Get(it.hash));
    for (const auto& e : n->entries()) (*a_out)[e.name()] = e;
  }
  for (const auto& it : b) {
    ASSIGN_OR_RETURN(auto n, nodes->Get(it.hash));
    for (const auto& e : n->entries()) (*b_out)[e.name()] = e;
  }
  return absl::OkStatus();
}

bool SameEntry(const Entry& a, const Entry& b) {
  return a.type() == b.type() && a.hash() == b.hash() && a.size() == b.size();
}

absl::Status EmitAll(NodeStore* nodes, const std::string& path, const Entry& e, bool added,
                     const std::function<absl::Status(const PathDiff&)>& fn) {
  auto emit_file = [&](const std::string& p, const Entry& f) {
    PathDiff d;
    d.kind = added ? PathDiff::kAdded : PathDiff::kDeleted;
    d.path = p;
    if (added) {
      d.new_entry = f;
    } else {
      d.old_entry = f;
    }
    return fn(d);
  };
  if (e.type() == Entry::FILE) return emit_file(path, e);
  ASSIGN_OR_RETURN(Hash h, HashOf(e.hash(), "directory entry"));
  return WalkFiles(nodes, h, path, emit_file);
}

}  // namespace

absl::Status DiffTrees(NodeStore* nodes, const Hash& old_root, const Hash& new_root,
                       const std::string& prefix,
                       const std::function<absl::Status(const PathDiff&)>& fn) {
  if (old_root == new_root) return absl::OkStatus();
  std::map<std::string, Entry> a, b;
  RETURN_IF_ERROR(DiffNodeSets(nodes, old_root, new_root, &a, &b));
  auto ia = a.begin();
  auto ib = b.begin();
  while (ia != a.end() || ib != b.end()) {
    if (ib == b.end() || (ia != a.end() && ia->first < ib->first)) {
      RETURN_IF_ERROR(EmitAll(nodes, JoinPath(prefix, ia->first), ia->second, false, fn));
      ++ia;
    } else if (ia == a.end() || ib->first < ia->first) {
      RETURN_IF_ERROR(EmitAll(nodes, JoinPath(prefix, ib->first), ib->second, true, fn));
      ++ib;
    } else {
      const Entry& ea = ia->second;
      const Entry& eb = ib->second;
      std::string path = JoinPath(prefix, ia->first);
      if (!SameEntry(ea, eb)) {
        if (ea.type() == Entry::DIR && eb.type() == Entry::DIR) {
          ASSIGN_OR_RETURN(Hash ha, HashOf(ea.hash(), "directory entry"));
          ASSIGN_OR_RETURN(Hash hb, HashOf(eb.hash(), "directory entry"));
          RETURN_IF_ERROR(DiffTrees(nodes, ha, hb, path, fn));
        } else if (ea.type() == Entry::FILE && eb.type() == Entry::FILE) {
          PathDiff d;
          d.kind = PathDiff::kModified;
          d.path = path;
          d.old_entry = ea;
          d.new_entry = eb;
          RETURN_IF_ERROR(fn(d));
        } else {
          RETURN_IF_ERROR(EmitAll(nodes, path, ea, false, fn));
          RETURN_IF_ERROR(EmitAll(nodes, path, eb, true, fn));
        }
      }
      ++ia;
      ++ib;
    }
  }
  return absl::OkStatus();
}

}  // namespace tusk::pfs
