#include "pfs/blob_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "pfs/test_env.h"

namespace tusk::pfs {
namespace {

TEST(BlobStoreTest, PackRoundTripAndFooter) {
  BlobStoreOptions opts;
  opts.pack_size = 64 << 10;
  opts.inline_tail_max = 1 << 10;
  StoreEnv env(1 << 20, opts);
  auto writer = env.blobs->NewWriter();
  std::vector<std::pair<Hash, std::string>> blobs;
  for (int i = 0; i < 300; ++i) {
    std::string data = absl::StrCat("blob number ", i, " ");
    uint64_t x = 88172645463325252ull + i;
    for (int j = 0; j < i * 7; ++j) {  // xorshift: incompressible
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      data.push_back(static_cast<char>(x));
    }
    PreparedBlob b = PrepareBlob(data);
    blobs.push_back({b.hash, data});
    auto added = writer->Add(std::move(b));
    ASSERT_TRUE(added.ok());
    EXPECT_TRUE(*added);
  }
  // A duplicate is not stored twice.
  auto dup = writer->Add(PrepareBlob(blobs[0].second));
  ASSERT_TRUE(dup.ok());
  EXPECT_FALSE(*dup);
  KvBatch batch;
  ASSERT_TRUE(writer->Finish(&batch).ok());
  ASSERT_TRUE(env.kv->Write(&batch, true).ok());
  for (const auto& [h, data] : blobs) {
    auto got = env.blobs->Read(h);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, data);
  }
  // Several packs, each with a footer listing exactly what the index says.
  size_t packs = 0, listed = 0;
  ASSERT_TRUE(env.store
                  ->List("packs/",
                         [&](const std::string& key, uint64_t size) {
                           packs++;
                           // Footer, its length, its checksum, the magic.
                           auto tail = env.store->GetRange(key, size - 20, 20);
                           ASSERT_TRUE(tail.ok());
                           EXPECT_EQ(tail->substr(12), "TUSKPAK2");
                           uint32_t len;
                           memcpy(&len, tail->data(), 4);
                           auto footer_bytes = env.store->GetRange(key, size - 20 - len, len);
                           ASSERT_TRUE(footer_bytes.ok());
                           EXPECT_EQ(Sha256(*footer_bytes).Raw().substr(0, 8), tail->substr(4, 8));
                           storage::v1::PackFooter footer;
                           ASSERT_TRUE(footer.ParseFromString(*footer_bytes));
                           for (const auto& item : footer.items()) {
                             auto h = Hash::FromRaw(item.hash());
                             ASSERT_TRUE(h.ok());
                             auto loc = env.blobs->Locate(*h);
                             ASSERT_TRUE(loc.ok());
                             EXPECT_EQ(loc->offset(), item.offset());
                             EXPECT_EQ(PackKey(loc->pack()), key);
                             listed++;
                           }
                         })
                  .ok());
  EXPECT_GE(packs, 2u);
  EXPECT_EQ(listed, 300u);
}

TEST(BlobStoreTest, InlineBlobsArePackedLater) {
  StoreEnv env;
  auto writer = env.blobs->NewWriter();
  PreparedBlob b = PrepareBlob("small and inline");
  Hash h = b.hash;
  ASSERT_TRUE(writer->Add(std::move(b)).ok());
  KvBatch batch;
  ASSERT_TRUE(writer->Finish(&batch).ok());
  ASSERT_TRUE(env.kv->Write(&batch, true).ok());
  EXPECT_TRUE(env.blobs->Locate(h)->pack().empty());
  EXPECT_GT(env.blobs->pending_bytes(), 0u);
  auto moved = env.blobs->PackPending();
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(*moved, 1u);
  EXPECT_FALSE(env.blobs->Locate(h)->pack().empty());
  EXPECT_EQ(*env.blobs->Read(h), "small and inline");
}

TEST(BlobStoreTest, CorruptionIsDetectedAndNamed) {
  BlobStoreOptions opts;
  opts.inline_tail_max = 0;  // force a pack
  StoreEnv env(1 << 20, opts);
  auto writer = env.blobs->NewWriter();
  std::string data(10000, 'z');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 131) ^ (i >> 3));
  PreparedBlob b = PrepareBlob(data);
  Hash h = b.hash;
  ASSERT_TRUE(writer->Add(std::move(b)).ok());
  KvBatch batch;
  ASSERT_TRUE(writer->Finish(&batch).ok());
  ASSERT_TRUE(env.kv->Write(&batch, true).ok());
  auto loc = env.blobs->Locate(h);
  ASSERT_TRUE(loc.ok());
  ASSERT_FALSE(loc->pack().empty());
  std::string path = env.dir.path() + "/objects/" + PackKey(loc->pack());
  int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  char x = 0x55;
  ASSERT_EQ(::pwrite(fd, &x, 1, static_cast<off_t>(loc->offset() + 100)), 1);
  ::close(fd);
  auto got = env.blobs->Read(h);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(got.status().message().find(h.Hex()), std::string::npos);
  EXPECT_NE(got.status().message().find(PackKey(loc->pack())), std::string::npos);
}

TEST(BlobStoreTest, MissingBlobIsNotFound) {
  StoreEnv env;
  auto got = env.blobs->Read(Sha256("never stored"));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
}

// Large objects take the direct-I/O path (aligned body, cached tail); what
// comes back must be the exact concatenation of the parts whatever the sizes.
TEST(LocalObjectStoreTest, LargeObjectsRoundTrip) {
  TempDir dir;
  auto store = OpenLocalObjectStore(dir.path() + "/objects");
  ASSERT_TRUE(store.ok()) << store.status();
  for (size_t total : {size_t{1} << 20, (size_t{9} << 20) + 123, (size_t{1} << 20) + 4095}) {
    std::vector<std::string> parts;
    std::vector<absl::string_view> views;
    size_t made = 0;
    for (int i = 0; made < total; ++i) {
      size_t n = std::min<size_t>(total - made, 333333 + 7 * i);
      parts.emplace_back(n, static_cast<char>('a' + i % 26));
      made += n;
    }
    std::string whole;
    for (const auto& p : parts) {
      views.push_back(p);
      whole += p;
    }
    std::string key = absl::StrCat("packs/t/", total, ".pack");
    ASSERT_TRUE((*store)->PutParts(key, views).ok());
    auto got = (*store)->Get(key);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->size(), whole.size());
    EXPECT_TRUE(*got == whole) << "content differs for size " << total;
  }
}

}  // namespace
}  // namespace tusk::pfs
