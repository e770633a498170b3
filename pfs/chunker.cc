#include "pfs/chunker.h"

#include <algorithm>
#include <array>
#include <bit>

namespace tusk::pfs {
namespace {

// The gear table: 256 pseudo-random 64-bit values from a fixed seed. Changing it
// changes every chunk boundary (and so all deduplication against old data), so it
// is part of the storage format.
constexpr std::array<uint64_t, 256> MakeGearTable() {
  std::array<uint64_t, 256> table{};
  uint64_t state = 0x7475736b2d636463ull;  // "tusk-cdc"
  for (auto& v : table) {
    // splitmix64
    state += 0x9e3779b97f4a7c15ull;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    v = z ^ (z >> 31);
  }
  return table;
}

constexpr std::array<uint64_t, 256> kGear = MakeGearTable();

// A mask with `bits` one-bits spread over the upper 48 bits of the word, so the
// bits tested are influenced by many input bytes (the gear hash shifts left).
uint64_t SpreadMask(int bits) {
  uint64_t mask = 0;
  int placed = 0;
  for (int i = 63; i >= 16 && placed < bits; i -= 2) {
    mask |= uint64_t{1} << i;
    ++placed;
  }
  for (int i = 62; i >= 16 && placed < bits; i -= 2) {
    mask |= uint64_t{1} << i;
    ++placed;
  }
  return mask;
}

}  // namespace

Chunker::Chunker(ChunkerOptions options) : options_(options) {
  int bits = std::countr_zero(options_.avg_size);
  // Normalized chunking (level 2): two more bits before the average size, two
  // fewer after, which narrows the chunk size distribution.
  mask_small_ = SpreadMask(bits + 2);
  mask_large_ = SpreadMask(bits - 2);
}

Chunker::Result Chunker::FindBoundary(absl::string_view data) {
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  size_t n = data.size();
  size_t i = 0;
  // No boundary can fall before min_size: skip those bytes without hashing.
  if (pos_ < options_.min_size) {
    size_t skip = options_.min_size - pos_;
    if (skip >= n) {
      pos_ += n;
      return {n, false};
    }
    i = skip;
    pos_ = options_.min_size;
  }
  uint64_t fp = fp_;
  size_t start = i;
  // Each phase runs over a precomputed range so the inner loop has one bound
  // check and one mask test per byte.
  auto found = [&](size_t at) {
    Reset();
    return Result{at + 1, true};
  };
  // Phase 1: up to avg_size with the strict mask.
  if (pos_ < options_.avg_size) {
    size_t end = i + std::min(n - i, options_.avg_size - pos_);
    for (; i < end; ++i) {
      fp = (fp << 1) + kGear[p[i]];
      if ((fp & mask_small_) == 0) return found(i);
    }
  }
  // Phase 2: up to max_size with the loose mask; max_size itself is a boundary.
  size_t pos_at_i = pos_ + (i - start);
  if (i < n) {
    size_t to_max = options_.max_size - pos_at_i;  // >= 1: pos never reaches max here
    size_t end = i + std::min(n - i, to_max);
    for (; i < end; ++i) {
      fp = (fp << 1) + kGear[p[i]];
      if ((fp & mask_large_) == 0) return found(i);
    }
    if (end - start + pos_ == options_.max_size) return found(end - 1);
  }
  fp_ = fp;
  pos_ += n - start;
  return {n, false};
}

}  // namespace tusk::pfs
