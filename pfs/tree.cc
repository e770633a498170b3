#include "pfs/tree.h"

#include <fnmatch.h>

#include <algorithm>
#include <map>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "pfs/file_hash.h"
#include "pfs/refs.h"

namespace tusk::pfs {
namespace {

uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

constexpr uint64_t kBoundaryMask = 63;  // 1 in 64: average 64 items per node

void AddEntryTo(const Entry& e, NodeRef* ref) {
  ref->set_entries(ref->entries() + 1);
  ref->set_size(ref->size() + e.size());
  ref->set_file_count(ref->file_count() + (e.type() == Entry::FILE ? 1 : e.file_count()));
}

void AddRefTo(const NodeRef& r, NodeRef* ref) {
  ref->set_entries(ref->entries() + r.entries());
  ref->set_size(ref->size() + r.size());
  ref->set_file_count(ref->file_count() + r.file_count());
}

DirInfo InfoFromRef(const NodeRef& ref) {
  DirInfo info;
  auto h = Hash::FromRaw(ref.hash());
  if (h.ok()) info.hash = *h;
  info.entries = ref.entries();
  info.size = ref.size();
  info.file_count = ref.file_count();
  return info;
}

absl::StatusOr<Hash> HashOf(const std::string& raw, absl::string_view what) {
  auto h = Hash::FromRaw(raw);
  if (!h.ok()) return absl::DataLossError(absl::StrCat("malformed hash in ", what));
  return *h;
}

// Builds the new version of one directory. See EditDir.
class Editor {
 public:
  Editor(NodeStore* nodes, BlobWriter* writer) : nodes_(nodes), writer_(writer) {}

  absl::StatusOr<DirInfo> Run(const Hash& old_root, const std::vector<DirChange>& changes) {
    changes_ = &changes;
    if (!old_root.IsZero()) {
      ASSIGN_OR_RETURN(auto root, nodes_->Get(old_root));
      RETURN_IF_ERROR(Descend(*root, 0, changes.size()));
    } else {
      for (const auto& c : changes) {
        if (c.put) RETURN_IF_ERROR(FeedEntry(*c.put));
      }
    }
    return Finish();
  }

 private:
  struct Level {
    std::vector<Entry> entries;  // level 0
    std::vector<NodeRef> refs;   // levels >= 1
    uint64_t received = 0;
    size_t pending() const { return entries.size() + refs.size(); }
  };

  Level& At(size_t k) {
    if (levels_.size() <= k) levels_.resize(k + 1);
    return levels_[k];
  }

  bool EmptyThrough(int m) {
    for (int k = 0; k <= m && k < static_cast<int>(levels_.size()); ++k) {
      if (levels_[k].pending() > 0) return false;
    }
    return true;
  }

  bool AnythingAbove(size_t k) {
    for (size_t j = k + 1; j < levels_.size(); ++j) {
      if (levels_[j].received > 0) return true;
    }
    return false;
  }

  absl::Status FeedEntry(Entry e) {
    Level& l = At(0);
    bool boundary = IsBoundary(0, e.name());
    l.entries.push_back(std::move(e));
    l.received++;
    if (boundary) return Emit(0);
    return absl::OkStatus();
  }

  absl::Status FeedRef(int level, NodeRef r) {
    Level& l = At(level);
    bool boundary = IsBoundary(level, r.last_name());
    l.refs.push_back(std::move(r));
    l.received++;
    if (boundary) return Emit(level);
    return absl::OkStatus();
  }

