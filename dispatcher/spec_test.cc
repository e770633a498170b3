#include "dispatcher/spec.h"

#include "dispatcher/cron.h"
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
      R"j({"pipeline": {"name": "p"}, "egres": {"URL": "s3://bucket/dir"}})j", &spec);
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("egres"));
}

TEST(SpecTest, EgressIsAnS3UrlWithoutOptions) {
  const std::string base =
      R"j({"pipeline": {"name": "p"}, "transform": {"cmd": ["true"]},
           "input": {"pfs": {"repo": "a", "glob": "/"}}, )j";
  for (const char* ok : {R"j("egress": {"URL": "s3://bucket/dir/"}})j",
                         R"j("egress": {"URL": "s3://my.bucket-1"}})j",
                         R"j("egress": {"object_storage": {"url": "s3://bucket/a/b"}}})j"}) {
    auto spec = Parse(base + ok);
    EXPECT_TRUE(NormalizePipelineSpec(&spec).ok()) << ok;
  }
  auto spec = Parse(base + R"j("egress": {"object_storage": {"url": "s3://b12/x"}}})j");
  ASSERT_TRUE(NormalizePipelineSpec(&spec).ok());
  EXPECT_EQ(EgressUrl(spec), "s3://b12/x");
  ExpectBad(base + R"j("egress": {"URL": "gs://bucket/dir"}})j", "tusk egresses to S3");
  ExpectBad(base + R"j("egress": {"URL": "s3://bucket/dir?endpoint=evil:9000"}})j",
            "not taken from a spec");
  ExpectBad(base + R"j("egress": {"URL": "s3://Bucket_1/dir"}})j", "not an S3 bucket name");
  ExpectBad(base + R"j("egress": {"URL": "s3://bucket/../x"}})j", "'..'");
  ExpectBad(base + R"j("egress": {}})j", "egress: needs URL");
  ExpectBad(base + R"j("egress": {"URL": "s3://bucket", "object_storage": {"url": "s3://b/c"}}})j",
            "not both");
  ExpectBad(base + R"j("egress": {"sql_database": {"url": "snowflake://x"}}})j",
            "egress.sql_database");
}

absl::Time At(const std::string& t) {
  absl::Time out;
  std::string err;
  EXPECT_TRUE(absl::ParseTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone(), &out, &err)) << err;
  return out;
}

std::string Fmt(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

TEST(CronTest, SchedulesTickWhenCronWould) {
  auto next = [](const std::string& spec, const std::string& after) {
    auto s = CronSchedule::Parse(spec);
    EXPECT_TRUE(s.ok()) << spec << ": " << s.status();
    return s.ok() ? Fmt(s->Next(At(after))) : "";
  };
  EXPECT_EQ(next("*/10 * * * *", "2026-11-30T13:55:46Z"), "2026-11-30T14:00:00Z");
  EXPECT_EQ(next("0 0 * * *", "2026-11-30T13:55:46Z"), "2026-12-01T00:00:00Z");
  EXPECT_EQ(next("@hourly", "2026-11-30T13:00:00Z"), "2026-11-30T14:00:00Z");
  EXPECT_EQ(next("30 9 * * mon-fri", "2026-12-04T10:00:00Z"),
            "2026-12-07T09:30:00Z");  // Fri -> Mon
  EXPECT_EQ(next("0 12 1 jan,jul *", "2026-11-30T00:00:00Z"), "2027-01-01T12:00:00Z");
  EXPECT_EQ(next("0 0 * * 7", "2026-11-30T00:00:00Z"), "2026-12-06T00:00:00Z");       // 7: Sunday
  EXPECT_EQ(next("*/15 * * * * *", "2026-11-30T13:55:46Z"), "2026-11-30T13:56:00Z");  // seconds
  // Both days restricted: either matches.
  EXPECT_EQ(next("0 0 13 * fri", "2026-11-30T00:00:00Z"), "2026-12-04T00:00:00Z");
  // @every counts from the start.
  auto every = CronSchedule::Parse("@every 10s");
  ASSERT_TRUE(every.ok());
  const absl::Time start = At("2026-11-30T13:00:03Z");
  EXPECT_EQ(Fmt(every->Next(At("2026-11-30T13:00:20Z"), start)), "2026-11-30T13:00:23Z");
  EXPECT_EQ(Fmt(every->Next(At("2026-11-30T12:00:00Z"), start)), "2026-11-30T13:00:03Z");
  // After a pause, only the latest missed tick.
  EXPECT_EQ(Fmt(every->Latest(At("2026-11-30T13:00:03Z"), At("2026-11-30T14:00:00Z"), start)),
            "2026-11-30T13:59:53Z");
  auto daily = CronSchedule::Parse("@daily");
  ASSERT_TRUE(daily.ok());
  EXPECT_EQ(Fmt(daily->Latest(At("2026-11-01T00:00:00Z"), At("2026-11-30T13:00:00Z"))),
            "2026-11-30T00:00:00Z");
  EXPECT_EQ(daily->Latest(At("2026-11-30T00:00:00Z"), At("2026-11-30T13:00:00Z")),
            absl::InfinitePast());
  // Feb 30 never comes.
  auto never = CronSchedule::Parse("0 0 30 2 *");
  ASSERT_TRUE(never.ok());
  EXPECT_EQ(never->Next(At("2026-11-30T00:00:00Z")), absl::InfiniteFuture());
}

TEST(CronTest, BadSchedulesNameTheField) {
  for (const auto& [spec, mention] :
       std::vector<std::pair<std::string, std::string>>{{"", "empty"},
                                                        {"* * *", "has 3 fields"},
                                                        {"61 * * * *", "minute field '61'"},
                                                        {"* 24 * * *", "hour field '24'"},
                                                        {"* * * foo *", "month field 'foo'"},
                                                        {"*/0 * * * *", "bad step"},
                                                        {"@every 0s", "@every"},
                                                        {"@fortnightly", "@fortnightly"}}) {
    auto s = CronSchedule::Parse(spec);
    ASSERT_FALSE(s.ok()) << spec;
    EXPECT_THAT(std::string(s.status().message()), HasSubstr(mention)) << spec;
  }
}

TEST(SpecTest, CronInputReadsItsRepoAsAPfsInput) {
  PipelineSpec spec;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(
                  R"j({"pipeline": {"name": "p"}, "transform": {"cmd": ["ls"]},
                      "input": {"cross": [{"cron": {"name": "tick", "spec": "@every 10s"}},
                                          {"pfs": {"repo": "a", "glob": "/*"}}]}})j",
                  &spec)
                  .ok());
  ASSERT_TRUE(NormalizePipelineSpec(&spec).ok());
  auto crons = CronInputs(spec.input());
  ASSERT_EQ(crons.size(), 1u);
  EXPECT_EQ(crons[0]->repo(), "p_tick");
  auto pfs = PfsInputs(spec.input());
  ASSERT_EQ(pfs.size(), 2u);
  EXPECT_EQ(pfs[0]->repo(), "p_tick");
  EXPECT_EQ(pfs[0]->name(), "tick");
  EXPECT_EQ(pfs[0]->glob(), "/");
  // Normalizing again changes nothing (update normalizes a stored spec).
  PipelineSpec again = spec;
  ASSERT_TRUE(NormalizePipelineSpec(&again).ok());
  EXPECT_EQ(again.SerializeAsString(), spec.SerializeAsString());
  PipelineSpec bad = spec;
  bad.mutable_input()->mutable_cross(0)->mutable_cron()->set_spec("* * *");
  auto st = NormalizePipelineSpec(&bad);
  EXPECT_THAT(std::string(st.message()), HasSubstr("input.cross[0].cron.spec"));
}

}  // namespace
}  // namespace tusk::dispatcher
