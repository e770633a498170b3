// Unit tests of the dispatcher's parts over a real Pfs (RocksDB in a temp
// dir): the job store, the job planner, the output merge and the datum queue.

#include <map>
#include <string>
#include <vector>

#include "dispatcher/datum_queue.h"
#include "dispatcher/job_planner.h"
#include "dispatcher/job_store.h"
#include "dispatcher/output_merge.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "pfs/keys.h"
#include "pfs/test_env.h"

namespace tusk::dispatcher {
namespace {

using pps::v1::PipelineSpec;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

class JobsTest : public pfs::PfsFixture {
 protected:
  void SetUp() override {
    pfs::PfsFixture::SetUp();
    store_ = std::make_unique<JobStore>(pfs_->Space(pfs::kJobSpace));
  }

  // Commits `files` (path -> content; empty content deletes) to repo@master.
  ResolvedInput Commit(const std::string& repo, const std::map<std::string, std::string>& files) {
    auto c = pfs::CommitFiles(pfs_.get(), repo, files);
    EXPECT_TRUE(c.ok()) << c.status();
    ResolvedInput r;
    r.commit = c->id();
    if (!c->root().empty()) r.root = *Hash::FromHex(c->root());
    return r;
  }

  // A datum output tree holding `files`.
  std::string OutputTree(const std::map<std::string, std::string>& files) {
    auto up = pfs_->BeginTreeUpload();
    for (const auto& [path, data] : files) {
      EXPECT_TRUE(up->BeginFile(path, false).ok());
      EXPECT_TRUE(up->Write(data).ok());
      EXPECT_TRUE(up->EndFile(data.size()).ok());
    }
    pfs::KvBatch batch;
    auto root = up->CloseToTree(&batch);
    EXPECT_TRUE(root.ok()) << root.status();
    EXPECT_TRUE(store_->Write(&batch, true).ok());
    return root->hash.Hex();
  }

  static PipelineSpec Spec(const std::string& input_json) {
    PipelineSpec spec;
    spec.mutable_pipeline()->set_name("p");
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(input_json, spec.mutable_input()).ok());
    if (spec.input().has_pfs()) {
      spec.mutable_input()->mutable_pfs()->set_name(spec.input().pfs().repo());
    }
    return spec;
  }

  // Writes what FinishJob would for a job whose datums all succeeded with
  // no output: the current datums and the runtime.
  void Settle(const JobPlan& plan, const PipelineSpec& spec, const ResolvedInputs& inputs) {
    pfs::KvBatch batch;
    for (auto [key, di] : plan.touched) {
      if (di.state() == pps::v1::DATUM_REMOVED) {
        store_->RemoveCurrent("p", key, &batch);
        continue;
      }
      di.set_state(pps::v1::DATUM_SUCCESS);
      store_->SetCurrent("p", di, &batch);
    }
    PipelineRuntime rt;
    rt.set_has_base(true);
    for (const auto& [name, r] : inputs) (*rt.mutable_base_roots())[name] = r.root.Hex();
    rt.set_input_spec(spec.input().SerializeAsString());
    rt.set_total(plan.total);
    store_->PutRuntime("p", rt, &batch);
    ASSERT_TRUE(store_->Write(&batch, true).ok());
  }

  static std::map<std::string, pps::v1::DatumState> States(const JobPlan& plan) {
    std::map<std::string, pps::v1::DatumState> out;
    for (const auto& [key, di] : plan.touched) out[key] = di.state();
    return out;
  }

