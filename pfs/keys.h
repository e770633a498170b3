#pragma once

// Every key of the index (RocksDB), and every metadata key of the object
// store, is made and parsed here: one owner per key space, like LevelDB's
// db/filename.h. The first byte of an index key names its space; no space's
// prefix is a prefix of another's (checked at compile time below).
//
// pfs's own spaces are written only by pfs. Other components get a KeySpace
// (pfs/key_space.h) for theirs from Pfs::Space and make its keys with the
// functions of their section.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace tusk::pfs {

// ---------------------------------------------------------------------------
// The spaces
//
// pfs (values are pfs/storage protos, or empty):
//   r<repo>                      RepoInfo
//   b<repo>\0<branch>            BranchInfo
//   c<repo>\0<commit id>         CommitInfo
//   s<commit id><path>           StagedOp of an open commit
//   k<commit set>\0<repo>\0<id>  commits of a commit set
//   v<repo>\0<id>\0<repo>\0<id>  subvenance: the second commit's provenance
//                                names the first
//   x<hash, 32 bytes>            BlobLocation (the blob index)
//   q<hash, 32 bytes>            a blob that is inline, not yet packed
//   m<name>                      metadata (format version, log sequence)
//   l<seq, 16 hex>               PendingLog: a log not yet shipped
//   d<key>                       marks a component's durable record (PutRecord)
// Components:
//   J...                         the dispatcher's jobs and datums (below)
//   P<pipeline>                  PipelineInfo (durable record)
//   i<source>                    SourceInfo (durable record)
//   T<token id>                  TokenRecord (durable record; server/tokens)
//   U<upload id>/...             S3 multipart uploads and their parts (durable; s3gw)
inline constexpr char kRepoSpace[] = "r";
inline constexpr char kBranchSpace[] = "b";
inline constexpr char kCommitSpace[] = "c";
inline constexpr char kStageSpace[] = "s";
inline constexpr char kCommitSetSpace[] = "k";
inline constexpr char kSubvenanceSpace[] = "v";
inline constexpr char kBlobIndexSpace[] = "x";
inline constexpr char kPendingBlobSpace[] = "q";
inline constexpr char kMetaSpace[] = "m";
inline constexpr char kPendingLogSpace[] = "l";
inline constexpr char kRecordMarkerPrefix[] = "d";
inline constexpr char kJobSpace[] = "J";
inline constexpr char kPipelineSpace[] = "P";
inline constexpr char kSourceSpace[] = "i";
inline constexpr char kTokenSpace[] = "T";
inline constexpr char kS3UploadSpace[] = "U";

inline constexpr std::array<std::string_view, 16> kAllSpaces = {
    kRepoSpace,      kBranchSpace,     kCommitSpace,        kStageSpace,
    kCommitSetSpace, kSubvenanceSpace, kBlobIndexSpace,     kPendingBlobSpace,
    kMetaSpace,      kPendingLogSpace, kRecordMarkerPrefix, kJobSpace,
    kPipelineSpace,  kSourceSpace,     kTokenSpace,         kS3UploadSpace};
// The spaces Pfs::Space hands to other components.
inline constexpr std::array<std::string_view, 5> kComponentSpaces = {
    kJobSpace, kPipelineSpace, kSourceSpace, kTokenSpace, kS3UploadSpace};

constexpr bool SpacesAreDisjoint() {
  for (size_t i = 0; i < kAllSpaces.size(); ++i) {
    for (size_t j = 0; j < kAllSpaces.size(); ++j) {
      if (i != j && kAllSpaces[j].substr(0, kAllSpaces[i].size()) == kAllSpaces[i]) return false;
    }
  }
  return true;
}
static_assert(SpacesAreDisjoint(), "two index key spaces overlap");

inline constexpr absl::string_view kNul("\0", 1);

// ---------------------------------------------------------------------------
// pfs

// 16 lower-case hex digits of `v` (sortable: keys that hold numbers).
inline std::string Hex16(uint64_t v) { return absl::StrCat(absl::Hex(v, absl::kZeroPad16)); }
// The number of a Hex16; false if `hex` is not 16 hex digits.
inline bool ParseHex16(absl::string_view hex, uint64_t* v) {
  return hex.size() == 16 && absl::SimpleHexAtoi(hex, v);
}

