#pragma once

// FileHasher: the content hash tusk gives a file, computed from its bytes
// alone: the SHA-256 of its ChunkList (storage.proto), where the chunks are
// cut by the Chunker with the server's ChunkerOptions and each chunk is named
// by the SHA-256 of its bytes. Equal to FileInfo.hash for a file uploaded
// whole (not appended to) with the same options; the CLI uses it to see
// which local files an open commit already holds.
//
// Not thread-safe; cheap to create; reusable after Finish().

#include <cstdint>

#include "absl/strings/string_view.h"
#include "common/hash.h"
#include "pfs/chunker.h"
#include "proto/storage.pb.h"

namespace tusk::pfs {

// The hash of a chunk list: SHA-256 of its serialization.
Hash ChunkListHash(const storage::v1::ChunkList& list, std::string* serialized = nullptr);

class FileHasher {
 public:
  explicit FileHasher(ChunkerOptions options = {}) : chunker_(options) {}

  void Update(absl::string_view data);
  // The file's hash; resets for the next file.
  Hash Finish();
  uint64_t size() const { return size_; }

 private:
  void EndChunk();

  Chunker chunker_;
  Sha256Hasher chunk_hash_;
  uint64_t chunk_size_ = 0;
  uint64_t size_ = 0;
  storage::v1::ChunkList list_;
};

}  // namespace tusk::pfs
