#include "http/sigv4.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/s3.h"

namespace tusk::http {
namespace {

using ::testing::HasSubstr;

// Expected signatures were computed by botocore's S3SigV4Auth (Debian's
// python3-botocore), an independent implementation, for the same requests at
// the same time with the same (AWS documentation example) credentials.
absl::Time When() {
  return absl::FromCivil(absl::CivilSecond(2015, 8, 30, 12, 36, 0), absl::UTCTimeZone());
}

std::string Authorization(const Request& req) {
  for (const auto& [k, v] : req.headers) {
    if (k == "authorization") return v;
  }
  return "";
}

TEST(SigV4Test, UnicodeKeyMatchesBotocore) {
  Credentials c{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
  Request req;
  req.url = "http://127.0.0.1:4568/bucket/" + UriEncode("dir/caf\xc3\xa9 + x.txt", true);
  EXPECT_EQ(req.url, "http://127.0.0.1:4568/bucket/dir/caf%C3%A9%20%2B%20x.txt");
  ASSERT_TRUE(SignV4(c, "us-east-1", "s3", When(), kEmptyPayloadSha256, &req).ok());
  EXPECT_EQ(Authorization(req),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
            "Signature=f7ab60001dee2a68cdff6407b43c43e4baa305c91ae24093a19f2f0f14963396");
}

TEST(SigV4Test, QueryStringIsSortedLikeBotocore) {
  Credentials c{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
  Request req;
  req.url = "http://127.0.0.1:4568/bucket?list-type=2&prefix=" + UriEncode("a/b", false) +
            "&continuation-token=" + UriEncode("x==", false);
  auto parts = SignV4Parts(c, "us-east-1", "s3", When(), kEmptyPayloadSha256, &req);
  ASSERT_TRUE(parts.ok());
  EXPECT_THAT(parts->canonical_request,
              HasSubstr("\n/bucket\ncontinuation-token=x%3D%3D&list-type=2&prefix=a%2Fb\n"));
  EXPECT_THAT(
      Authorization(req),
      HasSubstr("Signature=5a8af174249040eae4161dadd97ba4fda77765c5be67006f162b01e0a7db0810"));
}

TEST(SigV4Test, BodyAndSessionTokenMatchBotocore) {
  Credentials c{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "SESSIONTOKEN"};
  Request req;
  req.method = "PUT";
  req.url = "https://examplebucket.s3.us-east-1.amazonaws.com/" + UriEncode("test$file.text", true);
  req.body = "Welcome to Amazon S3.";
  ASSERT_TRUE(SignV4(c, "us-east-1", "s3", When(),
                     "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072", &req)
                  .ok());
  EXPECT_EQ(Authorization(req),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, "
            "Signature=66bd4f9368725ecfb5daf1f6179d067ebf7d71ed90d58dd265ea5b110a3f224c");
}

TEST(SigV4Test, SigningTwiceReplacesTheSignature) {
  Credentials c{"AK", "SK", ""};
  Request req;
  req.url = "http://h:1/b/k";
  ASSERT_TRUE(SignV4(c, "us-east-1", "s3", When(), kEmptyPayloadSha256, &req).ok());
  size_t n = req.headers.size();
  ASSERT_TRUE(
      SignV4(c, "us-east-1", "s3", When() + absl::Seconds(1), kEmptyPayloadSha256, &req).ok());
  EXPECT_EQ(req.headers.size(), n);
}

TEST(SigV4Test, BadUrl) {
  Request req;
  req.url = "no-scheme/b/k";
  EXPECT_EQ(SignV4({"a", "b", ""}, "r", "s3", When(), kEmptyPayloadSha256, &req).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(S3Test, ParseUrl) {
  auto u = ParseS3Url("s3://bucket/a/b.txt");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->bucket, "bucket");
  EXPECT_EQ(u->key, "a/b.txt");
  EXPECT_EQ(ParseS3Url("s3://bucket")->key, "");
  EXPECT_FALSE(ParseS3Url("s3:///key").ok());
  EXPECT_FALSE(ParseS3Url("http://x/y").ok());
}

TEST(S3Test, StatusFromHttpNamesTheObject) {
  auto st = StatusFromHttp(
      404, "s3://b/k", "<Error><Code>NoSuchKey</Code><Message>The key &amp; all</Message></Error>");
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(st.message(), "s3://b/k: HTTP 404 NoSuchKey (The key & all)");
  EXPECT_EQ(StatusFromHttp(503, "x", "").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusFromHttp(403, "x", "").code(), absl::StatusCode::kPermissionDenied);
}

TEST(HttpTest, UriEncode) {
  EXPECT_EQ(UriEncode("a b/c~d_e-f.g", true), "a%20b/c~d_e-f.g");
  EXPECT_EQ(UriEncode("a/b=c&", false), "a%2Fb%3Dc%26");
}

}  // namespace
}  // namespace tusk::http