  absl::Status Emit(int level) {
    Level& l = At(level);
    auto node = std::make_shared<TreeNode>();
    node->set_level(level);
    NodeRef ref;
    if (level == 0) {
      for (auto& e : l.entries) AddEntryTo(e, &ref);
      ref.set_last_name(l.entries.back().name());
      for (auto& e : l.entries) *node->add_entries() = std::move(e);
      l.entries.clear();
    } else {
      for (auto& r : l.refs) AddRefTo(r, &ref);
      ref.set_last_name(l.refs.back().last_name());
      for (auto& r : l.refs) *node->add_children() = std::move(r);
      l.refs.clear();
    }
    std::string bytes = node->SerializeAsString();
    Hash h = Sha256(bytes);
    ref.set_hash(h.Raw());
    RETURN_IF_ERROR(writer_->Add(PrepareBlobWithHash(h, bytes)).status());
    nodes_->Remember(h, std::move(node), bytes.size());
    return FeedRef(level + 1, std::move(ref));
  }

  // Index of the first change in [lo, hi) whose name is > `name`.
  size_t UpperBound(size_t lo, size_t hi, const std::string& name) {
    const auto& c = *changes_;
    auto it = std::upper_bound(c.begin() + lo, c.begin() + hi, name,
                               [](const std::string& n, const DirChange& d) { return n < d.name; });
    return static_cast<size_t>(it - c.begin());
  }

