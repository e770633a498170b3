#include "s3gw/address.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/sigv4_verify.h"

namespace tusk::s3gw {
namespace {

TEST(AddressTest, PathAndVirtualHostStyle) {
  auto t = ParseTarget("127.0.0.1:9000", "/sales/master~7/orders/2026.csv", "");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->bucket, "sales");
  EXPECT_EQ(t->key, "master~7/orders/2026.csv");
  EXPECT_FALSE(t->virtual_host);
  t = ParseTarget("Sales.S3.Example.COM:443", "/master/a.csv", "s3.example.com");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->bucket, "Sales");
  EXPECT_EQ(t->key, "master/a.csv");
  EXPECT_TRUE(t->virtual_host);
  // The service (ListBuckets), and a bucket.
  t = ParseTarget("localhost:9000", "/", "s3.example.com");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->bucket, "");
  t = ParseTarget("localhost", "/sales", "");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->bucket, "sales");
  EXPECT_EQ(t->key, "");
}

TEST(AddressTest, LakeFsStyleRefs) {
  auto a = ResolveBucketKey("sales", "master~7/orders/2026.csv");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->repo, "sales");
  EXPECT_EQ(a->ref, "master~7");
  EXPECT_EQ(a->path, "orders/2026.csv");
  EXPECT_TRUE(a->read_only);
  a = ResolveBucketKey("sales", "dev/dir/");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->ref, "dev");
  EXPECT_EQ(a->path, "dir/");
  EXPECT_FALSE(a->read_only);
  a = ResolveBucketKey("sales", "0123456789abcdef0123456789abcdef/x");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->read_only);
  a = ResolveBucketKey("sales", "");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->ref, "");
  EXPECT_FALSE(a->pachyderm_style);
}

TEST(AddressTest, PachydermStyleBuckets) {
  auto a = ResolveBucketKey("master.images", "dir/a.png");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->repo, "images");
  EXPECT_EQ(a->ref, "master");
  EXPECT_EQ(a->path, "dir/a.png");
  EXPECT_TRUE(a->pachyderm_style);
  EXPECT_FALSE(a->read_only);
  a = ResolveBucketKey("release.v1.images", "a.png");  // a branch with a dot
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->ref, "release.v1");
  a = ResolveBucketKey("0123456789abcdef0123456789abcdef.master.images", "a.png");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->ref, "0123456789abcdef0123456789abcdef");
  EXPECT_TRUE(a->read_only);
}

TEST(AddressTest, BadInputHasS3sCode) {
  auto code = [](const std::string& bucket, const std::string& key) {
    return http::S3ErrorCode(ResolveBucketKey(bucket, key).status());
  };
  EXPECT_EQ(code("-bad", "master/x"), "InvalidBucketName");
  EXPECT_EQ(code("master.", "x"), "InvalidBucketName");
  EXPECT_EQ(code(".repo", "x"), "InvalidBucketName");
  EXPECT_EQ(code("sales", "master/../etc/passwd"), "InvalidArgument");
  EXPECT_EQ(code("sales", "master/./x"), "InvalidArgument");
  EXPECT_EQ(code("sales", std::string("master/a\0b", 10)), "InvalidArgument");
  EXPECT_EQ(code("sales", "master/\xff\xfe"), "InvalidArgument");
  EXPECT_EQ(code("sales", "no..such/x"), "InvalidArgument");
  EXPECT_EQ(code("master.images", "../x"), "InvalidArgument");
}

}  // namespace
}  // namespace tusk::s3gw
