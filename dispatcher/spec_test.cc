#include "dispatcher/spec.h"

#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace tusk::dispatcher {
namespace {

using ::testing::HasSubstr;

PipelineSpec Parse(const std::string& json) {
  PipelineSpec spec;
  auto st = google::protobuf::util::JsonStringToMessage(json, &spec);
  EXPECT_TRUE(st.ok()) << st.message();
  return spec;
}

// A Pachyderm spec, field for field as Pachyderm's documentation writes them.
TEST(SpecTest, PachydermSpecParsesAndGetsDefaults) {
  auto spec = Parse(R"j({
    "pipeline": {"name": "edges"},
    "description": "A pipeline that finds edges.",
    "transform": {"cmd": ["python3", "/edges.py"], "image": "pachyderm/opencv",
                  "env": {"MODE": "fast"}, "working_dir": "/", "stdin": ["x"]},
    "input": {"pfs": {"repo": "images", "glob": "/*", "lazy": true}},
    "parallelism_spec": {"constant": 2},
    "datum_timeout": "60s",
    "job_timeout": "3600s"
  })j");
  ASSERT_TRUE(NormalizePipelineSpec(&spec).ok());
  EXPECT_EQ(spec.input().pfs().name(), "images");
  EXPECT_EQ(spec.input().pfs().branch(), "master");
  EXPECT_EQ(spec.datum_tries(), 3);
  EXPECT_EQ(spec.output_branch(), "master");
  EXPECT_EQ(spec.parallelism_spec().constant(), 2u);
  EXPECT_EQ(spec.datum_timeout().seconds(), 60);
}

TEST(SpecTest, CrossJoinGroupUnion) {
  auto spec = Parse(R"j({
    "pipeline": {"name": "p"}, "transform": {"cmd": ["true"]},
    "input": {"cross": [
      {"join": [{"pfs": {"repo": "a", "glob": "/(*).txt", "join_on": "$1"}},
                {"pfs": {"repo": "b", "glob": "/(*).csv", "join_on": "$1", "outer_join": true}}]},
      {"union": [{"pfs": {"repo": "c", "glob": "/*"}}, {"pfs": {"repo": "c", "glob": "/x/*"}}]},
      {"group": [{"pfs": {"repo": "d", "glob": "/(*)-(*)", "group_by": "$2$1"}}]}
    ]}
  })j");
  auto st = NormalizePipelineSpec(&spec);
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_EQ(PfsInputs(spec.input()).size(), 5u);
}

void ExpectBad(const std::string& json, const std::string& mention) {
  auto spec = Parse(json);
  auto st = NormalizePipelineSpec(&spec);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << json;
  EXPECT_THAT(st.message(), HasSubstr(mention)) << json;
}

TEST(SpecTest, ErrorsNameTheField) {
  const std::string cmd = R"j("transform": {"cmd": ["true"]})j";
  ExpectBad(R"j({"transform": {"cmd": ["true"]}, "input": {"pfs": {"repo": "a", "glob": "/"}}})j",
            "pipeline.name");
  ExpectBad(R"j({"pipeline": {"name": "bad name"}, )j" + cmd +
                R"j(, "input": {"pfs": {"repo": "a", "glob": "/"}}})j",
            "pipeline.name");
  ExpectBad(R"j({"pipeline": {"name": "p"}, "input": {"pfs": {"repo": "a", "glob": "/"}}})j",
            "transform.cmd");
  ExpectBad(R"j({"pipeline": {"name": "p"}, )j" + cmd + "}", "input: is required");
  ExpectBad(R"j({"pipeline": {"name": "p"}, )j" + cmd + R"j(, "input": {"pfs": {"repo": "a"}}})j",
            "input.pfs.glob");
  ExpectBad(R"j({"pipeline": {"name": "p"}, )j" + cmd +
                R"j(, "input": {"pfs": {"repo": "a", "glob": "/[ab"}}})j",
            "input.pfs.glob");
  ExpectBad(R"j({"pipeline": {"name": "p"}, )j" + cmd +
                R"j(, "input": {"pfs": {"repo": "a", "glob": "/(*"}}})j",
            "unmatched '('");
  ExpectBad(R"j({"pipeline": {"name": "p"}, )j" + cmd +
                R"j(, "input": {"pfs": {"repo": "a", "glob": "/../*"}}})j",
            "'..'");
  ExpectBad(R"j({"pipeline": {"name": "p"}, )j" + cmd +
                R"j(, "input": {"pfs": {"repo": "p", "glob": "/"}}})j",
            "cycle");
  ExpectBad(
      R"j({"pipeline": {"name": "p"}, )j" + cmd +
          R"j(, "input": {"cross": [{"pfs": {"repo": "a", "glob": "/"}}, {"pfs": {"repo": "a", "glob": "/*"}}]}})j",
      "two inputs are named 'a'");
  ExpectBad(
      R"j({"pipeline": {"name": "p"}, )j" + cmd +
          R"j(, "input": {"join": [{"pfs": {"repo": "a", "glob": "/(*)"}}, {"pfs": {"repo": "b", "glob": "/(*)", "join_on": "$1"}}]}})j",
      "input.join[0].pfs.join_on: is required");
  ExpectBad(
      R"j({"pipeline": {"name": "p"}, )j" + cmd +
          R"j(, "input": {"join": [{"pfs": {"repo": "a", "glob": "/(*)", "join_on": "$2"}}]}})j",
      "refers to group 2 but the glob has 1 capture group");
  ExpectBad(R"j({"pipeline": {"name": "p"}, )j" + cmd +
                R"j(, "input": {"pfs": {"repo": "a", "glob": "/*", "join_on": "$1"}}})j",
            "only applies to the inputs of a join");
  ExpectBad(R"j({"pipeline": {"name": "p"}, )j" + cmd +
                R"j(, "input": {"pfs": {"repo": "a", "glob": "/", "name": "out"}}})j",
            "reserved");
  ExpectBad(
      R"j({"pipeline": {"name": "p"}, )j" + cmd +
          R"j(, "input": {"pfs": {"repo": "a", "glob": "/"}, "cross": [{"pfs": {"repo": "b", "glob": "/"}}]}})j",
      "more than one");
  ExpectBad(R"j({"pipeline": {"name": "p"}, )j" + cmd +
                R"j(, "input": {"pfs": {"repo": "a", "glob": "/"}}, "datum_tries": -1})j",
            "datum_tries");
  ExpectBad(R"j({"pipeline": {"name": "p"}, )j" + cmd +
                R"j(, "input": {"pfs": {"repo": "a", "glob": "/"}}, "datum_timeout": "-5s"})j",
            "datum_timeout");
}

TEST(SpecTest, UnknownPachydermFieldIsAnErrorThatNamesIt) {
  PipelineSpec spec;
  auto st = google::protobuf::util::JsonStringToMessage(
      R"j({"pipeline": {"name": "p"}, "egress": {"URL": "s3://bucket/dir"}})j", &spec);
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("egress"));
}

}  // namespace
}  // namespace tusk::dispatcher
