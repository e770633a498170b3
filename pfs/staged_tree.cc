#include "pfs/staged_tree.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "pfs/refs.h"

namespace tusk::pfs {
namespace {

Entry DirEntry(const std::string& name, const DirInfo& info) {
  Entry e;
  e.set_name(name);
  e.set_type(Entry::DIR);
  e.set_size(info.size);
  e.set_hash(info.hash.Raw());
  e.set_file_count(info.file_count);
  return e;
}

}  // namespace

void StagedTree::Add(absl::string_view path, const storage::v1::StagedOp& op) {
  Node* node = &root_;
  for (const auto& part : SplitPath(path)) {
    auto& child = node->children[part];
    if (!child) child = std::make_unique<Node>();
    node = child.get();
  }
  if (op.kind() == storage::v1::StagedOp::PUT) {
    node->put = op.entry();
    node->cleared = node->cleared || op.cleared();
  } else {
    node->cleared = true;
    node->put.reset();
  }
}

absl::StatusOr<DirInfo> StagedTree::Apply(NodeStore* nodes, BlobWriter* writer,
                                          const Hash& base) const {
  return ApplyNode(nodes, writer, base, root_, "/");
}

// Applies `trie` to the directory `old_dir` (at `path`). Returns the new
// directory's summary (zero hash if empty).
absl::StatusOr<DirInfo> StagedTree::ApplyNode(NodeStore* nodes, BlobWriter* writer,
                                              const Hash& old_dir, const Node& trie,
                                              const std::string& path) {
  Hash base = trie.cleared ? Hash{} : old_dir;
  std::vector<DirChange> changes;
  for (const auto& [name, child] : trie.children) {
    std::string child_path = JoinPath(path, name);
    std::optional<Entry> old;
    if (!base.IsZero()) {
      ASSIGN_OR_RETURN(old, FindEntry(nodes, base, name));
    }
    if (child->put) {
      if (!child->children.empty()) {
        return absl::FailedPreconditionError(absl::StrCat(
            child_path, " was written both as a file and as a directory in this commit"));
      }
      if (old && old->type() == Entry::DIR && !child->cleared) {
        return absl::FailedPreconditionError(
            absl::StrCat("cannot write file ", child_path, ": it is a directory"));
      }
      changes.push_back({name, child->put});
    } else if (!child->children.empty()) {
      Hash sub_base;
      if (old && !child->cleared) {
        if (old->type() == Entry::FILE) {
          return absl::FailedPreconditionError(
              absl::StrCat("cannot write beneath ", child_path, ": it is a file"));
        }
        ASSIGN_OR_RETURN(sub_base, Hash::FromRaw(old->hash()));
      }
      ASSIGN_OR_RETURN(DirInfo sub, ApplyNode(nodes, writer, sub_base, *child, child_path));
      if (sub.hash.IsZero()) {
        if (old) changes.push_back({name, std::nullopt});
      } else {
        changes.push_back({name, DirEntry(name, sub)});
      }
    } else if (child->cleared) {
      if (old) changes.push_back({name, std::nullopt});
    }
  }
  return EditDir(nodes, writer, base, changes);
}

}  // namespace tusk::pfs