inline std::string RepoKey(absl::string_view repo) { return absl::StrCat(kRepoSpace, repo); }
inline std::string BranchPrefix(absl::string_view repo) {
  return absl::StrCat(kBranchSpace, repo, kNul);
}
inline std::string BranchKey(absl::string_view repo, absl::string_view branch) {
  return absl::StrCat(BranchPrefix(repo), branch);
}
inline std::string CommitPrefix(absl::string_view repo) {
  return absl::StrCat(kCommitSpace, repo, kNul);
}
inline std::string CommitKey(absl::string_view repo, absl::string_view id) {
  return absl::StrCat(CommitPrefix(repo), id);
}
inline std::string CommitSetKey(absl::string_view set, absl::string_view repo,
                                absl::string_view id) {
  return absl::StrCat(kCommitSetSpace, set, kNul, repo, kNul, id);
}
inline std::string SubvenancePrefix(absl::string_view repo, absl::string_view id) {
  return absl::StrCat(kSubvenanceSpace, repo, kNul, id, kNul);
}
inline std::string SubvenanceKey(absl::string_view from_repo, absl::string_view from_id,
                                 absl::string_view repo, absl::string_view id) {
  return absl::StrCat(SubvenancePrefix(from_repo, from_id), repo, kNul, id);
}
inline std::string PendingLogKey(uint64_t seq) { return kPendingLogSpace + Hex16(seq); }
// Marks `key` as a durable record of another component (PutRecord): what a
// checkpoint carries, and what a rebuild must mark again.
inline std::string RecordMarkerKey(absl::string_view key) {
  return absl::StrCat(kRecordMarkerPrefix, key);
}
inline std::string StagePrefix(absl::string_view id) { return absl::StrCat(kStageSpace, id); }
inline std::string StageKey(absl::string_view id, absl::string_view path) {
  return absl::StrCat(kStageSpace, id, path);
}

inline std::string BlobIndexKey(absl::string_view raw_hash) {
  return absl::StrCat(kBlobIndexSpace, raw_hash);
}
inline std::string PendingBlobKey(absl::string_view raw_hash) {
  return absl::StrCat(kPendingBlobSpace, raw_hash);
}

inline constexpr char kFormatKey[] = "mformat";  // kMetaSpace
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

