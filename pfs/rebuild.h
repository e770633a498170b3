#pragma once

// Index rebuild: recreates the RocksDB index of a data directory from the
// object store alone. The object store holds, for every change to repos,
// branches and commits, a log pack (see PackFooter.log) with the change and
// the small blobs it needed, and every blob lives in a pack whose footer lists
// it. The rebuild reads the latest checkpoint (meta/checkpoint-<seq>), then
// every pack footer: each blob becomes a location record, and each log newer
// than the checkpoint is replayed in sequence order.
//
// What does not come back: open commits (never durable by design) and
// another component's records that were not logged.

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "pfs/object_store.h"

namespace tusk::pfs {

struct RebuildStats {
  uint64_t packs = 0, blobs = 0, logs = 0, repos = 0, branches = 0, commits = 0, records = 0;
  uint64_t damaged_packs = 0;  // skipped: their footer is truncated or corrupt
  // Their footer is damaged but parses: their blobs were recovered (each
  // checked against its content), their logs not applied.
  uint64_t recovered_packs = 0, recovered_blobs = 0, untrusted_logs = 0;
  uint64_t void_logs = 0;  // logs whose change never reached the index
  uint64_t checkpoint_seq = 0, last_seq = 0;
};

// Builds a new index in data_dir/index.rebuild from `store`, then puts it in
// place of data_dir/index (an existing index is renamed to
// data_dir/index.old-<unix time>, not deleted). `progress` (may be empty)
// gets a line now and then. A pack whose footer is unreadable is skipped (and
// counted), not fatal: the rest of the history comes back. A pack whose footer
// parses but fails its checksum gives what its blobs vouch for (see
// RecoverPackFooter), reported.
absl::StatusOr<RebuildStats> RebuildIndex(ObjectStore* store, const std::string& data_dir,
                                          const std::function<void(const std::string&)>& progress);

}  // namespace tusk::pfs
