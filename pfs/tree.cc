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

absl::StatusOr<Hash> HashOf(const std::string& raw, absl::string_view what) {
  auto h = Hash::FromRaw(raw);
  if (!h.ok()) return absl::DataLossError(absl::StrCat("malformed hash in ", what));
  return *h;
}

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

}  // namespace tusk::pfs
