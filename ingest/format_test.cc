#include "ingest/format.h"

#include <gtest/gtest.h>

#include "common/utf8.h"

namespace tusk::ingest {
namespace {

TEST(FormatTest, RecordLineWithKeyHeadersAndText) {
  RecordView r;
  r.partition = 3;
  r.offset = 42;
  r.timestamp_ms = 1763712000123;
  r.key = "user-7";
  r.value = "hello \"world\"\n";
  r.headers.emplace_back("trace", std::optional<absl::string_view>("ab12"));
  r.headers.emplace_back("empty", std::nullopt);
  std::string out;
  ASSERT_TRUE(AppendRecordLine(r, ValueFormat::kRaw, "", &out).ok());
  EXPECT_EQ(out,
            "{\"partition\":3,\"offset\":42,\"timestamp\":1763712000123,"
            "\"key\":\"user-7\","
            "\"headers\":[{\"name\":\"trace\",\"value\":\"ab12\"},{"
            "\"name\":\"empty\",\"value\":null}],"
            "\"value\":\"hello \\\"world\\\"\\n\"}\n");
}

TEST(FormatTest, BinaryIsBase64AndNullIsNull) {
  RecordView r;
  r.offset = 1;
  std::string bin("\xff\x00\x01", 3);
  r.key = bin;
  std::string out;
  ASSERT_TRUE(AppendRecordLine(r, ValueFormat::kRaw, "", &out).ok());
  EXPECT_EQ(out, "{\"partition\":0,\"offset\":1,\"key_b64\":\"/wAB\",\"value\":null}\n");
}

TEST(FormatTest, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8("plain ascii text, longer than eight bytes"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("abcdefgh\xe2\x82"));  // truncated
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
}

TEST(FormatTest, ControlCharactersAreEscaped) {
  std::string out;
  AppendJsonString(std::string("a\x01z\t\\", 5), &out);
  EXPECT_EQ(out, "\"a\\u0001z\\t\\\\\"");
}

TEST(FormatTest, JsonValuesAreCompactedOrRejected) {
  std::string out;
  ASSERT_TRUE(CompactJson(" {\"a\" : [1, 2.5e3, -0, true, null],\n \"b\":\"x y\\n\"} ", &out).ok());
  EXPECT_EQ(out, "{\"a\":[1,2.5e3,-0,true,null],\"b\":\"x y\\n\"}");
  for (const char *bad : {"", "{", "[1,]", "{\"a\":1,}", "01", "1.", "\"x", "tru", "{} {}",
                          "\"a\nb\"", "{a:1}", "[1 2]"}) {
    std::string o = "keep";
    auto s = CompactJson(bad, &o);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_EQ(o, "keep") << bad;
    EXPECT_NE(s.message().find("not valid JSON"), std::string::npos);
  }
}

TEST(FormatTest, JsonFormatEmbedsValueAndRejectsBadOnes) {
  RecordView r;
  r.offset = 7;
  r.value = "{ \"n\": 1 }";
  std::string out = "x";
  ASSERT_TRUE(AppendRecordLine(r, ValueFormat::kJson, "", &out).ok());
  EXPECT_EQ(out, "x{\"partition\":0,\"offset\":7,\"value\":{\"n\":1}}\n");
  r.value = "not json";
  out = "x";
  auto s = AppendRecordLine(r, ValueFormat::kJson, "", &out);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(out, "x");
  // As a dead letter the same record is framed raw, with the reason first.
  ASSERT_TRUE(AppendRecordLine(r, ValueFormat::kJson, s.message(), &out).ok());
  EXPECT_EQ(out.rfind("x{\"error\":\"value is not valid JSON: unexpected "
                      "character at byte 0\"",
                      0),
            0u);
  EXPECT_NE(out.find("\"value\":\"not json\""), std::string::npos);
}

TEST(FormatTest, PathsAndKeys) {
  EXPECT_EQ(PartitionFilePath("events", 2, 100, 199), "/events/2/100-199");
  EXPECT_EQ(HourFilePath("events", 1763712000123 / 3600000, 1, 5, 9),
            "/events/2025-11-21/08/1-5-9");
  EXPECT_EQ(DeadLetterPath("events", 0, 3, 3), "/_dead_letter/events/0/3-3");
  EXPECT_EQ(KafkaOffsetKey("events", 1), "state/kafka/events/1/next");
  EXPECT_EQ(KafkaGapKey("events", 1), "kafka/events/1/gap");
  EXPECT_EQ(KafkaLastGapKey("events", 1), "state/kafka/events/1/last_gap");
}

}  // namespace
}  // namespace tusk::ingest
