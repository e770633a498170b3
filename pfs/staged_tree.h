#pragma once

// StagedTree: the staged writes of a commit (or of a tree upload) as a tree of
// paths, applied to a base directory in one pass that rewrites only the
// directories on the written paths. Internal to pfs.
//
// Not thread-safe; a value type.

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/hash.h"
#include "pfs/blob_store.h"
#include "pfs/tree.h"
#include "proto/storage.pb.h"

namespace tusk::pfs {

class StagedTree {
 public:
  // Adds the op staged at `path`; later ops on a path replace earlier ones.
  void Add(absl::string_view path, const storage::v1::StagedOp& op);
  bool empty() const { return root_.children.empty(); }
  // The tree `base` (zero: empty) with the staged writes applied; new nodes
  // go through `writer`. Returns the new root's summary (zero hash if empty).
  // FailedPrecondition if a path was written both as a file and as a
  // directory, or a file is written beneath a file.
  absl::StatusOr<DirInfo> Apply(NodeStore* nodes, BlobWriter* writer, const Hash& base) const;

 private:
  struct Node {
    bool cleared = false;      // deleted first (the old content is gone)
    std::optional<Entry> put;  // a file written here
    std::map<std::string, std::unique_ptr<Node>> children;
  };
  static absl::StatusOr<DirInfo> ApplyNode(NodeStore* nodes, BlobWriter* writer,
                                           const Hash& old_dir, const Node& node,
                                           const std::string& path);
  Node root_;
};

}  // namespace tusk::pfs
