// The gateway's body decoding: aws-chunked framing (AWS's documented signed
// example), checksums, and XML request documents.

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "gtest/gtest.h"
#include "http/sigv4_examples.h"
#include "http/sigv4_verify.h"
#include "s3gw/checksum.h"
#include "s3gw/chunked.h"
#include "s3gw/xml.h"

namespace tusk::s3gw {
namespace {

// AWS's aws-chunked example (66,560 bytes of 'a'): the request and its
// documented chunk signatures.
http::VerifiedRequest ExampleRequest() {
  auto v = http::VerifySigV4(http::examples::ChunkedUpload(), "s3", http::examples::Time(),
                             http::examples::Secrets());
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : http::VerifiedRequest();
}

std::string ExampleBody() {
  return absl::StrCat(
      "10000;chunk-signature=", http::examples::kChunkSignature1, "\r\n", std::string(65536, 'a'),
      "\r\n400;chunk-signature=", http::examples::kChunkSignature2, "\r\n", std::string(1024, 'a'),
      "\r\n0;chunk-signature=", http::examples::kChunkSignature3, "\r\n\r\n");
}

// Feeds `body` in pieces of `step` bytes; returns the decoded bytes.
absl::StatusOr<std::string> Decode(const std::string& content_sha,
                                   std::optional<http::VerifiedRequest> v, const std::string& body,
                                   size_t step,
                                   std::map<std::string, std::string>* trailers = nullptr) {
  std::string out;
  auto d = AwsChunkedDecoder::Make(content_sha, std::move(v), [&](absl::string_view piece) {
    out.append(piece.data(), piece.size());
    return absl::OkStatus();
  });
  if (!d.ok()) return d.status();
  for (size_t i = 0; i < body.size(); i += step) {
    absl::Status st = (*d)->Feed(absl::string_view(body).substr(i, step));
    if (!st.ok()) return st;
  }
  absl::Status st = (*d)->Finish();
  if (!st.ok()) return st;
  if (trailers) *trailers = (*d)->trailers();
  return out;
}

TEST(AwsChunkedTest, AwsSignedExampleInAnyPieces) {
  EXPECT_EQ(ExampleBody().size(), 66824u);  // the example's Content-Length
  for (size_t step : {1, 7, 100, 4096, 70000}) {
    auto out = Decode("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", ExampleRequest(), ExampleBody(), step);
    ASSERT_TRUE(out.ok()) << step << ": " << out.status();
    EXPECT_EQ(*out, std::string(66560, 'a'));
  }
}

TEST(AwsChunkedTest, ForgedChunksAndCutBodiesFail) {
  std::string forged = ExampleBody();
  forged[200] = 'b';  // a byte of the first chunk
  auto out = Decode("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", ExampleRequest(), forged, 4096);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(http::S3ErrorCode(out.status()), "SignatureDoesNotMatch");
  // Without authentication the signatures cannot be checked, but the
  // framing is still removed.
  out = Decode("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", std::nullopt, forged, 4096);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->size(), 66560u);
  for (size_t cut : {10, 65600, 66700, 66820}) {
    out = Decode("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", ExampleRequest(),
                 ExampleBody().substr(0, cut), 1000);
    ASSERT_FALSE(out.ok()) << cut;
    EXPECT_EQ(http::S3ErrorCode(out.status()), "IncompleteBody") << cut << out.status();
  }
  out = Decode("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", ExampleRequest(), ExampleBody() + "x", 1000);
  EXPECT_EQ(http::S3ErrorCode(out.status()), "IncompleteBody");
  out = Decode("STREAMING-UNSIGNED-PAYLOAD-TRAILER", std::nullopt, "zz\r\nabc", 10);
  EXPECT_EQ(http::S3ErrorCode(out.status()), "IncompleteBody");
  EXPECT_FALSE(Decode("STREAMING-NONSENSE", std::nullopt, "", 1).ok());
}

TEST(AwsChunkedTest, UnsignedWithTrailer) {
  // What boto3 >= 1.36 sends by default.
  std::string body = "5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
  std::map<std::string, std::string> trailers;
  auto out = Decode("STREAMING-UNSIGNED-PAYLOAD-TRAILER", std::nullopt, body, 3, &trailers);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "hello world");
  EXPECT_EQ(trailers["x-amz-checksum-crc32"], "DUoRhQ==");
  auto crc = BodyChecksum::Make("CRC32");
  ASSERT_TRUE(crc.ok());
  (*crc)->Update("hello ");
  (*crc)->Update("world");
  EXPECT_EQ((*crc)->Base64(), "DUoRhQ==");
}

TEST(ChecksumTest, KnownValues) {
  EXPECT_EQ(Crc32(0, "123456789"), 0xCBF43926u);
  EXPECT_EQ(Crc32c(0, "123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32(Crc32(0, "1234"), "56789"), 0xCBF43926u);
  auto md5 = BodyChecksum::Make("md5");
  ASSERT_TRUE(md5.ok());
  EXPECT_EQ((*md5)->Base64(), "1B2M2Y8AsgTpgAmY7PhCfg==");  // MD5 of nothing
  auto sha = BodyChecksum::Make("sha256");
  ASSERT_TRUE(sha.ok());
  (*sha)->Update("abc");
  EXPECT_EQ((*sha)->Base64(), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
  EXPECT_FALSE(BodyChecksum::Make("crc64nvme").ok());
  std::string alg;
  EXPECT_TRUE(IsChecksumHeader("X-Amz-Checksum-CRC32C", &alg));
  EXPECT_EQ(alg, "crc32c");
  EXPECT_FALSE(IsChecksumHeader("x-amz-checksum-algorithm", &alg));
}

TEST(XmlTest, ParsesDocumentsAndRefusesHostileOnes) {
  auto doc = ParseXml(
      "<?xml version=\"1.0\"?><Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Quiet>true</Quiet><Object><Key>a &amp; b</Key></Object><Object><Key>c</Key></Object>"
      "</Delete>");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ((*doc)->name, "Delete");
  EXPECT_EQ((*doc)->ChildText("Quiet"), "true");
  ASSERT_EQ((*doc)->children.size(), 3u);
  EXPECT_EQ((*doc)->children[1]->ChildText("Key"), "a & b");
  for (const std::string& bad : std::vector<std::string>{
           "<Delete>", "", "just text", "<a></b>", "<a/><b/>",
           "<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
           "<!DOCTYPE lol [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]><r>&b;</r>",
           std::string(20, '<') + "a"}) {
    auto r = ParseXml(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(http::S3ErrorCode(r.status()), "MalformedXML") << bad;
  }
  std::string deep;
  for (int i = 0; i < 40; ++i) deep += "<a>";
  for (int i = 0; i < 40; ++i) deep += "</a>";
  EXPECT_FALSE(ParseXml(deep).ok());
  EXPECT_FALSE(ParseXml(std::string(3 << 20, ' ')).ok());
  EXPECT_EQ(XmlEscape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;");
}

}  // namespace
}  // namespace tusk::s3gw
