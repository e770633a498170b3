#include "pfs/chunker.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

namespace tusk::pfs {
namespace {

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    for (size_t j = 0; j < 8 && i + j < n; ++j) s[i + j] = static_cast<char>(v >> (8 * j));
  }
  return s;
}

// Chunks `data` feeding it in pieces of `piece` bytes; returns chunk lengths.
std::vector<size_t> Chunk(const std::string& data, size_t piece, ChunkerOptions opts = {}) {
  Chunker c(opts);
  std::vector<size_t> out;
  size_t cur = 0;
  for (size_t off = 0; off < data.size(); off += piece) {
    absl::string_view rest = absl::string_view(data).substr(off, piece);
    while (!rest.empty()) {
      auto r = c.FindBoundary(rest);
      cur += r.consumed;
      rest.remove_prefix(r.consumed);
      if (r.boundary) {
        out.push_back(cur);
        cur = 0;
      }
    }
  }
  if (cur > 0) out.push_back(cur);
  return out;
}

ChunkerOptions Small() { return ChunkerOptions{2048, 8192, 32768}; }

TEST(ChunkerTest, SizesWithinBounds) {
  std::string data = RandomBytes(4 << 20, 1);
  auto sizes = Chunk(data, 1 << 20, Small());
  size_t total = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    total += sizes[i];
    if (i + 1 < sizes.size()) {
      EXPECT_GE(sizes[i], 2048u);
      EXPECT_LE(sizes[i], 32768u);
    }
  }
  EXPECT_EQ(total, data.size());
  // The average is near the target.
  double avg = static_cast<double>(data.size()) / sizes.size();
  EXPECT_GT(avg, 4096);
  EXPECT_LT(avg, 16384);
}

TEST(ChunkerTest, IndependentOfFeedPieces) {
  std::string data = RandomBytes(1 << 20, 2);
  auto a = Chunk(data, data.size(), Small());
  auto b = Chunk(data, 1, Small());
  auto c = Chunk(data, 4097, Small());
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
}

std::set<std::string> ChunkSet(const std::string& data) {
  auto sizes = Chunk(data, 65536, Small());
  std::set<std::string> out;
  size_t off = 0;
  for (size_t s : sizes) {
    out.insert(data.substr(off, s));
    off += s;
  }
  return out;
}

TEST(ChunkerTest, BoundariesStableUnderInsertAndDelete) {
  std::string data = RandomBytes(2 << 20, 3);
  auto before = ChunkSet(data);
  for (int trial = 0; trial < 5; ++trial) {
    std::string changed = data;
    size_t at = (trial + 1) * data.size() / 7;
    if (trial % 2 == 0) {
      changed.insert(at, RandomBytes(100 + trial, 10 + trial));
    } else {
      changed.erase(at, 1000);
    }
    auto after = ChunkSet(changed);
    size_t fresh = 0;
    for (const auto& c : after) fresh += before.count(c) ? 0 : 1;
    // Only the chunks around the edit change (a few), not everything after it.
    EXPECT_LE(fresh, 3u) << "trial " << trial;
    EXPECT_GT(after.size(), 100u);
  }
}

TEST(ChunkerTest, DefaultOptionsOnLargeInput) {
  std::string data = RandomBytes(24 << 20, 4);
  auto sizes = Chunk(data, 1 << 20);
  for (size_t i = 0; i + 1 < sizes.size(); ++i) {
    EXPECT_GE(sizes[i], 256u << 10);
    EXPECT_LE(sizes[i], 4u << 20);
  }
  EXPECT_GE(sizes.size(), 8u);
  EXPECT_LE(sizes.size(), 60u);
}

// Chunk boundaries are part of the storage format (dedup against stored data
// depends on them): these pin them for a fixed input, whatever the feed sizes.
TEST(ChunkerTest, BoundariesArePinned) {
  std::string data = RandomBytes(3 << 20, 42);
  for (size_t piece : {size_t{1000}, size_t{65536}, data.size()}) {
    auto sizes = Chunk(data, piece, Small());
    ASSERT_GE(sizes.size(), 8u);
    EXPECT_EQ(std::vector<size_t>(sizes.begin(), sizes.begin() + 8),
              (std::vector<size_t>{10808, 10137, 11261, 9770, 11374, 12915, 9455, 9133}))
        << piece;
  }
  // Runs of zeros never match a mask: max_size cuts them.
  std::string zeros_then_random = std::string(100000, '\0') + RandomBytes(40000, 3);
  EXPECT_EQ(Chunk(zeros_then_random, 7000, Small()),
            (std::vector<size_t>{32768, 32768, 32768, 11367, 13369, 10240, 6720}));
  EXPECT_EQ(Chunk(std::string(10 << 20, '\0'), 999999),
            (std::vector<size_t>{4 << 20, 4 << 20, 2 << 20}));
  std::string big = RandomBytes(24 << 20, 7);
  EXPECT_EQ(
      Chunk(big, 1 << 20),
      (std::vector<size_t>{1383954, 731163,  1002336, 1060467, 858685,  1228398, 1277658, 1181231,
                           1490989, 625524,  1479196, 1118022, 1077699, 1849789, 698663,  1422942,
                           1285835, 1172066, 1242541, 1125115, 1384291, 469260}));
}

}  // namespace
}  // namespace tusk::pfs
