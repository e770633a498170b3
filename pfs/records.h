#pragma once

// Helpers for the index records and log events of repos, branches and
// commits, shared by pfs's files. Internal to pfs.

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "common/proto_util.h"
#include "pfs/kv.h"
#include "proto/pfs.pb.h"
#include "proto/storage.pb.h"

namespace tusk::pfs {

// (repo, id) pairs from keys "<prefix><repo>\0<id>".
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ScanCommitPairs(
    Kv* kv, const std::string& prefix);
// A commit's root tree hash (zero for an empty tree).
absl::StatusOr<Hash> RootHash(const v1::CommitInfo& c);

// Log events: the durable part of each record.
storage::v1::MetaEvent RepoEvent(const v1::RepoInfo& r);
storage::v1::MetaEvent BranchEvent(const v1::BranchInfo& b);
storage::v1::MetaEvent CommitEvent(const v1::CommitInfo& c);

template <typename T>
absl::StatusOr<T> Parse(const std::string& bytes, absl::string_view what) {
  return ParseProto<T>(bytes, absl::StrCat("index record of ", what));
}

}  // namespace tusk::pfs
