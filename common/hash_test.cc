#include "common/hash.h"

#include <gtest/gtest.h>

namespace tusk {
namespace {

TEST(HashTest, KnownVectors) {
  EXPECT_EQ(Sha256("").Hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256("abc").Hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(HashTest, IncrementalMatchesOneShot) {
  std::string data(100000, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  Sha256Hasher h;
  h.Update(absl::string_view(data).substr(0, 12345));
  h.Update(absl::string_view(data).substr(12345));
  EXPECT_EQ(h.Finish(), Sha256(data));
}

TEST(HashTest, HexRoundTrip) {
  Hash h = Sha256("tusk");
  auto back = Hash::FromHex(h.Hex());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, h);
  EXPECT_FALSE(Hash::FromHex("abc").ok());
  EXPECT_FALSE(Hash::FromHex(std::string(64, 'g')).ok());
  EXPECT_FALSE(Hash::FromRaw("short").ok());
}

}  // namespace
}  // namespace tusk
