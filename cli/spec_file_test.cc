#include "cli/spec_file.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/ingest.pb.h"

namespace tusk::cli {
namespace {

using ingest::v1::SourceSpec;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::StatusOr<SourceSpec> ParseOne(const std::string& text) {
  auto docs = SpecDocuments(text, "spec.yaml");
  if (!docs.ok()) return docs.status();
  if (docs->size() != 1) return absl::InvalidArgumentError("not one document");
  SourceSpec spec;
  if (auto st = ParseSpecJson((*docs)[0], "spec.yaml", &spec); !st.ok()) return st;
  return spec;
}

TEST(SpecFileTest, YamlSourceSpec) {
  auto spec = ParseOne(R"(
# a Kafka source
name: clicks
kafka:
  brokers: "k1:9092,k2:9092"
  topics: [clicks, views]
  start: LATEST
  config:
    security.protocol: SASL_SSL
    fetch.min.bytes: "1"
repo: events
max_records: 5000
max_latency_ms: 50
layout: HOUR
description: |
  Clicks from the web site,
  one line per record.
)");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name(), "clicks");
  EXPECT_EQ(spec->kafka().brokers(), "k1:9092,k2:9092");
  EXPECT_THAT(spec->kafka().topics(), ElementsAre("clicks", "views"));
  EXPECT_EQ(spec->kafka().start(), ingest::v1::LATEST);
  EXPECT_EQ(spec->kafka().config().at("security.protocol"), "SASL_SSL");
  EXPECT_EQ(spec->kafka().config().at("fetch.min.bytes"), "1");
  EXPECT_EQ(spec->max_records(), 5000u);
  EXPECT_EQ(spec->max_latency_ms(), 50u);
  EXPECT_EQ(spec->layout(), ingest::v1::HOUR);
  EXPECT_EQ(spec->description(), "Clicks from the web site,\none line per record.\n");
}

TEST(SpecFileTest, JsonIsParsedAsJson) {
  auto docs = SpecDocuments(R"(  {"name": "a", "repo": "r", "max_bytes": "1024"})", "s.json");
  ASSERT_TRUE(docs.ok());
  SourceSpec spec;
  ASSERT_TRUE(ParseSpecJson((*docs)[0], "s.json", &spec).ok());
  EXPECT_EQ(spec.max_bytes(), 1024u);
}

TEST(SpecFileTest, ScalarsFollowTheCoreSchema) {
  auto docs = SpecDocuments(
      "a: true\nb: 'true'\nc: null\nd: ~\ne: -12\nf: +3.5\ng: .5\nh: 1e3\ni: 0x1F\nj: yes\nk: "
      "\"x\\ty\"\n"
      "l: 5.\nm:\n",
      "s.yaml");
  ASSERT_TRUE(docs.ok()) << docs.status();
  EXPECT_EQ((*docs)[0], R"({"a":true,"b":"true","c":null,"d":null,"e":-12,"f":3.5,"g":0.5,"h":1e3,)"
                        R"("i":"0x1F","j":"yes","k":"x\ty","l":5.0,"m":null})");
}

TEST(SpecFileTest, SeveralDocuments) {
  auto docs = SpecDocuments("name: a\n---\nname: b\n---\n", "s.yaml");
  ASSERT_TRUE(docs.ok());
  EXPECT_THAT(*docs, ElementsAre(R"({"name":"a"})", R"({"name":"b"})"));
}

TEST(SpecFileTest, SeveralJsonObjectsOrAnArray) {
  // One after another, as pachctl takes them; braces inside strings do not count.
  auto docs = SpecDocuments("{\"name\": \"a}{\"}\n{\"name\": \"b\"}{\"name\": \"c\"}", "s.json");
  ASSERT_TRUE(docs.ok()) << docs.status();
  EXPECT_THAT(*docs, ElementsAre(R"({"name": "a}{"})", R"({"name": "b"})", R"({"name": "c"})"));
  docs = SpecDocuments("[{\"name\": \"a\"}, {\"name\": \"b\"}]\n{\"name\": \"c\"}", "s.json");
  ASSERT_TRUE(docs.ok()) << docs.status();
  EXPECT_THAT(*docs, ElementsAre(R"({"name":"a"})", R"({"name":"b"})", R"({"name": "c"})"));
  // Left open, or something between the objects: an error naming the line.
  docs = SpecDocuments("{\"name\": \"a\"}\n{\"name\": ", "s.json");
  ASSERT_FALSE(docs.ok());
  EXPECT_THAT(std::string(docs.status().message()), HasSubstr("ends inside a value"));
  docs = SpecDocuments("{\"name\": \"a\"},\n{\"name\": \"b\"}", "s.json");
  ASSERT_FALSE(docs.ok());
  EXPECT_THAT(std::string(docs.status().message()), HasSubstr("s.json: line 1: ','"));
  docs = SpecDocuments("[1, 2]", "s.json");
  ASSERT_FALSE(docs.ok());
  EXPECT_THAT(std::string(docs.status().message()), HasSubstr("a mapping of fields"));
}

TEST(SpecFileTest, UnknownFieldIsNamed) {
  auto spec = ParseOne("name: a\nkafka:\n  topicz: [x]\n");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(spec.status().message(), HasSubstr("spec.yaml"));
  EXPECT_THAT(spec.status().message(), HasSubstr("topicz"));
}

TEST(SpecFileTest, WrongTypeIsAnError) {
  auto spec = ParseOne("name: a\nmax_records: many\n");
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(spec.status().message(), HasSubstr("max_records"));
}

TEST(SpecFileTest, SyntaxErrorNamesTheLine) {
  auto docs = SpecDocuments("name: a\nkafka: [x, y\nrepo: r\n", "bad.yaml");
  ASSERT_FALSE(docs.ok());
  EXPECT_THAT(docs.status().message(), HasSubstr("bad.yaml: line "));
}

TEST(SpecFileTest, DuplicateKeyIsAnError) {
  auto docs = SpecDocuments("name: a\nrepo: r\nname: b\n", "dup.yaml");
  ASSERT_FALSE(docs.ok());
  EXPECT_THAT(docs.status().message(), HasSubstr("line 3"));
  EXPECT_THAT(docs.status().message(), HasSubstr("'name' appears twice"));
}

TEST(SpecFileTest, NotAMappingOrEmpty) {
  EXPECT_FALSE(SpecDocuments("- a\n- b\n", "s.yaml").ok());
  EXPECT_FALSE(SpecDocuments("just a string\n", "s.yaml").ok());
  EXPECT_FALSE(SpecDocuments("  \n", "s.yaml").ok());
  EXPECT_FALSE(SpecDocuments("# only a comment\n", "s.yaml").ok());
}

}  // namespace
}  // namespace tusk::cli

namespace tusk::cli {
namespace {

// A "billion laughs": nine levels of aliases, 9^9 strings if expanded. It is
// refused quickly, naming the cause, instead of eating memory.
TEST(SpecFileTest, AliasBombIsRefused) {
  std::string yaml =
      "pipeline: {name: lol}\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i < 9; ++i) {
    std::string prev = "*l" + std::to_string(i - 1);
    yaml += "l" + std::to_string(i) + ": &l" + std::to_string(i) + " [" + prev;
    for (int j = 1; j < 9; ++j) yaml += ", " + prev;
    yaml += "]\n";
  }
  auto docs = SpecDocuments(yaml, "bomb.yaml");
  ASSERT_FALSE(docs.ok());
  EXPECT_THAT(std::string(docs.status().message()), ::testing::HasSubstr("billion laughs"));
  std::string deep = "a: ";
  for (int i = 0; i < 200; ++i) deep += "[";
  for (int i = 0; i < 200; ++i) deep += "]";
  auto nested = SpecDocuments(deep, "deep.yaml");
  ASSERT_FALSE(nested.ok());
  EXPECT_THAT(std::string(nested.status().message()), ::testing::HasSubstr("nests deeper"));
}

}  // namespace
}  // namespace tusk::cli
