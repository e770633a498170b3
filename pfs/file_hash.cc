#include "pfs/file_hash.h"

namespace tusk::pfs {

Hash ChunkListHash(const storage::v1::ChunkList& list, std::string* serialized) {
  std::string bytes = list.SerializeAsString();
  Hash h = Sha256(bytes);
  if (serialized) *serialized = std::move(bytes);
  return h;
}

void FileHasher::Update(absl::string_view data) {
  size_ += data.size();
  while (!data.empty()) {
    Chunker::Result r = chunker_.FindBoundary(data);
    chunk_hash_.Update(data.substr(0, r.consumed));
    chunk_size_ += r.consumed;
    data.remove_prefix(r.consumed);
    if (r.boundary) EndChunk();
  }
}

void FileHasher::EndChunk() {
  auto* ref = list_.add_chunks();
  ref->set_hash(chunk_hash_.Finish().Raw());
  ref->set_size(static_cast<uint32_t>(chunk_size_));
  chunk_size_ = 0;
}

Hash FileHasher::Finish() {
  if (chunk_size_ > 0) EndChunk();
  chunker_.Reset();
  Hash h = ChunkListHash(list_);
  list_.Clear();
  size_ = 0;
  return h;
}

}  // namespace tusk::pfs
