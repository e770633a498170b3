// The Committer against a tuskd started in process: batches land as
// micro-commits with their offsets, a batch whose precondition no longer
// holds comes back Aborted (nothing lands), and a batch sent while tuskd is
// down is retried, with the reason reported, until tuskd is back.

#include "ingest/committer.h"

#include <thread>

#include "common/grpc_channel.h"
#include "gtest/gtest.h"
#include "ingest/format.h"
#include "pfs/test_env.h"
#include "server/tuskd.h"

namespace tusk::ingest {
namespace {

Batch OneRecordBatch(int64_t offset, std::optional<int64_t> expect) {
  Batch b;
  Batch::Part& p = b.parts[{"t", 0}];
  p.expect = expect;
  p.first = p.last = offset;
  p.next = offset + 1;
  p.records = 1;
  Batch::File& f = b.files[{"t", 0, false, -1}];
  f.topic = "t";
  f.first = f.last = offset;
  f.data = absl::StrCat("{\"offset\":", offset, "}\n");
  b.records = 1;
  b.bytes = f.data.size();
  return b;
}

server::TuskdOptions Options(const std::string& dir, const std::string& listen) {
  server::TuskdOptions o;
  o.data_dir = dir;
  o.listen = listen;
  o.runners = "none";
  return o;
}

CommitResult WaitResult(Committer* c) {
  for (int i = 0; i < 3000; ++i) {
    auto done = c->TakeResults();
    if (!done.empty()) return done.front();
    absl::SleepFor(absl::Milliseconds(10));
  }
  ADD_FAILURE() << "no result within 30 s";
  return CommitResult{};
}

class CommitterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = server::Tuskd::Open(Options(dir_.path(), "127.0.0.1:0"));
    ASSERT_TRUE(t.ok()) << t.status();
    tuskd_ = std::move(*t);
    ASSERT_TRUE(tuskd_->pfs()->CreateRepo("r", "").ok());
    api_ = pfs::v1::API::NewStub(NewChannel(tuskd_->address()));
    spec_.set_name("s");
    spec_.set_repo("r");
    spec_.set_branch("master");
    opts_.member_id = "m1";
    opts_.max_backoff = absl::Milliseconds(200);
  }

  std::string Head(const std::string& key) {
    auto c = tuskd_->pfs()->InspectCommit("r", "master");
    if (!c.ok()) return "";
    auto it = c->metadata().find(key);
    return it == c->metadata().end() ? "" : it->second;
  }

  pfs::TempDir dir_;
  std::unique_ptr<server::Tuskd> tuskd_;
  std::unique_ptr<pfs::v1::API::Stub> api_;
  v1::SourceSpec spec_;
  IngesterOptions opts_;
};

TEST_F(CommitterTest, BatchesLandWithTheirOffsetsAndStaleOnesAreAborted) {
  Committer c(opts_, spec_, api_.get());
  c.Start();
  std::atomic<bool> stop{false};
  auto head = c.ReadHead(stop);
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_TRUE(head->empty());

  c.Submit(OneRecordBatch(0, std::nullopt));
  CommitResult r = WaitResult(&c);
  EXPECT_EQ(r.outcome, Outcome::kCommitted) << r.status;
  EXPECT_EQ((r.next[TopicPartition("t", 0)]), 1);
  EXPECT_EQ(Head(KafkaOffsetKey("t", 0)), "1");
  EXPECT_EQ(Head("ingest/member"), "m1");
  EXPECT_TRUE(c.Idle());

  // Built on offset 5, but the head says 1: another member's batch would be
  // counted twice. Nothing lands.
  c.Submit(OneRecordBatch(5, 5));
  r = WaitResult(&c);
  EXPECT_EQ(r.outcome, Outcome::kAborted);
  EXPECT_EQ(Head(KafkaOffsetKey("t", 0)), "1");

  c.Submit(OneRecordBatch(1, 1));
  EXPECT_EQ(WaitResult(&c).outcome, Outcome::kCommitted);
  EXPECT_EQ(Head(KafkaOffsetKey("t", 0)), "2");
}

TEST_F(CommitterTest, RetriesWhileTuskdIsDownAndSaysWhy) {
  std::string address = tuskd_->address();
  Committer c(opts_, spec_, api_.get());
  c.Start();
  tuskd_.reset();  // down
  c.Submit(OneRecordBatch(0, std::nullopt));
  bool said = false;
  for (int i = 0; i < 500 && !said; ++i) {
    said = c.WaitReason().find("waiting for tuskd") != std::string::npos;
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(said);
  EXPECT_FALSE(c.Idle());
  auto t = server::Tuskd::Open(Options(dir_.path(), address));  // back, same address
  ASSERT_TRUE(t.ok()) << t.status();
  tuskd_ = std::move(*t);
  CommitResult r = WaitResult(&c);
  EXPECT_EQ(r.outcome, Outcome::kCommitted) << r.status;
  EXPECT_EQ(Head(KafkaOffsetKey("t", 0)), "1");
  EXPECT_EQ(c.WaitReason(), "");
}

TEST_F(CommitterTest, AnAbandonedBatchComesBackAsSuch) {
  Committer c(opts_, spec_, api_.get());
  c.Start();
  tuskd_.reset();
  c.Submit(OneRecordBatch(0, std::nullopt));
  EXPECT_FALSE(c.WaitIdle(absl::Milliseconds(300)));  // gives it up
  CommitResult r = WaitResult(&c);
  EXPECT_EQ(r.outcome, Outcome::kAbandoned);
  EXPECT_TRUE(c.Idle());
}

}  // namespace
}  // namespace tusk::ingest
