#pragma once

// Datums: the units of a pipeline's work. A pipeline's input (pfs, cross,
// union, join, group) over a set of input trees yields datums; each datum is
// a list of input files or directories, mounted at /pfs/<name>/<path> when
// it runs.
//
// A datum has a key, its place in datum order (outputs of several datums to
// one path are concatenated in that order), and a hash covering the inputs'
// names, paths and content hashes and the pipeline's salt: a datum whose hash
// succeeded before need not run again.
//
// Pure functions over immutable trees; thread-safe.

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/hash.h"
#include "pfs/tree.h"
#include "proto/pps.pb.h"

namespace tusk::dispatcher {

using pps::v1::DatumInput;
using pps::v1::Input;
using pps::v1::PFSInput;

// One pfs input of a job, resolved to a commit.
struct ResolvedInput {
  std::string commit;  // empty: the branch has no commit yet (an empty tree)
  Hash root;           // zero: empty tree
};

struct Datum {
  std::string key;
  std::vector<DatumInput> inputs;
};

// Inputs by name (PFSInput.name).
using ResolvedInputs = std::map<std::string, ResolvedInput>;

// Every datum of `input`, sorted by key. `resolved` must hold each pfs input.
absl::StatusOr<std::vector<Datum>> ListDatums(pfs::NodeStore* nodes, const Input& input,
                                              const ResolvedInputs& resolved);

// For a pipeline whose input is one pfs input: the keys of the datums that
// differ between the trees `old_root` and `new_root` (added, changed or gone),
// found from the trees' difference alone.
absl::StatusOr<std::set<std::string>> ChangedDatumKeys(pfs::NodeStore* nodes, const PFSInput& input,
                                                       const Hash& old_root, const Hash& new_root);

// The datum of a single pfs input whose key is `key` in `root`, or nullopt if
// the input has no such datum.
absl::StatusOr<std::optional<Datum>> LookupDatum(pfs::NodeStore* nodes, const PFSInput& input,
                                                 const ResolvedInput& resolved,
                                                 const std::string& key);

// The datum's identity: its inputs' names, paths, types and content hashes,
// and `salt`.
Hash DatumHash(uint64_t salt, const Datum& datum);

// Whether `path` (normalized, absolute) matches `glob` (absolute; capture
// parentheses are ignored). '**' matches any number of components.
bool MatchGlobPath(const std::string& glob, const std::string& path);

// The capture groups of `glob` matched against `path` ($1 is [0]); an empty
// vector if the path does not match.
std::vector<std::string> GlobCaptures(const std::string& glob, const std::string& path);

// `key` ("$1-$2") with the captures substituted.
std::string ExpandKey(const std::string& key, const std::vector<std::string>& captures);

}  // namespace tusk::dispatcher