  std::unique_ptr<JobStore> store_;
};

JobInfo Job(const std::string& pipeline, const std::string& id, uint64_t seq,
            const std::string& commit_set) {
  JobInfo j;
  j.set_pipeline(pipeline);
  j.set_id(id);
  j.set_seq(seq);
  j.set_commit_set(commit_set);
  j.set_state(pps::v1::JOB_CREATED);
  return j;
}

TEST_F(JobsTest, JobsAreFoundByIdPrefixAndCommitSet) {
  pfs::KvBatch batch;
  store_->AddJob(Job("p", "abc123", 0, "cs1"), &batch);
  store_->AddJob(Job("p", "abd456", 1, "cs1"), &batch);
  store_->AddJob(Job("q", "ffe789", 0, "cs2"), &batch);
  ASSERT_TRUE(store_->Write(&batch, true).ok());

  EXPECT_EQ(*store_->NextJobSeq("p"), 2u);
  EXPECT_EQ(*store_->NextJobSeq("q"), 1u);
  EXPECT_EQ(*store_->NextJobSeq("r"), 0u);
  auto j = store_->FindJob("p", "abc");
  ASSERT_TRUE(j.ok() && *j);
  EXPECT_EQ((*j)->id(), "abc123");
  EXPECT_EQ(store_->FindJob("", "ab").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(*store_->FindJob("p", "ffe"));  // another pipeline's job
  EXPECT_TRUE(*store_->FindJob("", "ffe"));
  EXPECT_EQ(store_->FindJob("p", "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(*store_->CommitSetJobs("cs1"), ElementsAre("abc123", "abd456"));

  std::vector<uint64_t> seqs;
  ASSERT_TRUE(store_
                  ->ScanJobs("p", 1,
                             [&](const JobInfo& job) {
                               seqs.push_back(job.seq());
                               return true;
                             })
                  .ok());
  EXPECT_THAT(seqs, ElementsAre(1u));
}

TEST_F(JobsTest, DeletingAPipelineLeavesNoRecordOfIt) {
  pfs::KvBatch batch;
  store_->AddJob(Job("p", "j1", 0, "cs"), &batch);
  store_->AddJob(Job("p2", "j2", 0, "cs"), &batch);
  DatumInfo di;
  di.set_key("/a");
  di.set_state(pps::v1::DATUM_SUCCESS);
  store_->PutJobDatum("j1", di, &batch);
  store_->SetCurrent("p", di, &batch);
  store_->PutDone("p", Sha256("x"), di, &batch);
  store_->PutContribution("p", "/out", "/a", pfs::ChunkList(), &batch);
  store_->PutRuntime("p", PipelineRuntime(), &batch);
  LogMessage log;
  log.set_pipeline("p");
  log.set_job("j1");
  log.set_datum("d");
  log.set_attempt(1);
  store_->PutLog(log, &batch);
  ASSERT_TRUE(store_->Write(&batch, true).ok());

  pfs::KvBatch del;
  pfs::RecordChanges records;
  auto jobs = store_->DeletePipeline("p", &del, &records);
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 1u);
  ASSERT_TRUE(store_->Write(&del, true).ok());
  EXPECT_FALSE(*store_->FindJob("", "j1"));
  EXPECT_TRUE(*store_->FindJob("", "j2"));  // the other pipeline's job stays
  EXPECT_THAT(*store_->CommitSetJobs("cs"), ElementsAre("j2"));
  EXPECT_FALSE(*store_->GetCurrent("p", "/a"));
  EXPECT_FALSE(*store_->GetDone("p", Sha256("x")));
  EXPECT_THAT(*store_->Contributions("p", "/out"), IsEmpty());
  std::string after;
  int logs = 0;
  ASSERT_TRUE(store_
                  ->ScanLogs("p", absl::InfinitePast(), &after,
                             [&](const LogMessage&) { return ++logs > 0; })
                  .ok());
  EXPECT_EQ(logs, 0);
}

// A corrupt datum record must stop GC, not be skipped: skipped, the output
// it names would be collected while it is still live. (Before JobStore the
// dispatcher's marker skipped records that did not parse.)
TEST_F(JobsTest, CorruptDatumRecordFailsTheMarkAndTheGc) {
  pfs::KvBatch batch;
  DatumInfo di;
  di.set_key("/a");
  di.set_state(pps::v1::DATUM_SUCCESS);
  di.set_output_root(OutputTree({{"/out", "data"}}));
  store_->SetCurrent("p", di, &batch);
  ASSERT_TRUE(store_->Write(&batch, true).ok());
  pfs_->AddGcSource([this](pfs::GcMarker* m) { return store_->MarkLive(m); });
  pfs::GcOptions opts;
  opts.grace = absl::ZeroDuration();
  ASSERT_TRUE(pfs_->Gc(opts).ok());

  auto space = pfs_->Space(pfs::kJobSpace);
  ASSERT_TRUE(space.Put(pfs::jobkeys::CurrentKey("p", "/b"), "\xff\xff not a proto", true).ok());
  auto gc = pfs_->Gc(opts);
  EXPECT_EQ(gc.status().code(), absl::StatusCode::kDataLoss) << gc.status();
}

TEST_F(JobsTest, PlanListsEveryDatumThenOnlyWhatChanged) {
  ResolvedInputs inputs;
  inputs["in"] = Commit("in", {{"/a", "1"}, {"/b", "2"}, {"/c", "3"}});
  PipelineSpec spec = Spec(R"({"pfs": {"repo": "in", "glob": "/*"}})");
  auto first = PlanJob(pfs_->nodes(), *store_, "p", spec, "j1", inputs, PipelineRuntime());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->incremental);
  EXPECT_EQ(first->total, 3u);
  EXPECT_THAT(States(*first),
              ElementsAre(Pair("/a", pps::v1::DATUM_PENDING), Pair("/b", pps::v1::DATUM_PENDING),
                          Pair("/c", pps::v1::DATUM_PENDING)));
  Settle(*first, spec, inputs);

  inputs["in"] = Commit("in", {{"/b", "changed"}, {"/c", ""}, {"/d", "4"}});
  auto rt = store_->Runtime("p");
  ASSERT_TRUE(rt.ok());
  auto second = PlanJob(pfs_->nodes(), *store_, "p", spec, "j2", inputs, *rt);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->incremental);
  EXPECT_EQ(second->total, 3u);
  EXPECT_EQ(second->removed, 1u);
  EXPECT_THAT(States(*second),
              ElementsAre(Pair("/b", pps::v1::DATUM_PENDING), Pair("/c", pps::v1::DATUM_REMOVED),
                          Pair("/d", pps::v1::DATUM_PENDING)));
}

TEST_F(JobsTest, PlanSkipsADatumWhoseHashSucceededBefore) {
  ResolvedInputs inputs;
  inputs["in"] = Commit("in", {{"/a", "1"}});
  PipelineSpec spec = Spec(R"({"pfs": {"repo": "in", "glob": "/*"}})");
  auto plan = PlanJob(pfs_->nodes(), *store_, "p", spec, "j1", inputs, PipelineRuntime());
  ASSERT_TRUE(plan.ok());
  DatumInfo done = plan->touched.at("/a");
  done.set_state(pps::v1::DATUM_SUCCESS);
  done.set_output_root(OutputTree({{"/x", "out"}}));
  pfs::KvBatch batch;
  store_->PutDone("p", *Hash::FromHex(done.id()), done, &batch);
  ASSERT_TRUE(store_->Write(&batch, true).ok());

  auto again = PlanJob(pfs_->nodes(), *store_, "p", spec, "j2", inputs, PipelineRuntime());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->touched.at("/a").state(), pps::v1::DATUM_SKIPPED);
  EXPECT_EQ(again->touched.at("/a").output_root(), done.output_root());

  // A new salt (update --reprocess) makes every hash new.
  PipelineRuntime salted;
  salted.set_salt(1);
  auto salted_plan = PlanJob(pfs_->nodes(), *store_, "p", spec, "j3", inputs, salted);
  ASSERT_TRUE(salted_plan.ok());
  EXPECT_EQ(salted_plan->touched.at("/a").state(), pps::v1::DATUM_PENDING);
}

TEST_F(JobsTest, PlanResumesWhatAJobFinishedBeforeARestart) {
  ResolvedInputs inputs;
  inputs["in"] = Commit("in", {{"/a", "1"}, {"/b", "2"}});
  PipelineSpec spec = Spec(R"({"pfs": {"repo": "in", "glob": "/*"}})");
  auto plan = PlanJob(pfs_->nodes(), *store_, "p", spec, "j1", inputs, PipelineRuntime());
  ASSERT_TRUE(plan.ok());
  DatumInfo failed = plan->touched.at("/a");
  failed.set_state(pps::v1::DATUM_FAILED);
  DatumInfo tried = plan->touched.at("/b");
  tried.set_attempts(2);  // still PENDING: attempts carry over
  pfs::KvBatch batch;
  store_->PutJobDatum("j1", failed, &batch);
  store_->PutJobDatum("j1", tried, &batch);
  ASSERT_TRUE(store_->Write(&batch, true).ok());

  auto resumed = PlanJob(pfs_->nodes(), *store_, "p", spec, "j1", inputs, PipelineRuntime());
  ASSERT_TRUE(resumed.ok());
  EXPECT_EQ(resumed->touched.at("/a").state(), pps::v1::DATUM_FAILED);
  EXPECT_EQ(resumed->touched.at("/b").state(), pps::v1::DATUM_PENDING);
  EXPECT_EQ(resumed->touched.at("/b").attempts(), 2u);
}

TEST_F(JobsTest, MergeConcatenatesContributionsInDatumOrderAndDropsRemovedOnes) {
  auto merged = [&](const std::map<std::string, std::string>& roots,
                    const std::map<std::string, std::string>& old_roots,
                    const std::map<std::string, pps::v1::DatumState>& states) {
    std::map<std::string, DatumInfo> touched;
    for (const auto& [key, state] : states) {
      DatumInfo& di = touched[key];
      di.set_key(key);
      di.set_state(state);
      if (roots.count(key)) di.set_output_root(roots.at(key));
    }
    pfs::KvBatch batch;
    auto plan = PlanMerge(pfs_->nodes(), *store_, "p", touched, old_roots, &batch);
    EXPECT_TRUE(plan.ok()) << plan.status();
    EXPECT_TRUE(store_->Write(&batch, true).ok());
    return *plan;
  };
  std::string a = OutputTree({{"/sum", "a;"}, {"/only-a", "A"}});
  std::string b = OutputTree({{"/sum", "b;"}});
  MergePlan first = merged({{"/1", a}, {"/2", b}}, {},
                           {{"/1", pps::v1::DATUM_SUCCESS}, {"/2", pps::v1::DATUM_SUCCESS}});
  EXPECT_THAT(first.deletes, IsEmpty());
  ASSERT_EQ(first.puts.size(), 2u);
  EXPECT_EQ(first.puts[0].first, "/only-a");
  EXPECT_EQ(first.puts[1].first, "/sum");
  ASSERT_EQ(first.puts[1].second.size(), 2u);  // a's chunk, then b's
  EXPECT_EQ(first.puts[1].second[0].size(), 2u);

  // Datum /1 goes: /only-a is deleted, /sum keeps b's part alone.
  MergePlan second = merged({}, {{"/1", a}}, {{"/1", pps::v1::DATUM_REMOVED}});
  EXPECT_THAT(second.deletes, ElementsAre("/only-a"));
  ASSERT_EQ(second.puts.size(), 1u);
  EXPECT_EQ(second.puts[0].first, "/sum");
  EXPECT_EQ(second.puts[0].second.size(), 1u);
  EXPECT_FALSE(*store_->GetCurrent("p", "/1"));
  EXPECT_TRUE(*store_->GetCurrent("p", "/2"));
}

DatumInfo Pending(const std::string& key) {
  DatumInfo di;
  di.set_key(key);
  di.set_id("id" + key);
  di.set_state(pps::v1::DATUM_PENDING);
  return di;
}

TEST(DatumQueueTest, LeasesExpireAndGoBackToTheFront) {
  DatumQueue q;
  q.Add(Pending("/a"));
  q.Add(Pending("/b"));
  absl::Time t0 = absl::FromUnixSeconds(1000);
  const DatumQueue::Work* w = q.Take("l1", "r1", t0 + absl::Seconds(10));
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->info.key(), "/a");
  EXPECT_EQ(w->info.state(), pps::v1::DATUM_RUNNING);
  EXPECT_FALSE(q.Renew("l1", "r2", t0 + absl::Seconds(20)));  // not r2's lease
  EXPECT_TRUE(q.Renew("l1", "r1", t0 + absl::Seconds(20)));
  EXPECT_THAT(q.Expire(t0 + absl::Seconds(15)), IsEmpty());
  auto expired = q.Expire(t0 + absl::Seconds(25));
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].lease, "l1");
  EXPECT_EQ(q.Leased("l1"), nullptr);
  // Back at the front, before /b.
  w = q.Take("l2", "r1", t0 + absl::Seconds(40));
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->info.key(), "/a");
  EXPECT_EQ(q.remaining(), 2u);
}

TEST(DatumQueueTest, RetriesGoToTheBackAndDoneDatumsCount) {
  DatumQueue q;
  q.Add(Pending("/a"));
  q.Add(Pending("/b"));
  absl::Time later = absl::Now() + absl::Hours(1);
  ASSERT_NE(q.Take("l1", "r1", later), nullptr);
  DatumInfo retry = Pending("/a");
  retry.set_attempts(1);
  q.Complete("l1", retry);
  EXPECT_EQ(q.remaining(), 2u);
  const DatumQueue::Work* w = q.Take("l2", "r1", later);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->info.key(), "/b");
  DatumInfo ok = w->info;
  ok.set_state(pps::v1::DATUM_SUCCESS);
  q.Complete("l2", ok);
  EXPECT_EQ(q.remaining(), 1u);
  w = q.Take("l3", "r2", later);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->info.attempts(), 1u);
  auto released = q.ReleaseRunner("r2");
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(q.Find("/a")->state(), pps::v1::DATUM_PENDING);
  uint64_t failed = 0;
  EXPECT_THAT(q.FailAll("job timed out", &failed), IsEmpty());
  EXPECT_EQ(failed, 1u);
  EXPECT_EQ(q.remaining(), 0u);
  EXPECT_EQ(q.Find("/a")->error(), "job timed out");
  EXPECT_EQ(q.Find("/b")->state(), pps::v1::DATUM_SUCCESS);
  EXPECT_EQ(q.Take("l4", "r1", later), nullptr);
}

TEST(DatumQueueTest, AFailedDatumCanBeQueuedOnceMore) {
  DatumQueue q;
  q.Add(Pending("/a"));
  q.Add(Pending("/b"));
  absl::Time later = absl::Now() + absl::Hours(1);
  ASSERT_NE(q.Take("l1", "r1", later), nullptr);
  DatumInfo failed = Pending("/a");
  failed.set_attempts(1);
  failed.set_state(pps::v1::DATUM_FAILED);
  failed.set_error("exit 1");
  q.Complete("l1", failed);
  EXPECT_EQ(q.remaining(), 1u);
  EXPECT_FALSE(q.Requeue("/b"));  // pending, not failed
  EXPECT_FALSE(q.Requeue("/nope"));
  ASSERT_TRUE(q.Requeue("/a"));
  EXPECT_EQ(q.remaining(), 2u);
  EXPECT_FALSE(q.Requeue("/a"));  // queued already
  // Behind /b, with its attempts kept (the next is attempt 2).
  const DatumQueue::Work* w = q.Take("l2", "r1", later);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->info.key(), "/b");
  w = q.Take("l3", "r1", later);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->info.key(), "/a");
  EXPECT_EQ(w->info.attempts(), 1u);
  EXPECT_TRUE(w->info.error().empty());
}

}  // namespace
}  // namespace tusk::dispatcher
