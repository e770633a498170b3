#pragma once

// Names, paths and refs: validation and parsing. All functions are pure and
// thread-safe; every error is InvalidArgument naming the offending input.
//
//   repo name    [A-Za-z0-9_-]{1,63}, not starting with '-'
//   branch name  [A-Za-z0-9_.-]{1,255}, not starting with '.' or '-', no "..",
//                and not 32 hex characters (those are commit ids)
//   commit id    32 lowercase hex characters
//   ref          BASE followed by any number of '^' (parent) and '~N' (N-th
//                ancestor), where BASE is a branch name or a commit id
//   path         '/'-separated components, none of them '.', '..' or empty
//                after collapsing repeated slashes; normalized to "/a/b"
//   file spec    REPO[@REF][:PATH]   (REF defaults to "master", PATH to "/")

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tusk::pfs {

inline constexpr char kDefaultBranch[] = "master";

// Metadata keys under this prefix are carried from a commit to its children
// (ingest keeps its Kafka offsets there).
inline constexpr char kCarriedMetadataPrefix[] = "state/";

// Metadata key of an open commit that belongs to one resumable upload (a
// `tusk put file` with several streams, or one that was interrupted): its
// value names the upload. Writes to its branch wait for it to end instead of
// joining it, and only that upload (or an explicit finish) finishes it.
inline constexpr char kUploadOwnerMetadataKey[] = "tusk/put";

// InvalidArgument naming `what` (with its bytes escaped) unless `s` is UTF-8
// (common/utf8.h): names and paths travel in protobuf strings, which must be.
absl::Status CheckUtf8(absl::string_view what, absl::string_view s);

absl::Status ValidateRepoName(absl::string_view name);
absl::Status ValidateBranchName(absl::string_view name);
bool IsCommitId(absl::string_view s);
// A fresh random commit id.
std::string NewCommitId();

// Returns the normalized absolute form of `path` ("/" for the root).
absl::StatusOr<std::string> NormalizePath(absl::string_view path);
// Components of a normalized path ("/" has none).
std::vector<std::string> SplitPath(absl::string_view normalized);
// Joins a normalized directory path and a child name.
std::string JoinPath(absl::string_view dir, absl::string_view name);

struct ParsedRef {
  std::string base;  // branch name or commit id
  bool is_commit_id = false;
  int ancestors = 0;  // how many parent steps to take from base
};
absl::StatusOr<ParsedRef> ParseRef(absl::string_view ref);

struct FileSpec {
  std::string repo;
  std::string ref;   // defaults to kDefaultBranch
  std::string path;  // normalized; "/" when absent
  bool has_ref = false;
  bool has_path = false;
};
absl::StatusOr<FileSpec> ParseFileSpec(absl::string_view spec);

}  // namespace tusk::pfs
