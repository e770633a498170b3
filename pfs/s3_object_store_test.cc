// The S3 object store and the disk cache against a real S3 server: s3rver on
// loopback, started by tests/e2e/s3_store_test.py, which passes its endpoint
// and bucket in TUSK_TEST_S3_ENDPOINT and TUSK_TEST_S3_BUCKET.

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "pfs/object_store.h"
#include "pfs/test_env.h"

namespace tusk::pfs {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string Random(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t w = rng();
    std::memcpy(s.data() + i, &w, std::min<size_t>(8, n - i));
  }
  return s;
}

class S3StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    endpoint_ = Env("TUSK_TEST_S3_ENDPOINT");
    ASSERT_FALSE(endpoint_.empty()) << "run me through tests/e2e/s3_store_test.py";
    options_.bucket = Env("TUSK_TEST_S3_BUCKET");
    options_.endpoint = endpoint_;
    options_.prefix =
        absl::StrCat(::testing::UnitTest::GetInstance()->current_test_info()->name(), "/");
    options_.access_key = "S3RVER";
    options_.secret_key = "S3RVER";
    options_.part_size = 5 << 20;
    options_.parallelism = 4;
    options_.base_backoff = absl::Milliseconds(10);
    auto s = OpenS3ObjectStore(options_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }

  std::string endpoint_;
  S3StoreOptions options_;
  std::unique_ptr<ObjectStore> store_;
};

