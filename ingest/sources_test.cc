// Sources over a real Pfs (RocksDB in a temp dir): specs are checked and
// defaulted, clashes refused, offsets read from the branch head, members'
// reports kept, and specs survive a reopen.

#include "ingest/sources.h"

#include "gtest/gtest.h"
#include "ingest/format.h"
#include "pfs/test_env.h"

namespace tusk::ingest {
namespace {

v1::SourceSpec Spec(const std::string& name, const std::string& topic, const std::string& repo) {
  v1::SourceSpec s;
  s.set_name(name);
  s.mutable_kafka()->set_brokers("127.0.0.1:9092");
  s.mutable_kafka()->add_topics(topic);
  s.set_repo(repo);
  return s;
}

class SourcesTest : public pfs::PfsFixture {
 protected:
  void SetUp() override {
    pfs::PfsFixture::SetUp();
    sources_ = std::make_unique<Sources>(pfs_.get());
  }
  std::unique_ptr<Sources> sources_;
};

TEST_F(SourcesTest, CreateFillsDefaultsAndMakesTheRepo) {
  auto info = sources_->Create(Spec("clicks", "clicks", "events"), false);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->spec().branch(), "master");
  EXPECT_EQ(info->spec().max_records(), 100000u);
  EXPECT_EQ(info->spec().max_latency_ms(), 1000u);
  EXPECT_EQ(info->spec().kafka().start(), v1::EARLIEST);
  EXPECT_TRUE(pfs_->InspectRepo("events").ok());
  EXPECT_EQ(sources_->Create(Spec("clicks", "clicks", "events"), false).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(sources_->Create(Spec("clicks", "clicks", "events"), true).ok());
}

TEST_F(SourcesTest, BadSpecsNameWhatIsWrong) {
  auto bad_topic = sources_->Create(Spec("s", "no spaces", "r"), false);
  EXPECT_EQ(bad_topic.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_topic.status().message().find("invalid Kafka topic"), absl::string_view::npos);
  v1::SourceSpec no_brokers = Spec("s", "t", "r");
  no_brokers.mutable_kafka()->clear_brokers();
  EXPECT_EQ(sources_->Create(no_brokers, false).status().code(),
            absl::StatusCode::kInvalidArgument);
  v1::SourceSpec huge = Spec("s", "t", "r");
  huge.set_max_bytes(2ull << 30);
  EXPECT_EQ(sources_->Create(huge, false).status().code(), absl::StatusCode::kInvalidArgument);
  // Nothing of a refused spec is stored.
  EXPECT_TRUE(sources_->List()->empty());
}

TEST_F(SourcesTest, TwoSourcesMayNotFeedOneTopicIntoOneBranch) {
  ASSERT_TRUE(sources_->Create(Spec("a", "t", "r"), false).ok());
  auto clash = sources_->Create(Spec("b", "t", "r"), false);
  EXPECT_EQ(clash.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(clash.status().message().find("already ingests topic t"), absl::string_view::npos);
  EXPECT_TRUE(sources_->Create(Spec("c", "t", "other"), false).ok());
}

TEST_F(SourcesTest, OffsetsComeFromTheBranchHeadAndReportsFromMembers) {
  ASSERT_TRUE(sources_->Create(Spec("s", "t", "r"), false).ok());
  pfs::AutoCommitOptions ac;
  ac.origin = pfs::v1::INGEST;
  ac.metadata[KafkaOffsetKey("t", 0)] = "42";
  auto up = pfs_->BeginUpload("r", "master", ac);
  ASSERT_TRUE(up.ok()) << up.status();
  ASSERT_TRUE((*up)->Close().ok());
  v1::ReportSourceRequest report;
  report.set_name("s");
  report.mutable_member()->set_id("m1");
  auto* p = report.add_partitions();
  p->set_topic("t");
  p->set_partition(0);
  p->set_high_watermark(50);
  auto spec = sources_->Report(report);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name(), "s");
  auto info = sources_->Inspect("s");
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_EQ(info->partitions_size(), 1);
  EXPECT_EQ(info->partitions(0).committed_offset(), 42);
  EXPECT_EQ(info->partitions(0).high_watermark(), 50);
  EXPECT_EQ(info->partitions(0).lag(), 8);
  EXPECT_EQ(info->partitions(0).member(), "m1");
  ASSERT_EQ(info->members_size(), 1);
}

TEST_F(SourcesTest, DeleteKeepsTheDataAndSpecsSurviveAReopen) {
  ASSERT_TRUE(sources_->Create(Spec("keep", "t1", "r1"), false).ok());
  ASSERT_TRUE(sources_->Create(Spec("gone", "t2", "r2"), false).ok());
  ASSERT_TRUE(sources_->Delete("gone").ok());
  EXPECT_EQ(sources_->Delete("gone").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(sources_
                ->Report([] {
                  v1::ReportSourceRequest r;
                  r.set_name("gone");
                  return r;
                }())
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(pfs_->InspectRepo("r2").ok());
  sources_.reset();
  pfs_.reset();
  pfs::PfsOptions opts;
  opts.data_dir = dir_.path();
  auto reopened = pfs::Pfs::Open(opts);
  ASSERT_TRUE(reopened.ok());
  pfs_ = std::move(*reopened);
  Sources again(pfs_.get());
  auto all = again.List();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].spec().name(), "keep");
}

}  // namespace
}  // namespace tusk::ingest
