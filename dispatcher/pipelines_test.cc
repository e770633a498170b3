#include "dispatcher/pipelines.h"

#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "pfs/test_env.h"

namespace tusk::dispatcher {
namespace {

using ::testing::HasSubstr;

class PipelinesTest : public pfs::PfsFixture {
 protected:
  void SetUp() override {
    pfs::PfsFixture::SetUp();
    ASSERT_TRUE(pfs_->CreateRepo("text", "").ok());
    pipelines_ = std::make_unique<Pipelines>(pfs_.get());
  }

  static PipelineSpec Spec(const std::string& name, const std::string& repo) {
    PipelineSpec spec;
    auto st = google::protobuf::util::JsonStringToMessage(
        R"({"pipeline": {"name": ")" + name +
            R"("}, "transform": {"cmd": ["cp", "-r", "/pfs", "/pfs/out"]},
            "input": {"pfs": {"repo": ")" +
            repo + R"(", "glob": "/*"}}})",
        &spec);
    EXPECT_TRUE(st.ok());
    return spec;
  }

  std::unique_ptr<Pipelines> pipelines_;
};

TEST_F(PipelinesTest, CreateChainUpdateDelete) {
  auto a = pipelines_->Create(Spec("map", "text"), false);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->version(), 1u);
  EXPECT_EQ(a->state(), pps::v1::RUNNING);
  EXPECT_TRUE(pfs_->InspectRepo("map").ok());  // the output repo
  ASSERT_TRUE(pipelines_->Create(Spec("reduce", "map"), false).ok());
  EXPECT_EQ(pipelines_->Create(Spec("map", "text"), false).status().code(),
            absl::StatusCode::kAlreadyExists);
  auto u = pipelines_->Create(Spec("map", "text"), true);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->version(), 2u);
  // map -> reduce -> map would be a cycle.
  auto cyc = pipelines_->Create(Spec("map", "reduce"), true);
  EXPECT_EQ(cyc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(cyc.status().message(), HasSubstr("map <- reduce <- map"));
  EXPECT_EQ(pipelines_->Create(Spec("x", "nope"), false).status().code(),
            absl::StatusCode::kNotFound);
  // A plain repo's name is taken; the check comes after the cycle check.
  ASSERT_TRUE(pfs_->CreateRepo("other", "").ok());
  auto taken = pipelines_->Create(Spec("text", "other"), false);
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(taken.status().message(), HasSubstr("not a pipeline's output"));
  EXPECT_EQ(pipelines_->Create(Spec("text", "map"), false).status().code(),
            absl::StatusCode::kInvalidArgument);  // text -> map -> text
  auto list = pipelines_->List();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 2u);
  auto stopped = pipelines_->SetState("map", pps::v1::PAUSED);
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ(stopped->state(), pps::v1::PAUSED);
  EXPECT_EQ(pipelines_->Delete("map", false).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(pipelines_->Delete("reduce", false).ok());
  EXPECT_EQ(pfs_->InspectRepo("reduce").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(pipelines_->Delete("map", true).ok());
  EXPECT_TRUE(pfs_->InspectRepo("map").ok());  // kept
  EXPECT_EQ(pipelines_->Inspect("map").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace tusk::dispatcher