// ---------------------------------------------------------------------------
// The dispatcher (kJobSpace; values are pps/storage protos, or empty):
//   Jj<pipeline>\0<seq, 16 hex>       JobInfo
//   Ji<job id>                        <pipeline>\0<seq, 16 hex>
//   Jk<commit set>\0<job id>          (jobs of a commit set)
//   Jd<job id>\0<datum key>           DatumInfo of a datum the job touched
//   Jc<pipeline>\0<datum key>         DatumInfo: the pipeline's current datums
//   Jf<pipeline>\0<datum key>         (current datums that failed)
//   Jh<pipeline>\0<datum hash>        DatumInfo: a datum hash that succeeded
//   Jo<pipeline>\0<path>\0<datum key> ChunkList: a datum's output at a path
//   Jr<pipeline>                      PipelineRuntime (base of the next diff)
//   Js<pipeline>                      the pipeline's salt (decimal)
// Durable (logged, back after an index rebuild; see JobStore): the Jj, Ji
// and Jk records of ended jobs, Jh and Js. The rest is rebuilt by the first
// job after a rebuild, which reruns nothing that Jh says succeeded.
//   Jl<pipeline>\0<time, 16 hex>\0<job>\0<datum>\0<attempt, 8 hex>
//                                     LogMessage of an attempt, in the order
//                                     written (time: its microseconds since
//                                     the epoch, increasing in write order)
namespace jobkeys {
inline std::string JobPrefix(absl::string_view p) { return absl::StrCat("Jj", p, kNul); }
inline std::string JobKey(absl::string_view p, uint64_t seq) {
  return absl::StrCat(JobPrefix(p), Hex16(seq));
}
// The seq of a JobKey of pipeline `p`; false if `key` is not one.
inline bool ParseJobKey(absl::string_view p, absl::string_view key, uint64_t* seq) {
  return absl::ConsumePrefix(&key, JobPrefix(p)) && ParseHex16(key, seq);
}
inline std::string JobIndexKey(absl::string_view id) { return absl::StrCat("Ji", id); }
inline std::string JobIndexValue(absl::string_view p, uint64_t seq) {
  return absl::StrCat(p, kNul, Hex16(seq));
}
// The pipeline and seq of a JobIndexValue; false if `v` is not one.
inline bool ParseJobIndexValue(absl::string_view v, std::string* p, uint64_t* seq) {
  size_t nul = v.find('\0');
  if (nul == absl::string_view::npos || !ParseHex16(v.substr(nul + 1), seq)) return false;
  *p = std::string(v.substr(0, nul));
  return true;
}
inline std::string CommitSetJobsPrefix(absl::string_view cs) {
  return absl::StrCat("Jk", cs, kNul);
}
inline std::string CommitSetJobKey(absl::string_view cs, absl::string_view id) {
  return absl::StrCat(CommitSetJobsPrefix(cs), id);
}
inline std::string JobDatumPrefix(absl::string_view job) { return absl::StrCat("Jd", job, kNul); }
inline std::string JobDatumKey(absl::string_view job, absl::string_view datum_key) {
  return absl::StrCat(JobDatumPrefix(job), datum_key);
}
inline std::string CurrentPrefix(absl::string_view p) { return absl::StrCat("Jc", p, kNul); }
inline std::string CurrentKey(absl::string_view p, absl::string_view datum_key) {
  return absl::StrCat(CurrentPrefix(p), datum_key);
}
inline std::string FailedPrefix(absl::string_view p) { return absl::StrCat("Jf", p, kNul); }
inline std::string FailedKey(absl::string_view p, absl::string_view datum_key) {
  return absl::StrCat(FailedPrefix(p), datum_key);
}
inline std::string DoneHashPrefix(absl::string_view p) { return absl::StrCat("Jh", p, kNul); }
inline std::string DoneHashKey(absl::string_view p, absl::string_view raw_hash) {
  return absl::StrCat(DoneHashPrefix(p), raw_hash);
}
inline std::string OutputPrefix(absl::string_view p) { return absl::StrCat("Jo", p, kNul); }
inline std::string OutputPathPrefix(absl::string_view p, absl::string_view path) {
  return absl::StrCat(OutputPrefix(p), path, kNul);
}
inline std::string RuntimeKey(absl::string_view p) { return absl::StrCat("Jr", p); }
inline std::string SaltKey(absl::string_view p) { return absl::StrCat("Js", p); }
inline std::string LogPrefix(absl::string_view p) { return absl::StrCat("Jl", p, kNul); }
// Where the logs written at or after `micros` begin.
inline std::string LogTimeKey(absl::string_view p, uint64_t micros) {
  return absl::StrCat(LogPrefix(p), Hex16(micros));
}
inline std::string LogKey(absl::string_view p, uint64_t micros, absl::string_view job,
                          absl::string_view datum, uint32_t attempt) {
  std::string n = Hex16(attempt).substr(8);
  return absl::StrCat(LogTimeKey(p, micros), kNul, job, kNul, datum, kNul, n);
}
// Every datum record that may name an output tree (for GC's mark), and
// every output contribution.
inline constexpr std::array<absl::string_view, 3> kDatumRecordSpaces = {"Jh", "Jc", "Jd"};
inline constexpr char kOutputSpace[] = "Jo";
}  // namespace jobkeys

// ---------------------------------------------------------------------------
// Pipelines (kPipelineSpace) and sources (kSourceSpace)
inline std::string PipelineKey(absl::string_view name) {
  return absl::StrCat(kPipelineSpace, name);
}
inline std::string SourceKey(absl::string_view name) { return absl::StrCat(kSourceSpace, name); }

// Tokens (kTokenSpace), by public id.
inline std::string TokenKey(absl::string_view id) { return absl::StrCat(kTokenSpace, id); }

// S3 multipart uploads (kS3UploadSpace): an upload's record and its parts
// share the prefix S3UploadPrefix(id), so deleting that prefix ends it.
inline std::string S3UploadPrefix(absl::string_view id) {
  return absl::StrCat(kS3UploadSpace, id, "/");
}
inline std::string S3UploadKey(absl::string_view id) { return S3UploadPrefix(id) + "u"; }
inline std::string S3PartKey(absl::string_view id, int part) {
  return absl::StrCat(S3UploadPrefix(id), "p", absl::Dec(part, absl::kZeroPad5));
}

}  // namespace tusk::pfs
