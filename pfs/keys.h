#pragma once

// The index's key layout, shared by the Pfs and the index rebuild. Internal
// to pfs.

#include <cstdint>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace tusk::pfs {

// Index key layout (first byte names the record kind):
//   r<repo>                   RepoInfo
//   b<repo>\0<branch>         BranchInfo
//   c<repo>\0<commit id>      CommitInfo
//   s<commit id><path>        StagedOp of an open commit
//   k<commit set>\0<repo>\0<id>  commits of a commit set (empty value)
//   v<repo>\0<id>\0<repo>\0<id>  subvenance: the second commit's provenance
//                             names the first (empty value)
//   x<hash>, q<hash>          blob index (blob_store.cc)
//   m<name>                   metadata (format version, log sequence)
//   l<seq, 16 hex>            PendingLog: a log not yet shipped (log mode "shipped")
//   d<key>                    marks another component's durable record
inline std::string RepoKey(absl::string_view repo) { return absl::StrCat("r", repo); }
inline std::string BranchPrefix(absl::string_view repo) {
  return absl::StrCat("b", repo, absl::string_view("\0", 1));
}
inline std::string BranchKey(absl::string_view repo, absl::string_view branch) {
  return absl::StrCat(BranchPrefix(repo), branch);
}
inline std::string CommitPrefix(absl::string_view repo) {
  return absl::StrCat("c", repo, absl::string_view("\0", 1));
}
inline std::string CommitKey(absl::string_view repo, absl::string_view id) {
  return absl::StrCat(CommitPrefix(repo), id);
}
inline constexpr absl::string_view kNul("\0", 1);
inline std::string CommitSetKey(absl::string_view set, absl::string_view repo,
                                absl::string_view id) {
  return absl::StrCat("k", set, kNul, repo, kNul, id);
}
inline std::string SubvenancePrefix(absl::string_view repo, absl::string_view id) {
  return absl::StrCat("v", repo, kNul, id, kNul);
}
inline std::string SubvenanceKey(absl::string_view from_repo, absl::string_view from_id,
                                 absl::string_view repo, absl::string_view id) {
  return absl::StrCat(SubvenancePrefix(from_repo, from_id), repo, kNul, id);
}
inline std::string Hex16(uint64_t v);
inline std::string PendingLogKey(uint64_t seq) { return "l" + Hex16(seq); }
// Marks `key` as a durable record of another component (PutRecord): what a
// checkpoint carries, and what a rebuild must mark again.
inline constexpr char kRecordMarkerPrefix[] = "d";
inline std::string RecordMarkerKey(absl::string_view key) {
  return absl::StrCat(kRecordMarkerPrefix, key);
}
inline std::string StagePrefix(absl::string_view id) { return absl::StrCat("s", id); }
inline std::string StageKey(absl::string_view id, absl::string_view path) {
  return absl::StrCat("s", id, path);
}

inline constexpr char kFormatKey[] = "mformat";
inline constexpr char kFormatVersion[] = "2";
// Object-store key that marks a tusk object store (holds the format version).
inline constexpr char kStoreMarkerKey[] = "meta/format";
// Object-store keys of checkpoints: kCheckpointPrefix + 16 hex digits of seq.
inline constexpr char kCheckpointPrefix[] = "meta/checkpoint-";
// The highest log sequence number that may be in use (see Pfs::NextSeq).
inline constexpr char kSeqKey[] = "mseq";
// The number of the last log whose change the index holds (written in the
// same batch as the change).
inline constexpr char kAppliedSeqKey[] = "mapplied";
// Object-store keys of void ranges: kVoidPrefix + 16 hex (first) + "-" + 16
// hex (last). Logs numbered in a void range never reached the index (a crash
// came between a log pack and its index write); a rebuild ignores them.
inline constexpr char kVoidPrefix[] = "meta/void-";
inline std::string Hex16(uint64_t v) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (int shift = 60; shift >= 0; shift -= 4) out.push_back(kHex[(v >> shift) & 15]);
  return out;
}
inline std::string VoidKey(uint64_t first, uint64_t last) {
  return absl::StrCat(kVoidPrefix, Hex16(first), "-", Hex16(last));
}
// The range of a VoidKey; false if `key` is not one.
inline bool ParseVoidKey(absl::string_view key, uint64_t* first, uint64_t* last) {
  if (!absl::ConsumePrefix(&key, kVoidPrefix) || key.size() != 33 || key[16] != '-') return false;
  return absl::SimpleHexAtoi(key.substr(0, 16), first) && absl::SimpleHexAtoi(key.substr(17), last);
}
inline std::string CheckpointKey(uint64_t seq) {
  return absl::StrCat(kCheckpointPrefix, Hex16(seq));
}

}  // namespace tusk::pfs
