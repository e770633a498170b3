#pragma once

// Merkle trees of directories, like git's, with large directories split into
// content-defined pieces (a prolly tree).
//
// A directory is a tree of TreeNode blobs. Level-0 nodes hold entries (files
// and subdirectories) sorted by name; level-k nodes hold NodeRefs to level-(k-1)
// nodes. A node ends after an item whose name hashes to a boundary at that level
// (probability 1/64), so the shape of a directory depends only on its content:
// equal directories have equal root hashes, and changing one entry of a
// directory of n entries rewrites O(log n) nodes. A directory's hash (the hash
// in its parent's entry) is its root node's hash; the empty directory has the
// zero hash and no nodes.
//
// A file entry's hash is the SHA-256 of its ChunkList; up to kInlineChunks
// chunk refs are kept in the entry, longer lists are a blob under that hash.
//
// Thread safety: NodeStore is thread-safe. DirEditor is single-threaded.

#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/hash.h"
#include "pfs/blob_store.h"
#include "proto/storage.pb.h"

namespace tusk::pfs {

using storage::v1::ChunkList;
using storage::v1::ChunkRef;
using storage::v1::Entry;
using storage::v1::NodeRef;
using storage::v1::TreeNode;

inline constexpr int kInlineChunks = 16;

// A hash from a node's raw bytes; DataLoss naming `what` if malformed.
absl::StatusOr<Hash> HashOf(const std::string& raw, absl::string_view what);

// Whether `name` ends a node at `level`. Part of the storage format.
bool IsBoundary(int level, absl::string_view name);

// Reads tree nodes and chunk lists through a BlobStore, caching parsed nodes.
class NodeStore {
 public:
  NodeStore(BlobStore* blobs, size_t cache_bytes);

  absl::StatusOr<std::shared_ptr<const TreeNode>> Get(const Hash& hash);
  // Remembers a node just written (avoids reading it back).
  void Remember(const Hash& hash, std::shared_ptr<const TreeNode> node, size_t bytes);
  // The chunks of a file entry.
  absl::StatusOr<ChunkList> GetChunks(const Entry& file);

  BlobStore* blobs() const { return blobs_; }

 private:
  struct CacheEntry {
    std::shared_ptr<const TreeNode> node;
    size_t bytes;
    std::list<Hash>::iterator lru_pos;
  };
  void InsertLocked(const Hash& hash, std::shared_ptr<const TreeNode> node, size_t bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  BlobStore* const blobs_;
  const size_t cache_bytes_;
  absl::Mutex mu_;
  absl::flat_hash_map<Hash, CacheEntry> cache_ ABSL_GUARDED_BY(mu_);
  std::list<Hash> lru_ ABSL_GUARDED_BY(mu_);
  size_t used_ ABSL_GUARDED_BY(mu_) = 0;
};

// Makes a file entry from its chunks; a long chunk list is written to `writer`.
absl::StatusOr<Entry> MakeFileEntry(const std::string& name, const std::vector<ChunkRef>& chunks,
                                    BlobWriter* writer);

// Summary of a directory.
struct DirInfo {
  Hash hash;  // zero for an empty directory
  uint64_t entries = 0;
  uint64_t size = 0;
  uint64_t file_count = 0;
};

// One change to a directory's direct entries: put (insert or replace) an entry,
// or delete the entry named `name`.
struct DirChange {
  std::string name;
  std::optional<Entry> put;  // nullopt: delete
};

// Applies sorted, unique-by-name `changes` to the directory `old_root` and
// writes the new nodes to `writer`. Work is proportional to the number of
// changes times the tree height, not to the directory's size.
absl::StatusOr<DirInfo> EditDir(NodeStore* nodes, BlobWriter* writer, const Hash& old_root,
                                const std::vector<DirChange>& changes);

// Summary of a directory from its root node.
absl::StatusOr<DirInfo> GetDirInfo(NodeStore* nodes, const Hash& root);

// The entry called `name` in directory `root`, or nullopt.
absl::StatusOr<std::optional<Entry>> FindEntry(NodeStore* nodes, const Hash& root,
                                               absl::string_view name);

// Calls fn for each entry of directory `root` in name order; stops at an error.
absl::Status ForEachEntry(NodeStore* nodes, const Hash& root,
                          const std::function<absl::Status(const Entry&)>& fn);

// The entry at normalized `path` below `root` ("/" yields a DIR entry for the
// root itself, named ""), or nullopt.
absl::StatusOr<std::optional<Entry>> LookupPath(NodeStore* nodes, const Hash& root,
                                                absl::string_view path);

// Calls fn(path, entry) for every file beneath directory `root`, in path order;
// `prefix` is the directory's own path.
absl::Status WalkFiles(NodeStore* nodes, const Hash& root, const std::string& prefix,
                       const std::function<absl::Status(const std::string&, const Entry&)>& fn);

// A difference between two trees at a file path.
struct PathDiff {
  enum Kind { kAdded, kModified, kDeleted } kind;
  std::string path;
  std::optional<Entry> old_entry;
  std::optional<Entry> new_entry;
};
// Calls fn for each file that differs between directories `old_root` and
// `new_root`, in path order. Equal subtrees (and equal pieces of large
// directories) are skipped by hash.
absl::Status DiffTrees(NodeStore* nodes, const Hash& old_root, const Hash& new_root,
                       const std::string& prefix,
                       const std::function<absl::Status(const PathDiff&)>& fn);

// Validates a glob pattern: balanced [] and {}.
absl::Status ValidateGlob(absl::string_view pattern);
// Whether one path component matches one pattern component (*, ?, [..], {a,b}).
bool MatchComponent(absl::string_view pattern, absl::string_view name);
// Calls fn(path, entry) for each file or directory whose path matches
// `pattern` ('/'-separated; '**' matches any number of components), in path order.
absl::Status Glob(NodeStore* nodes, const Hash& root, absl::string_view pattern,
                  const std::function<absl::Status(const std::string&, const Entry&)>& fn);

}  // namespace tusk::pfs