TEST_F(S3StoreTest, PutGetRangeSizeDelete) {
  std::string data = Random(100000, 1);
  ASSERT_TRUE(store_->Put("a/b.pack", data).ok());
  EXPECT_EQ(*store_->Get("a/b.pack"), data);
  EXPECT_EQ(*store_->GetRange("a/b.pack", 1000, 5000), data.substr(1000, 5000));
  EXPECT_EQ(*store_->Size("a/b.pack"), data.size());
  auto past = store_->GetRange("a/b.pack", 99000, 2000);
  EXPECT_EQ(past.status().code(), absl::StatusCode::kOutOfRange) << past.status();
  auto missing = store_->Get("a/none");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("a/none"), std::string::npos) << missing.status();
  ASSERT_TRUE(store_->Delete("a/b.pack").ok());
  EXPECT_TRUE(store_->Delete("a/b.pack").ok());  // absent: still OK
  EXPECT_EQ(store_->Size("a/b.pack").status().code(), absl::StatusCode::kNotFound);
  // Empty objects.
  ASSERT_TRUE(store_->Put("empty", "").ok());
  EXPECT_EQ(*store_->Size("empty"), 0u);
  EXPECT_EQ(*store_->Get("empty"), "");
  EXPECT_EQ(store_->Put("../escape", "x").code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(S3StoreTest, MultipartUploadIsOneObject) {
  std::string data = Random(13 << 20, 2);  // 3 parts of 5 MiB (the last smaller)
  ObjectStoreStats before = store_->Stats();
  ASSERT_TRUE(store_
                  ->PutParts("big.pack", {absl::string_view(data).substr(0, 7 << 20),
                                          absl::string_view(data).substr(7 << 20)})
                  .ok());
  ObjectStoreStats after = store_->Stats();
  EXPECT_EQ(after.puts() - before.puts(), 5u);  // create, 3 parts, complete
  EXPECT_EQ(*store_->Size("big.pack"), data.size());
  EXPECT_EQ(*store_->GetRange("big.pack", (5 << 20) - 10, 20), data.substr((5 << 20) - 10, 20));
  EXPECT_EQ(*store_->Get("big.pack"), data);
}

TEST_F(S3StoreTest, ListPagesThroughMoreThanAThousandKeys) {
  // S3 answers at most 1000 keys per request: 1100 need a continuation.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < 1100; i += 4) {
        ASSERT_TRUE(store_->Put(absl::StrFormat("many/%05d", i), absl::StrCat(i)).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(store_->Put("other/x", "y").ok());
  std::vector<std::string> keys;
  uint64_t bytes = 0;
  ObjectStoreStats before = store_->Stats();
  absl::Status listed = store_->List("many/", [&](const std::string& k, uint64_t size) {
    keys.push_back(k);
    bytes += size;
  });
  ASSERT_TRUE(listed.ok()) << listed;
  ASSERT_EQ(keys.size(), 1100u);
  EXPECT_EQ(keys.front(), "many/00000");
  EXPECT_EQ(keys.back(), "many/01099");
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_EQ(store_->Stats().lists() - before.lists(), 1u);
}

TEST_F(S3StoreTest, MissingBucketIsAClearError) {
  S3StoreOptions bad = options_;
  bad.bucket = "no-such-bucket";
  auto s = OpenS3ObjectStore(bad);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound) << s.status();
  EXPECT_NE(s.status().message().find("no-such-bucket"), std::string::npos) << s.status();
}

TEST_F(S3StoreTest, CacheServesRepeatedReadsAndSurvivesDamage) {
  TempDir dir;
  std::string data = Random(3 << 20, 3);
  ASSERT_TRUE(store_->Put("c.pack", data).ok());
  ObjectStore* remote = store_.get();
  CacheOptions co;
  co.dir = dir.path() + "/cache";
  co.max_bytes = (2 << 20) + 4096;  // room for one 2 MiB range, not two
  auto cached = OpenCachedObjectStore(std::move(store_), co);
  ASSERT_TRUE(cached.ok()) << cached.status();
  ObjectStore* c = cached->get();
  uint64_t gets0 = remote->Stats().gets();
  EXPECT_EQ(*c->GetRange("c.pack", 0, 1 << 20), data.substr(0, 1 << 20));
  EXPECT_EQ(*c->GetRange("c.pack", 0, 1 << 20), data.substr(0, 1 << 20));
  EXPECT_EQ(remote->Stats().gets() - gets0, 1u);  // the second read: no request
  EXPECT_EQ(c->Stats().cache_hits(), 1u);
  // Damage every cache entry: a damaged entry is a miss, read again.
  for (const auto& e : std::filesystem::directory_iterator(co.dir)) {
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x7f');
  }
  EXPECT_EQ(*c->GetRange("c.pack", 0, 1 << 20), data.substr(0, 1 << 20));
  EXPECT_EQ(remote->Stats().gets() - gets0, 2u);
  // A 2 MiB range evicts the 1 MiB one: the cache stays within its bound.
  EXPECT_EQ(*c->GetRange("c.pack", 1 << 20, 2 << 20), data.substr(1 << 20, 2 << 20));
  uint64_t on_disk = 0;
  for (const auto& e : std::filesystem::directory_iterator(co.dir)) on_disk += e.file_size();
  EXPECT_LE(on_disk, co.max_bytes);
  EXPECT_EQ(*c->GetRange("c.pack", 0, 1 << 20), data.substr(0, 1 << 20));
  EXPECT_EQ(remote->Stats().gets() - gets0, 4u);
  // Prefetch fills the cache in the background; the read then waits for it
  // or hits, and either way makes no second request.
  c->Prefetch("c.pack", 7, 1000);
  EXPECT_EQ(*c->GetRange("c.pack", 7, 1000), data.substr(7, 1000));
  EXPECT_EQ(remote->Stats().gets() - gets0, 5u);
  // Found again after a restart.
  cached->reset();
  auto again_remote = OpenS3ObjectStore(options_);
  ASSERT_TRUE(again_remote.ok());
  ObjectStore* r2 = again_remote->get();
  auto again = OpenCachedObjectStore(std::move(*again_remote), co);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*(*again)->GetRange("c.pack", 7, 1000), data.substr(7, 1000));
  EXPECT_EQ(r2->Stats().gets(), 0u);
}

}  // namespace
}  // namespace tusk::pfs
