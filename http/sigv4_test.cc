#include "http/sigv4.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/s3.h"
#include "http/sigv4_examples.h"
#include "http/sigv4_verify.h"

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

namespace tusk::http {
namespace {

// The verifier against AWS's documented examples (S3 API reference,
// "Signature Calculations for the Authorization Header" and "... Query
// String Parameters"): GET /test.txt of examplebucket on 2013-05-24.
constexpr auto& kExampleKey = examples::kKey;
absl::Time ExampleTime() { return examples::Time(); }
SecretLookup ExampleSecrets() { return examples::Secrets(); }

IncomingRequest ExampleGet(const std::string& signature) {
  IncomingRequest r;
  r.method = "GET";
  r.raw_path = "/test.txt";
  r.headers = {
      {"Host", "examplebucket.s3.amazonaws.com"},
      {"Range", "bytes=0-9"},
      {"x-amz-content-sha256", kEmptyPayloadSha256},
      {"x-amz-date", "20130524T000000Z"},
      {"Authorization",
       "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
       "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=" +
           signature}};
  return r;
}

TEST(SigV4VerifyTest, AwsHeaderExample) {
  auto v =
      VerifySigV4(ExampleGet("f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
                  "s3", ExampleTime() + absl::Minutes(3), ExampleSecrets());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->access_key, kExampleKey);
  EXPECT_EQ(v->region, "us-east-1");
  EXPECT_FALSE(v->presigned);
  EXPECT_EQ(v->payload_sha256, kEmptyPayloadSha256);
}

TEST(SigV4VerifyTest, AwsPresignedExample) {
  IncomingRequest r;
  r.method = "GET";
  r.raw_path = "/test.txt";
  r.raw_query =
      "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-"
      "1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders="
      "host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"}};
  auto v = VerifySigV4(r, "s3", ExampleTime() + absl::Hours(23), ExampleSecrets());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->presigned);
  EXPECT_EQ(v->payload_sha256, "UNSIGNED-PAYLOAD");
  // A day and a second later, it has expired.
  auto late =
      VerifySigV4(r, "s3", ExampleTime() + absl::Hours(24) + absl::Seconds(1), ExampleSecrets());
  EXPECT_EQ(S3ErrorCode(late.status()), "AccessDenied");
  EXPECT_THAT(std::string(late.status().message()), HasSubstr("expired"));
}

TEST(SigV4VerifyTest, WhatIsWrongHasS3sCode) {
  const absl::Time t = ExampleTime();
  const std::string good = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
  // Another range than the one signed.
  IncomingRequest r = ExampleGet(good);
  r.headers[1].second = "bytes=0-10";
  EXPECT_EQ(S3ErrorCode(VerifySigV4(r, "s3", t, ExampleSecrets()).status()),
            "SignatureDoesNotMatch");
  // Another path.
  r = ExampleGet(good);
  r.raw_path = "/test.txt2";
  EXPECT_EQ(S3ErrorCode(VerifySigV4(r, "s3", t, ExampleSecrets()).status()),
            "SignatureDoesNotMatch");
  // A wrong secret.
  auto other = [](const std::string&) -> absl::StatusOr<std::string> { return std::string("x"); };
  EXPECT_EQ(S3ErrorCode(VerifySigV4(ExampleGet(good), "s3", t, other).status()),
            "SignatureDoesNotMatch");
  // An unknown key.
  auto none = [](const std::string& k) -> absl::StatusOr<std::string> {
    return absl::NotFoundError(k);
  };
  EXPECT_EQ(S3ErrorCode(VerifySigV4(ExampleGet(good), "s3", t, none).status()),
            "InvalidAccessKeyId");
  // Too far from the server's clock.
  EXPECT_EQ(
      S3ErrorCode(
          VerifySigV4(ExampleGet(good), "s3", t + absl::Minutes(16), ExampleSecrets()).status()),
      "RequestTimeTooSkewed");
  // Not signed, badly signed.
  r = ExampleGet(good);
  r.headers.pop_back();
  auto unsigned_req = VerifySigV4(r, "s3", t, ExampleSecrets());
  EXPECT_EQ(unsigned_req.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(S3ErrorCode(unsigned_req.status()), "AccessDenied");
  r.headers.emplace_back("Authorization", "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=");
  EXPECT_EQ(S3ErrorCode(VerifySigV4(r, "s3", t, ExampleSecrets()).status()),
            "AuthorizationHeaderMalformed");
  r.headers.back().second = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1";
  EXPECT_EQ(S3ErrorCode(VerifySigV4(r, "s3", t, ExampleSecrets()).status()),
            "AuthorizationHeaderMalformed");
}

// What our own signer makes, the verifier accepts, whatever escapes the
// request line uses for the same path and query.
TEST(SigV4VerifyTest, AcceptsOurSignerWithOtherEscapes) {
  Credentials c{"AKIDEXAMPLE", "secret/key+x", ""};
  Request req;
  req.method = "GET";
  req.url = "http://127.0.0.1:9000/repo/" + UriEncode("master~3/dir/caf\xc3\xa9 x.csv", true) +
            "?list-type=2&prefix=" + UriEncode("a/b c", false);
  const absl::Time t = absl::Now();
  ASSERT_TRUE(SignV4(c, "us-east-1", "s3", t, kUnsignedPayload, &req).ok());
  IncomingRequest in;
  in.method = "GET";
  in.raw_path = "/repo/master%7E3/dir/caf%c3%a9%20x.csv";  // '~' escaped, lowercase hex
  in.raw_query = "prefix=a%2Fb%20c&list-type=2";
  for (const auto& [k, v] : req.headers) in.headers.emplace_back(k, v);
  auto secrets = [&](const std::string& k) -> absl::StatusOr<std::string> {
    if (k == c.access_key) return c.secret_key;
    return absl::NotFoundError(k);
  };
  auto v = VerifySigV4(in, "s3", t, secrets);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->payload_sha256, kUnsignedPayload);
  in.raw_query = "prefix=a%2Fb%20d&list-type=2";
  EXPECT_EQ(S3ErrorCode(VerifySigV4(in, "s3", t, secrets).status()), "SignatureDoesNotMatch");
}

}  // namespace
}  // namespace tusk::http

namespace tusk::http {
namespace {

// AWS's documented aws-chunked upload: 66,560 bytes of 'a' in chunks of
// 64 KiB, 1 KiB and the empty final chunk, each signature chained from the
// seed signature of the headers.
TEST(SigV4VerifyTest, AwsChunkedUploadExample) {
  IncomingRequest r = examples::ChunkedUpload();
  auto v = VerifySigV4(r, "s3", ExampleTime(), ExampleSecrets());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->payload_sha256, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
  std::string s1 = ChunkSignature(*v, v->signature, std::string(65536, 'a'));
  EXPECT_EQ(s1, examples::kChunkSignature1);
  std::string s2 = ChunkSignature(*v, s1, std::string(1024, 'a'));
  EXPECT_EQ(s2, examples::kChunkSignature2);
  EXPECT_EQ(ChunkSignature(*v, s2, ""), examples::kChunkSignature3);
}

}  // namespace
}  // namespace tusk::http
