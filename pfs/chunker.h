#pragma once

// Content-defined chunking (FastCDC with a gear hash and normalized chunking).
//
// A chunk boundary depends only on the bytes since the previous boundary, so an
// insertion or deletion changes only the chunks around it: the boundaries after
// it fall at the same content again. Two files with equal content always get
// equal chunks.
//
// Chunker is a streaming state machine: feed bytes in any pieces with
// FindBoundary(); it returns how many of them belong to the current chunk and
// whether that chunk ended there. Not thread-safe; cheap to create.

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace tusk::pfs {

struct ChunkerOptions {
  size_t min_size = 256 * 1024;
  size_t avg_size = 1024 * 1024;  // must be a power of two
  size_t max_size = 4 * 1024 * 1024;
};

class Chunker {
 public:
  explicit Chunker(ChunkerOptions options = {});

  struct Result {
    size_t consumed;  // bytes of `data` that belong to the current chunk
    bool boundary;    // the current chunk ends after those bytes
  };

  // Scans `data`, which continues the current chunk. If a boundary is found,
  // the state resets for the next chunk and the caller should call again with
  // the rest of `data`.
  Result FindBoundary(absl::string_view data);

  // Bytes in the current (unfinished) chunk.
  size_t current_size() const { return pos_; }
  const ChunkerOptions& options() const { return options_; }

  // Forgets the current chunk (used at the end of a file).
  void Reset() {
    pos_ = 0;
    fp_ = 0;
  }

 private:
  ChunkerOptions options_;
  uint64_t mask_small_;  // harder to match: used before avg_size
  uint64_t mask_large_;  // easier to match: used after avg_size
  size_t pos_ = 0;
  uint64_t fp_ = 0;
};

}  // namespace tusk::pfs