  // Re-emits the content of `node`, merged with changes [lo, hi) (which all fall
  // in the node's key range).
  absl::Status Descend(const TreeNode& node, size_t lo, size_t hi) {
    const auto& changes = *changes_;
    if (node.level() == 0) {
      size_t ci = lo;
      for (const Entry& e : node.entries()) {
        while (ci < hi && changes[ci].name < e.name()) {
          if (changes[ci].put) RETURN_IF_ERROR(FeedEntry(*changes[ci].put));
          ++ci;
        }
        if (ci < hi && changes[ci].name == e.name()) {
          if (changes[ci].put) RETURN_IF_ERROR(FeedEntry(*changes[ci].put));
          ++ci;
        } else {
          RETURN_IF_ERROR(FeedEntry(e));
        }
      }
      for (; ci < hi; ++ci) {
        if (changes[ci].put) RETURN_IF_ERROR(FeedEntry(*changes[ci].put));
      }
      return absl::OkStatus();
    }
    int child_level = static_cast<int>(node.level()) - 1;
    size_t a = lo;
    for (int i = 0; i < node.children_size(); ++i) {
      const NodeRef& child = node.children(i);
      bool last = i + 1 == node.children_size();
      size_t b = last ? hi : UpperBound(a, hi, child.last_name());
      if (a == b && EmptyThrough(child_level)) {
        // Untouched, and it starts on a boundary at every lower level: reuse it whole.
        RETURN_IF_ERROR(FeedRef(child_level + 1, child));
      } else {
        ASSIGN_OR_RETURN(Hash h, HashOf(child.hash(), "tree node"));
        ASSIGN_OR_RETURN(auto c, nodes_->Get(h));
        if (static_cast<int>(c->level()) != child_level) {
          return absl::DataLossError(absl::StrCat("tree node ", h.Hex(), " has level ", c->level(),
                                                  ", its parent says ", child_level));
        }
        RETURN_IF_ERROR(Descend(*c, a, b));
      }
      a = b;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<DirInfo> Finish() {
    bool any = false;
    for (const auto& l : levels_) any = any || l.received > 0;
    if (!any) return DirInfo{};  // every entry deleted: the empty directory
    NodeRef root;
    for (size_t k = 0;; ++k) {
      Level& l = At(k);
      if (k >= 1 && !AnythingAbove(k) && l.received == 1 && l.pending() == 1) {
        root = l.refs[0];
        break;
      }
      if (l.pending() > 0) RETURN_IF_ERROR(Emit(static_cast<int>(k)));
    }
    // An item that was itself a boundary may have been wrapped in a one-child
    // node before we knew it was the last; the canonical root is below.
    while (true) {
      ASSIGN_OR_RETURN(Hash h, HashOf(root.hash(), "tree node"));
      ASSIGN_OR_RETURN(auto node, nodes_->Get(h));
      if (node->level() == 0 || node->children_size() != 1) break;
      root = node->children(0);
    }
    return InfoFromRef(root);
  }

  NodeStore* const nodes_;
  BlobWriter* const writer_;
  const std::vector<DirChange>* changes_ = nullptr;
  std::vector<Level> levels_;
};

}  // namespace

bool IsBoundary(int level, absl::string_view name) {
  // FNV-1a, salted by level, then a finalizer so that low bits are well mixed.
  uint64_t h = 0xcbf29ce484222325ull ^ (static_cast<uint64_t>(level + 1) * 0x9e3779b97f4a7c15ull);
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return (Mix64(h) & kBoundaryMask) == 0;
}

NodeStore::NodeStore(BlobStore* blobs, size_t cache_bytes)
    : blobs_(blobs), cache_bytes_(cache_bytes) {}

absl::StatusOr<std::shared_ptr<const TreeNode>> NodeStore::Get(const Hash& hash) {
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(hash);
    if (it != cache_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.lru_pos);
      return it->second.node;
    }
  }
  ASSIGN_OR_RETURN(std::string bytes, blobs_->Read(hash));
  auto node = std::make_shared<TreeNode>();
  if (!node->ParseFromString(bytes)) {
    return absl::DataLossError(absl::StrCat("tree node ", hash.Hex(), " does not parse"));
  }
  absl::MutexLock lock(&mu_);
  InsertLocked(hash, node, bytes.size());
  return std::shared_ptr<const TreeNode>(node);
}

void NodeStore::Remember(const Hash& hash, std::shared_ptr<const TreeNode> node, size_t bytes) {
  absl::MutexLock lock(&mu_);
  InsertLocked(hash, std::move(node), bytes);
}

void NodeStore::InsertLocked(const Hash& hash, std::shared_ptr<const TreeNode> node, size_t bytes) {
  if (cache_.contains(hash)) return;
  bytes += 128;  // bookkeeping overhead
  lru_.push_front(hash);
  cache_[hash] = CacheEntry{std::move(node), bytes, lru_.begin()};
  used_ += bytes;
  while (used_ > cache_bytes_ && !lru_.empty()) {
    auto it = cache_.find(lru_.back());
    used_ -= it->second.bytes;
    cache_.erase(it);
    lru_.pop_back();
  }
}

absl::StatusOr<ChunkList> NodeStore::GetChunks(const Entry& file) {
  ChunkList list;
  if (!file.chunk_list_blob()) {
    *list.mutable_chunks() = file.chunks();
    return list;
  }
  ASSIGN_OR_RETURN(Hash h, HashOf(file.hash(), "file entry"));
  ASSIGN_OR_RETURN(std::string bytes, blobs_->Read(h));
  if (!list.ParseFromString(bytes)) {
    return absl::DataLossError(
        absl::StrCat("chunk list ", h.Hex(), " of file '", file.name(), "' does not parse"));
  }
  return list;
}

absl::StatusOr<Entry> MakeFileEntry(const std::string& name, const std::vector<ChunkRef>& chunks,
                                    BlobWriter* writer) {
  ChunkList list;
  uint64_t size = 0;
  for (const auto& c : chunks) {
    *list.add_chunks() = c;
    size += c.size();
  }
  std::string bytes;
  Hash h = ChunkListHash(list, &bytes);
  Entry e;
  e.set_name(name);
  e.set_type(Entry::FILE);
  e.set_size(size);
  e.set_hash(h.Raw());
  if (chunks.size() <= kInlineChunks) {
    *e.mutable_chunks() = list.chunks();
  } else {
    e.set_chunk_list_blob(true);
    RETURN_IF_ERROR(writer->Add(PrepareBlobWithHash(h, bytes)).status());
  }
  return e;
}

absl::StatusOr<DirInfo> EditDir(NodeStore* nodes, BlobWriter* writer, const Hash& old_root,
                                const std::vector<DirChange>& changes) {
  for (size_t i = 1; i < changes.size(); ++i) {
    if (!(changes[i - 1].name < changes[i].name)) {
      return absl::InternalError("EditDir: changes are not sorted and unique");
    }
  }
  if (changes.empty()) return GetDirInfo(nodes, old_root);
  Editor editor(nodes, writer);
  return editor.Run(old_root, changes);
}

absl::StatusOr<DirInfo> GetDirInfo(NodeStore* nodes, const Hash& root) {
  DirInfo info;
  if (root.IsZero()) return info;
  ASSIGN_OR_RETURN(auto node, nodes->Get(root));
  NodeRef ref;
  for (const auto& e : node->entries()) AddEntryTo(e, &ref);
  for (const auto& r : node->children()) AddRefTo(r, &ref);
  info = InfoFromRef(ref);
  info.hash = root;
  return info;
}

absl::StatusOr<std::optional<Entry>> FindEntry(NodeStore* nodes, const Hash& root,
                                               absl::string_view name) {
  if (root.IsZero()) return std::optional<Entry>();
  Hash h = root;
  while (true) {
    ASSIGN_OR_RETURN(auto node, nodes->Get(h));
    if (node->level() == 0) {
      const auto& es = node->entries();
      auto it = std::lower_bound(es.begin(), es.end(), name,
                                 [](const Entry& e, absl::string_view n) { return e.name() < n; });
      if (it != es.end() && it->name() == name) return std::optional<Entry>(*it);
      return std::optional<Entry>();
    }
    const auto& cs = node->children();
    auto it =
        std::lower_bound(cs.begin(), cs.end(), name,
                         [](const NodeRef& r, absl::string_view n) { return r.last_name() < n; });
    if (it == cs.end()) return std::optional<Entry>();
    ASSIGN_OR_RETURN(h, HashOf(it->hash(), "tree node"));
  }
}

absl::Status ForEachEntry(NodeStore* nodes, const Hash& root,
                          const std::function<absl::Status(const Entry&)>& fn) {
  if (root.IsZero()) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto node, nodes->Get(root));
  if (node->level() == 0) {
    for (const auto& e : node->entries()) RETURN_IF_ERROR(fn(e));
    return absl::OkStatus();
  }
  for (const auto& c : node->children()) {
    ASSIGN_OR_RETURN(Hash h, HashOf(c.hash(), "tree node"));
    RETURN_IF_ERROR(ForEachEntry(nodes, h, fn));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<Entry>> LookupPath(NodeStore* nodes, const Hash& root,
                                                absl::string_view path) {
  std::vector<std::string> parts = SplitPath(path);
  if (parts.empty()) {
    ASSIGN_OR_RETURN(DirInfo info, GetDirInfo(nodes, root));
    Entry e;
    e.set_type(Entry::DIR);
    e.set_hash(info.hash.Raw());
    e.set_size(info.size);
    e.set_file_count(info.file_count);
    return std::optional<Entry>(e);
  }
  Hash dir = root;
  for (size_t i = 0; i < parts.size(); ++i) {
    ASSIGN_OR_RETURN(auto e, FindEntry(nodes, dir, parts[i]));
    if (!e) return std::optional<Entry>();
    if (i + 1 == parts.size()) return e;
    if (e->type() != Entry::DIR) return std::optional<Entry>();
    ASSIGN_OR_RETURN(dir, HashOf(e->hash(), "directory entry"));
  }
  return std::optional<Entry>();
}

absl::Status WalkFiles(NodeStore* nodes, const Hash& root, const std::string& prefix,
                       const std::function<absl::Status(const std::string&, const Entry&)>& fn) {
  return ForEachEntry(nodes, root, [&](const Entry& e) -> absl::Status {
    std::string path = JoinPath(prefix, e.name());
    if (e.type() == Entry::DIR) {
      ASSIGN_OR_RETURN(Hash h, HashOf(e.hash(), "directory entry"));
      return WalkFiles(nodes, h, path, fn);
    }
    return fn(path, e);
  });
}

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
