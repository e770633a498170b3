
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/fs.h"
#include "common/status.h"
#include "pfs/file_hash.h"
#include "pfs/keys.h"
#include "pfs/test_env.h"

namespace tusk::pfs {
namespace {

FinishOptions Expect(const std::string& key, const std::string& value) {
  FinishOptions o;
  o.expect_metadata[key] = value;
  return o;
}

class PfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PfsOptions opts;
    opts.data_dir = dir_.path();
    opts.chunker = ChunkerOptions{1024, 4096, 16384};
    auto p = Pfs::Open(opts);
    ASSERT_TRUE(p.ok()) << p.status();
    pfs_ = std::move(*p);
    ASSERT_TRUE(pfs_->CreateRepo("data", "test repo").ok());
  }

  absl::StatusOr<CommitInfo> Put(const std::string& ref,
                                 const std::vector<std::pair<std::string, std::string>>& files,
                                 bool append = false) {
    ASSIGN_OR_RETURN(auto up, pfs_->BeginUpload("data", ref));
    for (const auto& [path, content] : files) {
      RETURN_IF_ERROR(up->BeginFile(path, append));
      RETURN_IF_ERROR(up->Write(content));
      RETURN_IF_ERROR(up->EndFile(content.size()));
    }
    return up->Close();
  }

  std::string Get(const std::string& ref, const std::string& path) {
    std::string out;
    auto s = pfs_->GetFile(
        "data", ref, path, [](const FileInfo&) { return absl::OkStatus(); },
        [&](absl::string_view d) {
          out.append(d.data(), d.size());
          return absl::OkStatus();
        });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  TempDir dir_;
  std::unique_ptr<Pfs> pfs_;
};

TEST_F(PfsTest, StagedFilesCarryTheHashAClientComputes) {
  std::string big(200000, 0);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 2654435761u >> 11);
  std::map<std::string, std::string> files = {
      {"/empty", ""}, {"/small", "hello"}, {"/dir/big", big}, {"/dir/mid", big.substr(0, 5000)}};
  ASSERT_TRUE(Put("master", {{"/gone", "x"}}).ok());
  ASSERT_TRUE(pfs_->StartCommit("data", "master", "", v1::USER, {}).ok());
  std::vector<std::pair<std::string, std::string>> list(files.begin(), files.end());
  ASSERT_TRUE(Put("master", list).ok());
  ASSERT_TRUE(pfs_->DeleteFile("data", "master", "/gone").ok());

  std::map<std::string, FileInfo> staged;
  ASSERT_TRUE(pfs_->ListStagedFile("data", "master",
                                   [&](const FileInfo& f) {
                                     staged[f.path()] = f;
                                     return absl::OkStatus();
                                   })
                  .ok());
  ASSERT_EQ(staged.size(), files.size());  // the deleted file is not listed
  FileHasher hasher(pfs_->options().chunker);
  for (const auto& [path, content] : files) {
    // Fed in pieces of another size than the upload's.
    for (size_t at = 0; at < content.size(); at += 777) {
      hasher.Update(absl::string_view(content).substr(at, 777));
    }
    EXPECT_EQ(hasher.size(), content.size());
    EXPECT_EQ(hasher.Finish().Hex(), staged[path].hash()) << path;
    EXPECT_EQ(staged[path].size_bytes(), content.size());
  }
  EXPECT_GT(staged["/dir/big"].chunk_count(), 8u);  // a chunk list stored as a blob
  // The finished commit gives the same hashes.
  ASSERT_TRUE(pfs_->FinishCommit("data", "master", FinishOptions()).ok());
  auto info = pfs_->InspectFile("data", "master", "/dir/big");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->hash(), staged["/dir/big"].hash());
  auto none = [](const FileInfo&) { return absl::OkStatus(); };
  EXPECT_EQ(pfs_->ListStagedFile("data", "master", none).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(pfs_->ListStagedFile("data", info->commit(), none).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(pfs_->ListStagedFile("data", "nobranch", none).code(), absl::StatusCode::kNotFound);
}

TEST_F(PfsTest, PutGetHistoryDiffRevert) {
  std::string big(100000, 'x');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 2654435761u >> 13);
  auto c1 = Put("master", {{"/a.txt", "hello"}, {"/dir/b.bin", big}, {"/empty", ""}});
  ASSERT_TRUE(c1.ok()) << c1.status();
  EXPECT_EQ(c1->state(), v1::FINISHED);
  EXPECT_EQ(c1->file_count(), 3u);
  EXPECT_EQ(c1->size_bytes(), 5 + big.size());
  EXPECT_EQ(Get("master", "/a.txt"), "hello");
  EXPECT_EQ(Get("master", "/dir/b.bin"), big);
  EXPECT_EQ(Get("master", "/empty"), "");

  auto c2 = Put("master", {{"/a.txt", " world"}}, /*append=*/true);
  ASSERT_TRUE(c2.ok()) << c2.status();
  EXPECT_EQ(c2->parent(), c1->id());
  EXPECT_EQ(Get("master", "/a.txt"), "hello world");
  EXPECT_EQ(Get("master^", "/a.txt"), "hello");
  EXPECT_EQ(Get(c1->id(), "/a.txt"), "hello");

  auto c3 = pfs_->DeleteFile("data", "master", "/dir");
  ASSERT_TRUE(c3.ok()) << c3.status();
  EXPECT_EQ(c3->file_count(), 2u);
  std::vector<std::string> diffs;
  ASSERT_TRUE(pfs_->DiffCommit("data", "master", "",
                               [&](const FileDiff& d) {
                                 diffs.push_back(absl::StrCat(FileDiff::Change_Name(d.change()),
                                                              " ", d.path()));
                                 return absl::OkStatus();
                               })
                  .ok());
  EXPECT_EQ(diffs, (std::vector<std::string>{"DELETED /dir/b.bin"}));
  diffs.clear();
  ASSERT_TRUE(pfs_->DiffCommit("data", "master", "master~2",
                               [&](const FileDiff& d) {
                                 diffs.push_back(absl::StrCat(FileDiff::Change_Name(d.change()),
                                                              " ", d.path()));
                                 return absl::OkStatus();
                               })
                  .ok());
  EXPECT_EQ(diffs, (std::vector<std::string>{"MODIFIED /a.txt", "DELETED /dir/b.bin"}));

  auto rv = pfs_->Revert("data", "master", c1->id(), "");
  ASSERT_TRUE(rv.ok()) << rv.status();
  EXPECT_EQ(rv->root(), c1->root());
  EXPECT_EQ(Get("master", "/dir/b.bin"), big);

  // History, newest first.
  std::vector<std::string> ids;
  ASSERT_TRUE(pfs_->ListCommit("data", "master", 0,
                               [&](const CommitInfo& c) {
                                 ids.push_back(c.id());
                                 return absl::OkStatus();
                               })
                  .ok());
  EXPECT_EQ(ids, (std::vector<std::string>{rv->id(), c3->id(), c2->id(), c1->id()}));

  // Branch from an old commit: shares its tree, diverges independently.
  ASSERT_TRUE(pfs_->CreateBranch("data", "old", c2->id()).ok());
  auto b1 = Put("old", {{"/new.txt", "on old"}});
  ASSERT_TRUE(b1.ok());
  EXPECT_EQ(b1->parent(), c2->id());
  EXPECT_EQ(Get("old", "/new.txt"), "on old");
  EXPECT_EQ(Get("old", "/a.txt"), "hello world");
  auto missing = pfs_->InspectFile("data", "master", "/new.txt");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);

  auto stats = pfs_->Fsck([](const std::string& p) { ADD_FAILURE() << p; });
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->problems(), 0u);
  EXPECT_GE(stats->commits(), 5u);
}

TEST_F(PfsTest, OpenCommitParallelUploadsAndConflicts) {
  auto c = pfs_->StartCommit("data", "master", "msg", v1::USER, {});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(pfs_->StartCommit("data", "master", "", v1::USER, {}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto u1 = pfs_->BeginUpload("data", c->id());
  auto u2 = pfs_->BeginUpload("data", "master");
  ASSERT_TRUE(u1.ok() && u2.ok());
  ASSERT_TRUE((*u1)->BeginFile("/x/1", false).ok());
  ASSERT_TRUE((*u2)->BeginFile("/x/2", false).ok());
  ASSERT_TRUE((*u1)->Write("one").ok());
  ASSERT_TRUE((*u2)->Write("two").ok());
  ASSERT_TRUE((*u1)->EndFile(3).ok());
  ASSERT_TRUE((*u2)->EndFile(3).ok());
  // A directory where a file is, and the reverse.
  EXPECT_EQ((*u1)->BeginFile("/x/1/deeper", false).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*u1)->BeginFile("/x", false).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE((*u1)->Close().ok());
  ASSERT_TRUE((*u2)->Close().ok());
  auto f = pfs_->FinishCommit("data", "master", FinishOptions());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->file_count(), 2u);
  EXPECT_EQ(Get("master", "/x/2"), "two");
  // Writing to a finished commit is an error.
  auto late = pfs_->BeginUpload("data", c->id());
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(PfsTest, TruncatedAndAbandonedUploadsLeaveNoTrace) {
  ASSERT_TRUE(Put("master", {{"/keep", "kept"}}).ok());
  {
    auto up = pfs_->BeginUpload("data", "master");
    ASSERT_TRUE(up.ok());
    ASSERT_TRUE((*up)->BeginFile("/partial", false).ok());
    ASSERT_TRUE((*up)->Write("abc").ok());
    auto s = (*up)->EndFile(10);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("truncated"), std::string::npos);
    // Destroyed without Close: the automatic commit disappears.
  }
  auto b = pfs_->InspectBranch("data", "master");
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->open_commit().empty());
  EXPECT_EQ(pfs_->InspectFile("data", "master", "/partial").status().code(),
            absl::StatusCode::kNotFound);
  int n = 0;
  ASSERT_TRUE(pfs_->ListCommit("data", "", 0,
                               [&](const CommitInfo&) {
                                 n++;
                                 return absl::OkStatus();
                               })
                  .ok());
  EXPECT_EQ(n, 1);
}

TEST_F(PfsTest, BadInput) {
  EXPECT_EQ(pfs_->CreateRepo("bad/name", "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pfs_->CreateRepo("data", "").status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(pfs_->InspectRepo("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(pfs_->InspectCommit("data", "nobranch").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(pfs_->InspectCommit("data", "0123456789abcdef0123456789abcdef").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Put("master", {{"/../etc/passwd", "x"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(Put("master", {{"/f", "x"}}).ok());
  EXPECT_EQ(pfs_->InspectCommit("data", "master~5").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(pfs_->DeleteFile("data", "master", "/nothing").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PfsTest, ReopenKeepsEverything) {
  auto c = Put("master", {{"/a", "persisted"}});
  ASSERT_TRUE(c.ok());
  pfs_.reset();
  PfsOptions opts;
  opts.data_dir = dir_.path();
  auto p = Pfs::Open(opts);
  ASSERT_TRUE(p.ok()) << p.status();
  pfs_ = std::move(*p);
  EXPECT_EQ(Get("master", "/a"), "persisted");
}

// Automatic commits with metadata, carried "state/" keys and preconditions:
// the building blocks of exactly-once ingest.
TEST_F(PfsTest, AutoCommitMetadataCarryAndPreconditions) {
  auto put = [&](const std::string& path, std::map<std::string, std::string> meta,
                 std::map<std::string, std::string> expect) -> absl::StatusOr<CommitInfo> {
    AutoCommitOptions opts;
    opts.origin = v1::INGEST;
    opts.metadata = std::move(meta);
    opts.expect_metadata = std::move(expect);
    ASSIGN_OR_RETURN(auto up, pfs_->BeginUpload("data", "master", opts));
    RETURN_IF_ERROR(up->BeginFile(path, false));
    RETURN_IF_ERROR(up->Write("r"));
    RETURN_IF_ERROR(up->EndFile(1));
    return up->Close();
  };
  auto c1 = put("/p0/0-9", {{"state/kafka/t/0", "10"}, {"kafka/t/0/range", "0-9"}},
                {{"state/kafka/t/0", ""}});
  ASSERT_TRUE(c1.ok()) << c1.status();
  EXPECT_EQ(c1->origin(), v1::INGEST);
  EXPECT_TRUE(c1->automatic());
  auto c2 = put("/p1/0-4", {{"state/kafka/t/1", "5"}}, {{"state/kafka/t/1", ""}});
  ASSERT_TRUE(c2.ok()) << c2.status();
  // Carried from c1; the per-commit key is not.
  EXPECT_EQ(c2->metadata().at("state/kafka/t/0"), "10");
  EXPECT_EQ(c2->metadata().at("state/kafka/t/1"), "5");
  EXPECT_EQ(c2->metadata().count("kafka/t/0/range"), 0u);
  // A stale writer (expects partition 0 at 0 again) is refused and leaves nothing.
  auto stale = put("/p0/0-9-again", {{"state/kafka/t/0", "10"}}, {{"state/kafka/t/0", ""}});
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted) << stale.status();
  EXPECT_NE(stale.status().message().find("state/kafka/t/0"), std::string::npos);
  auto b = pfs_->InspectBranch("data", "master");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->head(), c2->id());
  EXPECT_TRUE(b->open_commit().empty());
  EXPECT_EQ(pfs_->InspectFile("data", "master", "/p0/0-9-again").status().code(),
            absl::StatusCode::kNotFound);
  // A user commit in between keeps the state; so does a revert.
  ASSERT_TRUE(Put("master", {{"/readme", "x"}}).ok());
  auto r = pfs_->Revert("data", "master", c1->id(), "");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->metadata().at("state/kafka/t/1"), "5");
  auto c3 = put("/p0/10-19", {{"state/kafka/t/0", "20"}}, {{"state/kafka/t/0", "10"}});
  ASSERT_TRUE(c3.ok()) << c3.status();
  // Metadata for an explicit open commit is refused: it belongs to finish.
  auto open = pfs_->StartCommit("data", "master", "", v1::USER, {});
  ASSERT_TRUE(open.ok());
  AutoCommitOptions opts;
  opts.metadata = {{"k", "v"}};
  EXPECT_EQ(pfs_->BeginUpload("data", "master", opts).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pfs_->FinishCommit("data", "master", Expect("state/kafka/t/0", "0")).status().code(),
            absl::StatusCode::kAborted);
  EXPECT_TRUE(pfs_->FinishCommit("data", "master", Expect("state/kafka/t/0", "20")).ok());
}

// A second stream on a branch waits for the first one's automatic commit to
// end instead of writing into it.
TEST_F(PfsTest, AutomaticCommitsQueueInsteadOfJoining) {
  auto first = pfs_->BeginUpload("data", "master");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE((*first)->BeginFile("/a", false).ok());
  ASSERT_TRUE((*first)->Write("a").ok());
  ASSERT_TRUE((*first)->EndFile(1).ok());
  AutoCommitOptions quick;
  quick.wait = absl::Milliseconds(50);
  EXPECT_EQ(pfs_->BeginUpload("data", "master", quick).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  std::string first_id = (*first)->commit_id();
  std::thread closer([&] { ASSERT_TRUE((*first)->Close().ok()); });
  auto second = pfs_->BeginUpload("data", "master");  // waits for the close
  closer.join();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE((*second)->commit_id(), first_id);
  ASSERT_TRUE((*second)->BeginFile("/b", false).ok());
  ASSERT_TRUE((*second)->EndFile(0).ok());
  auto c2 = (*second)->Close();
  ASSERT_TRUE(c2.ok()) << c2.status();
  EXPECT_EQ(c2->parent(), first_id);
  EXPECT_EQ(c2->file_count(), 2u);
}

}  // namespace
}  // namespace tusk::pfs

namespace tusk::pfs {
namespace {

// Retention by age, and the provenance of commits computed from squashed ones.
TEST_F(PfsTest, RetentionByAgeMovesProvenanceToTheKeptChild) {
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    auto c = Put("master", {{absl::StrCat("/f", i), absl::StrCat("v", i)}});
    ASSERT_TRUE(c.ok()) << c.status();
    ids.push_back(c->id());
  }
  // A commit in another repo computed from the second commit.
  ASSERT_TRUE(pfs_->CreateRepo("out", "").ok());
  CommitOptions co;
  v1::CommitRef from;
  from.set_repo("data");
  from.set_id(ids[1]);
  from.set_branch("master");
  co.provenance.push_back(from);
  auto out = pfs_->StartCommit("out", "master", "", v1::PIPELINE, {}, co);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_TRUE(pfs_->FinishCommit("out", "master", FinishOptions()).ok());
  // It depends on ids[1]: deleting that is refused, like deleting a parent.
  auto refused = pfs_->DeleteCommit("data", ids[1]);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);

  v1::Retention keep;
  keep.set_keep_last(1);
  ASSERT_TRUE(pfs_->UpdateRepo("data", std::nullopt, keep).ok());
  // keep_last 1 alone: everything but the head goes.
  auto n = pfs_->ApplyRetention(absl::Now());
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 3u);
  auto head = pfs_->InspectCommit("data", "master");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->id(), ids[3]);
  EXPECT_EQ(head->parent(), "");
  EXPECT_EQ(Get("master", "/f0"), "v0");  // the head's tree holds everything
  auto moved = pfs_->InspectCommit("out", "master");
  ASSERT_TRUE(moved.ok());
  ASSERT_EQ(moved->provenance_size(), 1);
  EXPECT_EQ(moved->provenance(0).id(), ids[3]);
  auto sub = pfs_->Subvenance("data", ids[3]);
  ASSERT_TRUE(sub.ok());
  ASSERT_EQ(sub->size(), 1u);
  EXPECT_EQ((*sub)[0].id(), out->id());
  EXPECT_EQ(pfs_->InspectCommit("data", ids[1]).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PfsTest, RetentionByAgeKeepsYoungCommits) {
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Put("master", {{"/x", absl::StrCat(i)}}).ok());
  v1::Retention keep;
  keep.mutable_keep_for()->set_seconds(3600);
  ASSERT_TRUE(pfs_->UpdateRepo("data", std::nullopt, keep).ok());
  auto n = pfs_->ApplyRetention(absl::Now());
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);  // all younger than an hour
  n = pfs_->ApplyRetention(absl::Now() + absl::Hours(2));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2u);  // the head always stays
  // A branch that still needs old history blocks its squash: master's
  // c3 is dev's head. Dev's own retention squashes c2 into c3, which is on
  // master's history too.
  ASSERT_TRUE(Put("master", {{"/x", "3"}}).ok());
  ASSERT_TRUE(Put("master", {{"/x", "4"}}).ok());
  auto dev = pfs_->CreateBranch("data", "dev", "master^");
  ASSERT_TRUE(dev.ok());
  n = pfs_->ApplyRetention(absl::Now() + absl::Hours(2));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);
  std::vector<std::string> master;
  ASSERT_TRUE(pfs_->ListCommit("data", "master", 0,
                               [&](const CommitInfo& c) {
                                 master.push_back(c.id());
                                 return absl::OkStatus();
                               })
                  .ok());
  ASSERT_EQ(master.size(), 2u);
  EXPECT_EQ(master[1], dev->head());
  EXPECT_EQ(Get("dev", "/x"), "3");
}

}  // namespace
}  // namespace tusk::pfs

namespace tusk::pfs {
namespace {

// Object-store failures while writing: nothing becomes visible that points
// at a missing object, and the work can be redone once the store is back.
TEST(PfsFaultTest, FailedWritesLeaveNoCommitPointingAtMissingObjects) {
  TempDir dir;
  auto local = OpenLocalObjectStore(dir.path() + "/objects");
  ASSERT_TRUE(local.ok());
  FaultyObjectStore faulty(local->get());
  PfsOptions opts;
  opts.data_dir = dir.path() + "/data";
  opts.object_store = &faulty;
  opts.chunker = ChunkerOptions{1024, 4096, 16384};
  opts.blobs.pack_size = 64 << 10;  // several packs per upload
  auto pfs = Pfs::Open(opts);
  ASSERT_TRUE(pfs.ok()) << pfs.status();
  Pfs* p = pfs->get();
  ASSERT_TRUE(p->CreateRepo("r", "").ok());
  std::string big(400000, 0);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 2654435761u >> 13);
  auto put = [&](const std::string& path, const std::string& data) {
    return PutOneFile(p, "r", "master", path, data);
  };
  ASSERT_TRUE(put("/first", "one").ok());

  // A pack upload fails in the middle of a large file.
  faulty.fail_puts = 1;
  auto failed = put("/big", big);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("HTTP 500"), std::string::npos) << failed.status();
  auto head = p->InspectCommit("r", "master");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->file_count(), 1u);

  // The log pack of the finishing commit fails: the branch head stays.
  faulty.fail_puts = 0;
  faulty.fail_prefix = "packs/";
  auto start = p->StartCommit("r", "master", "", v1::USER, {});
  ASSERT_TRUE(start.ok());
  // Small: inline in the index, no object yet.
  ASSERT_TRUE(PutOneFile(p, "r", start->id(), "/small", "tiny").ok());
  auto fin = p->FinishCommit("r", "master", FinishOptions());
  ASSERT_FALSE(fin.ok());
  EXPECT_EQ(fin.status().code(), absl::StatusCode::kUnavailable);
  head = p->InspectCommit("r", "master");
  ASSERT_TRUE(head.ok());
  EXPECT_NE(head->id(), start->id());

  // The store is back: the same commit finishes, and the big file goes in.
  faulty.fail_prefix.clear();
  fin = p->FinishCommit("r", "master", FinishOptions());
  ASSERT_TRUE(fin.ok()) << fin.status();
  ASSERT_TRUE(put("/big", big).ok());
  auto stats = p->Fsck([](const std::string& problem) { ADD_FAILURE() << problem; });
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->problems(), 0u);
}

// Uploads bound at close (the S3 gateway's PUTs) stream side by side on one
// branch while pack writes fail now and then; every write whose Close
// succeeded reads back, put-if-absent lets exactly one writer win, and the
// store checks clean.
TEST(PfsLateUploadTest, RaceOnOneBranchWithFaultsAndKeepEveryAcknowledgedWrite) {
  TempDir dir;
  auto local = OpenLocalObjectStore(dir.path() + "/objects");
  ASSERT_TRUE(local.ok());
  FaultyObjectStore faulty(local->get());
  PfsOptions opts;
  opts.data_dir = dir.path() + "/data";
  opts.object_store = &faulty;
  opts.chunker = ChunkerOptions{1024, 4096, 16384};
  opts.blobs.pack_size = 32 << 10;
  auto pfs = Pfs::Open(opts);
  ASSERT_TRUE(pfs.ok()) << pfs.status();
  Pfs* p = pfs->get();
  ASSERT_TRUE(p->CreateRepo("r", "").ok());

  auto late_put = [&](const std::string& path, const std::string& data,
                      bool if_absent) -> absl::StatusOr<CommitInfo> {
    AutoCommitOptions auto_opts;
    auto_opts.bind_at_close = true;
    auto_opts.message = "put " + path;
    ASSIGN_OR_RETURN(auto up, p->BeginUpload("r", "master", auto_opts));
    EXPECT_EQ(up->commit_id(), "");  // no commit until Close
    RETURN_IF_ERROR(up->BeginFile(path, false));
    // In pieces, as an HTTP body arrives.
    for (size_t at = 0; at < data.size(); at += 3000) {
      RETURN_IF_ERROR(up->Write(absl::string_view(data).substr(at, 3000)));
    }
    RETURN_IF_ERROR(up->EndFile(data.size()));
    if (if_absent) RETURN_IF_ERROR(up->RequireAbsent(path));
    return up->Close();
  };

  constexpr int kThreads = 6;
  constexpr int kPuts = 12;
  std::atomic<bool> done{false};
  std::thread faults([&] {
    while (!done.load()) {
      faulty.fail_puts.store(1);
      std::this_thread::sleep_for(std::chrono::milliseconds(7));
    }
    faulty.fail_puts.store(0);
  });
  absl::Mutex mu;
  std::map<std::string, std::string> acked;
  std::atomic<int> failed{0};
  std::atomic<int> winners{0};
  std::atomic<int> refused{0};
  std::atomic<int> lock_failed{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kPuts; ++i) {
        std::string path = absl::StrCat("/w", t, "/f", i);
        std::string data(20000 + 997 * i + t, 0);
        for (size_t k = 0; k < data.size(); ++k)
          data[k] = static_cast<char>((k * 31 + t * 7 + i) >> 3);
        auto c = late_put(path, data, false);
        if (c.ok()) {
          absl::MutexLock l(&mu);
          acked[path] = data;
        } else {
          failed++;
        }
      }
      // Everyone tries to create the same object, once.
      std::string mine = absl::StrCat("writer ", t);
      auto c = late_put("/lock", mine, true);
      if (c.ok()) {
        winners++;
        absl::MutexLock l(&mu);
        acked["/lock"] = mine;
      } else if (c.status().code() == absl::StatusCode::kAlreadyExists) {
        refused++;
      } else {
        lock_failed++;
      }
    });
  }
  for (auto& w : writers) w.join();
  done = true;
  faults.join();

  EXPECT_GT(failed.load(), 0) << "no fault hit a write; the test proves less than it should";
  EXPECT_LE(winners.load(), 1);
  if (refused.load() > 0) {
    EXPECT_EQ(winners.load(), 1);
  }
  EXPECT_EQ(winners.load() + refused.load() + lock_failed.load(), kThreads);
  for (const auto& [path, data] : acked) {
    auto reader = p->OpenFile("r", "master", path);
    ASSERT_TRUE(reader.ok()) << path << ": " << reader.status();
    std::string got;
    while (true) {
      auto piece = (*reader)->Next();
      ASSERT_TRUE(piece.ok()) << piece.status();
      if (piece->empty()) break;
      got += *piece;
    }
    EXPECT_EQ(got, data) << path;
  }
  auto head = p->InspectCommit("r", "master");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->file_count(), acked.size());
  auto stats = p->Fsck([](const std::string& problem) { ADD_FAILURE() << problem; });
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->problems(), 0u);
  // No commit was left open on the branch.
  auto branch = p->InspectBranch("r", "master");
  ASSERT_TRUE(branch.ok());
  EXPECT_EQ(branch->open_commit(), "");
}

// Late uploads join a commit a client started (many objects, one commit),
// and see a file the branch got after they began.
TEST(PfsLateUploadTest, JoinAnOpenCommitAndCheckAgainstTheCommitChosen) {
  TempDir dir;
  PfsOptions opts;
  opts.data_dir = dir.path();
  auto pfs = Pfs::Open(opts);
  ASSERT_TRUE(pfs.ok()) << pfs.status();
  Pfs* p = pfs->get();
  ASSERT_TRUE(p->CreateRepo("r", "").ok());
  AutoCommitOptions late;
  late.bind_at_close = true;
  auto a = p->BeginUpload("r", "master", late);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE((*a)->BeginFile("/d/x", false).ok());
  ASSERT_TRUE((*a)->Write("x").ok());
  ASSERT_TRUE((*a)->EndFile(1).ok());
  // Meanwhile /d became a file on the branch: the late write is refused.
  ASSERT_TRUE(PutOneFile(p, "r", "master", "/d", "file").ok());
  auto refused = (*a)->Close();
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  // A commit by reference is refused too.
  EXPECT_EQ(p->BeginUpload("r", std::string(32, 'a'), late).status().code(),
            absl::StatusCode::kInvalidArgument);

  auto start = p->StartCommit("r", "master", "many objects", v1::USER, {});
  ASSERT_TRUE(start.ok());
  for (int i = 0; i < 3; ++i) {
    auto up = p->BeginUpload("r", "master", late);
    ASSERT_TRUE(up.ok());
    std::string path = absl::StrCat("/obj", i);
    ASSERT_TRUE((*up)->BeginFile(path, false).ok());
    ASSERT_TRUE((*up)->Write("v").ok());
    ASSERT_TRUE((*up)->EndFile(1).ok());
    ASSERT_TRUE((*up)->RequireAbsent(path).ok());
    auto c = (*up)->Close();
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->id(), start->id());
    EXPECT_EQ(c->state(), v1::OPEN);
  }
  // Put-if-absent sees what another upload staged in the same commit.
  auto again = p->BeginUpload("r", "master", late);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE((*again)->BeginFile("/obj1", false).ok());
  ASSERT_TRUE((*again)->EndFile(0).ok());
  ASSERT_TRUE((*again)->RequireAbsent("/obj1").ok());
  EXPECT_EQ((*again)->Close().status().code(), absl::StatusCode::kAlreadyExists);
  auto fin = p->FinishCommit("r", "master", FinishOptions());
  ASSERT_TRUE(fin.ok()) << fin.status();
  EXPECT_EQ(fin->file_count(), 4u);  // /d and three objects
}

// An open commit as S3 clients see it: staged puts and deletes are listed
// and read back before the commit finishes, and late deletes of files that
// only the open commit has (or that exist nowhere) do what S3 expects.
TEST(PfsLateUploadTest, StagedChangesReadBackAndLateDeletes) {
  TempDir dir;
  PfsOptions opts;
  opts.data_dir = dir.path();
  auto pfs = Pfs::Open(opts);
  ASSERT_TRUE(pfs.ok()) << pfs.status();
  Pfs* p = pfs->get();
  ASSERT_TRUE(CommitFiles(p, "r", {{"/old", "committed"}}).ok());
  auto start = p->StartCommit("r", "master", "", v1::USER, {});
  ASSERT_TRUE(start.ok());
  AutoCommitOptions late;
  late.bind_at_close = true;
  auto put = [&](const std::string& path, const std::string& data) {
    auto up = p->BeginUpload("r", "master", late);
    ASSERT_TRUE(up.ok());
    ASSERT_TRUE((*up)->BeginFile(path, false).ok());
    ASSERT_TRUE((*up)->Write(data).ok());
    ASSERT_TRUE((*up)->EndFile(data.size()).ok());
    ASSERT_TRUE((*up)->Close().ok());
  };
  auto del = [&](const std::string& path) {
    auto up = p->BeginUpload("r", "master", late);
    ASSERT_TRUE(up.ok());
    ASSERT_TRUE((*up)->Delete(path).ok()) << path;  // checked at Close
    auto c = (*up)->Close();
    ASSERT_TRUE(c.ok()) << c.status();
  };
  put("/d/a", "A");
  put("/d/b", "B");
  del("/d/b");    // only staged
  del("/old");    // committed
  del("/never");  // nowhere: dropped
  std::vector<std::string> changes;
  ASSERT_TRUE(p->ListStagedChanges("r", start->id(), "/", [&](const StagedChange& c) {
                 changes.push_back((c.deleted ? "-" : "+") + c.path);
                 return absl::OkStatus();
               }).ok());
  EXPECT_THAT(changes, ::testing::ElementsAre("+/d/a", "-/d/b", "-/old"));
  auto at = p->StagedChangeAt("r", start->id(), "/d/a");
  ASSERT_TRUE(at.ok() && at->has_value());
  EXPECT_EQ((*at)->file.size_bytes(), 1u);
  auto reader = p->OpenStagedFile("r", start->id(), "/d/a");
  ASSERT_TRUE(reader.ok()) << reader.status();
  auto piece = (*reader)->Next();
  ASSERT_TRUE(piece.ok());
  EXPECT_EQ(*piece, "A");
  EXPECT_EQ(p->OpenStagedFile("r", start->id(), "/d/b").status().code(),
            absl::StatusCode::kNotFound);
  auto fin = p->FinishCommit("r", "master", FinishOptions());
  ASSERT_TRUE(fin.ok()) << fin.status();
  EXPECT_EQ(fin->file_count(), 1u);  // /d/a alone
  EXPECT_EQ(p->StagedChangeAt("r", start->id(), "/d/a").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// OpenFile reads a byte range across chunk boundaries.
TEST(PfsFileReaderTest, RangesAcrossChunks) {
  TempDir dir;
  PfsOptions opts;
  opts.data_dir = dir.path();
  opts.chunker = ChunkerOptions{1024, 4096, 16384};
  auto pfs = Pfs::Open(opts);
  ASSERT_TRUE(pfs.ok()) << pfs.status();
  Pfs* p = pfs->get();
  ASSERT_TRUE(p->CreateRepo("r", "").ok());
  std::string data(100000, 0);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 2654435761u >> 11);
  ASSERT_TRUE(PutOneFile(p, "r", "master", "/f", data).ok());
  auto read = [&](uint64_t offset, uint64_t length) {
    auto r = p->OpenFile("r", "master", "/f");
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return std::string();
    EXPECT_GT((*r)->chunks().size(), 3u);
    (*r)->Limit(offset, length);
    std::string out;
    while (true) {
      auto piece = (*r)->Next();
      EXPECT_TRUE(piece.ok()) << piece.status();
      if (!piece.ok() || piece->empty()) break;
      out += *piece;
    }
    return out;
  };
  for (auto [off, len] : std::vector<std::pair<uint64_t, uint64_t>>{
           {0, 100000}, {0, 1}, {4095, 2}, {12345, 40000}, {99999, 10}, {100000, 5}, {50, 0}}) {
    EXPECT_EQ(read(off, len), data.substr(off, len)) << off << "+" << len;
  }
  EXPECT_EQ(p->OpenFile("r", "master", "/nope").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(PutOneFile(p, "r", "master", "/dir/x", "x").ok());
  EXPECT_EQ(p->OpenFile("r", "master", "/dir").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace tusk::pfs

namespace tusk::pfs {
namespace {

// Shipped log mode: the log rides in the index write and reaches the object
// store in batches; what a crash left pending is shipped at the next start,
// and the index rebuilt from the objects has every commit.
TEST(PfsShippedLogTest, PendingLogsShipAndRebuild) {
  TempDir dir;
  PfsOptions opts;
  opts.data_dir = dir.path();
  opts.log_mode = LogMode::kShipped;
  opts.ship_interval = absl::Hours(1);  // ship only when asked
  std::vector<std::string> ids;
  {
    auto pfs = Pfs::Open(opts);
    ASSERT_TRUE(pfs.ok()) << pfs.status();
    ASSERT_TRUE((*pfs)->CreateRepo("r", "").ok());
    for (int i = 0; i < 5; ++i) {
      auto c =
          PutOneFile(pfs->get(), "r", "master", absl::StrCat("/f", i), absl::StrCat("content ", i));
      ASSERT_TRUE(c.ok()) << c.status();
      ids.push_back(c->id());
      if (i == 2) {
        auto n = (*pfs)->ShipLogs();
        ASSERT_TRUE(n.ok());
        EXPECT_EQ(*n, 4u);  // the repo and three commits
      }
    }
    // Closing ships the rest.
  }
  ASSERT_TRUE(RemoveAll(dir.path() + "/index").ok());
  opts.rebuild_index = true;
  auto pfs = Pfs::Open(opts);
  ASSERT_TRUE(pfs.ok()) << pfs.status();
  auto head = (*pfs)->InspectCommit("r", "master");
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->id(), ids.back());
  for (int i = 0; i < 5; ++i) {
    std::string out;
    ASSERT_TRUE((*pfs)
                    ->GetFile(
                        "r", ids[i], absl::StrCat("/f", i),
                        [](const FileInfo&) { return absl::OkStatus(); },
                        [&](std::string d) {
                          out += d;
                          return absl::OkStatus();
                        })
                    .ok());
    EXPECT_EQ(out, absl::StrCat("content ", i));
  }
  auto stats = (*pfs)->Fsck([](const std::string& p) { ADD_FAILURE() << p; });
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->commits(), 5u);
}

}  // namespace
}  // namespace tusk::pfs

namespace tusk::pfs {
namespace {

// GC and an upload in progress that found its content already stored (a
// dedup hit on a blob nothing else references any more): the blob survives.
TEST_F(PfsTest, GcKeepsWhatAnUploadInProgressReused) {
  std::string big(3 << 20, 0);  // more than an inline tail: packed
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 2654435761u >> 9);
  ASSERT_TRUE(pfs_->CreateRepo("gone", "").ok());
  ASSERT_TRUE(PutOneFile(pfs_.get(), "gone", "master", "/big", big).ok());
  ASSERT_TRUE(pfs_->DeleteRepo("gone", false).ok());
  auto up = pfs_->BeginUpload("data", "master");
  ASSERT_TRUE(up.ok());
  ASSERT_TRUE((*up)->BeginFile("/again", false).ok());
  ASSERT_TRUE((*up)->Write(big).ok());
  ASSERT_TRUE((*up)->EndFile(big.size()).ok());
  EXPECT_EQ((*up)->new_bytes(), 0u);  // all of it deduplicated
  GcOptions gc;
  gc.grace = absl::ZeroDuration();
  auto stats = pfs_->Gc(gc);
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_TRUE((*up)->Close().ok());
  EXPECT_EQ(Get("master", "/again"), big);
  auto fsck = pfs_->Fsck([](const std::string& p) { ADD_FAILURE() << p; });
  ASSERT_TRUE(fsck.ok());
  // With the upload gone, the next GC has nothing to delete of it either.
  stats = pfs_->Gc(gc);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(Get("master", "/again"), big);
}

}  // namespace
}  // namespace tusk::pfs

namespace tusk::pfs {
namespace {

// The largest pack file under `data_dir` (path and size).
std::pair<std::string, uintmax_t> LargestPack(const std::string& data_dir) {
  std::string largest;
  uintmax_t size = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(data_dir + "/objects")) {
    if (e.is_regular_file() && e.path().extension() == ".pack" && e.file_size() > size) {
      size = e.file_size();
      largest = e.path().string();
    }
  }
  return {largest, size};
}

// The content of repo@ref:path, or an error.
absl::StatusOr<std::string> ReadAll(Pfs* pfs, const std::string& repo, const std::string& ref,
                                    const std::string& path) {
  std::string out;
  RETURN_IF_ERROR(pfs->GetFile(
      repo, ref, path, [](const FileInfo&) { return absl::OkStatus(); },
      [&](std::string d) {
        out += d;
        return absl::OkStatus();
      }));
  return out;
}

// Deletes the index of `opts.data_dir` and opens it rebuilt from the object
// store; `summary` gets the rebuild's last progress line.
absl::StatusOr<std::unique_ptr<Pfs>> Rebuilt(PfsOptions opts, std::string* summary) {
  RETURN_IF_ERROR(RemoveAll(opts.data_dir + "/index"));
  opts.rebuild_index = true;
  opts.rebuild_progress = [summary](const std::string& line) { *summary = line; };
  return Pfs::Open(opts);
}

// A damaged pack does not stop a rebuild: what it alone held is lost (fsck
// names it), the rest comes back.
TEST(PfsRebuildTest, DamagedPackIsSkipped) {
  TempDir dir;
  PfsOptions opts;
  opts.data_dir = dir.path();
  std::string big(3 << 20, 0);  // its own pack, apart from the log packs
  std::mt19937_64 rng(7);
  for (auto& c : big) c = static_cast<char>(rng());
  {
    auto pfs = Pfs::Open(opts);
    ASSERT_TRUE(pfs.ok()) << pfs.status();
    ASSERT_TRUE((*pfs)->CreateRepo("r1", "").ok());
    ASSERT_TRUE((*pfs)->CreateRepo("r2", "").ok());
    ASSERT_TRUE(PutOneFile(pfs->get(), "r1", "master", "/big", big).ok());
    ASSERT_TRUE(PutOneFile(pfs->get(), "r2", "master", "/small", "fine").ok());
  }
  // Truncate the largest pack: the big file's chunks.
  auto [largest, size] = LargestPack(dir.path());
  ASSERT_GT(size, 1u << 20);
  std::filesystem::resize_file(largest, size / 2);
  std::string summary;
  auto pfs = Rebuilt(opts, &summary);
  ASSERT_TRUE(pfs.ok()) << pfs.status();
  EXPECT_NE(summary.find("1 damaged packs skipped"), std::string::npos) << summary;
  auto small = ReadAll(pfs->get(), "r2", "master", "/small");
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ(*small, "fine");
  std::vector<std::string> problems;
  auto fsck = (*pfs)->Fsck([&](const std::string& p) { problems.push_back(p); });
  ASSERT_TRUE(fsck.ok());
  ASSERT_FALSE(problems.empty());
  EXPECT_NE(problems[0].find("r1"), std::string::npos) << problems[0];
}

}  // namespace
}  // namespace tusk::pfs

namespace tusk::pfs {
namespace {

// A crash between a strict log pack and its index write leaves a log the
// index never applied. The next start voids its number, and a rebuild then
// agrees with the index instead of bringing the change back.
TEST(PfsRebuildTest, LogsThatNeverReachedTheIndexAreVoid) {
  TempDir dir;
  PfsOptions opts;
  opts.data_dir = dir.path();
  std::string real_head;
  {
    auto pfs = Pfs::Open(opts);
    ASSERT_TRUE(pfs.ok()) << pfs.status();
    ASSERT_TRUE((*pfs)->CreateRepo("r", "").ok());
    auto c = (*pfs)->StartCommit("r", "master", "", v1::USER, {});
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*pfs)->FinishCommit("r", "master", FinishOptions()).ok());
    real_head = c->id();
  }
  {
    // What the crashed change left: a log pack numbered after the last
    // applied log, whose index write never happened.
    auto kv = Kv::Open(dir.path() + "/index");
    ASSERT_TRUE(kv.ok());
    auto reserved = (*kv)->Get("mseq");
    ASSERT_TRUE(reserved.ok() && reserved->has_value());
    auto store = OpenLocalObjectStore(dir.path() + "/objects");
    ASSERT_TRUE(store.ok());
    auto blobs = BlobStore::Open(kv->get(), store->get());
    ASSERT_TRUE(blobs.ok());
    storage::v1::MetaLog log;
    uint64_t seq = 0;
    ASSERT_TRUE(absl::SimpleAtoi(**reserved, &seq));
    log.set_seq(seq);
    v1::CommitInfo ghost;
    ghost.set_id(std::string(32, 'a'));
    ghost.set_repo("r");
    ghost.set_branch("master");
    ghost.set_parent(real_head);
    ghost.set_state(v1::FINISHED);
    *log.add_events()->mutable_commit() = ghost;
    v1::BranchInfo b;
    b.set_repo("r");
    b.set_name("master");
    b.set_head(ghost.id());
    *log.add_events()->mutable_branch() = b;
    KvBatch dropped;
    ASSERT_TRUE((*blobs)->WriteLogPack({log}, {}, &dropped).ok());
  }
  {
    auto pfs = Pfs::Open(opts);  // voids the numbers the crash may have used
    ASSERT_TRUE(pfs.ok()) << pfs.status();
    auto head = (*pfs)->InspectCommit("r", "master");
    ASSERT_TRUE(head.ok());
    EXPECT_EQ(head->id(), real_head);
  }
  std::string summary;
  auto pfs = Rebuilt(opts, &summary);
  ASSERT_TRUE(pfs.ok()) << pfs.status();
  EXPECT_NE(summary.find("1 never applied"), std::string::npos) << summary;
  auto head = (*pfs)->InspectCommit("r", "master");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->id(), real_head);
  EXPECT_EQ((*pfs)->InspectCommit("r", std::string(32, 'a')).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace tusk::pfs

namespace tusk::pfs {
namespace {

// Restart (voids the rest of the reserved block), rebuild, writes, rebuild:
// the writes after the first rebuild must not take numbers that a void range
// covers, or the second rebuild ignores them.
class PfsRebuildTwiceTest : public ::testing::TestWithParam<LogMode> {};

TEST_P(PfsRebuildTwiceTest, WritesAfterARebuildSurviveTheNextOne) {
  TempDir dir;
  PfsOptions opts;
  opts.data_dir = dir.path();
  opts.log_mode = GetParam();
  {
    auto pfs = Pfs::Open(opts);
    ASSERT_TRUE(pfs.ok()) << pfs.status();
    ASSERT_TRUE((*pfs)->CreateRepo("r", "").ok());
    ASSERT_TRUE(PutOneFile(pfs->get(), "r", "master", "/before", "0").ok());
  }
  {
    auto pfs = Pfs::Open(opts);  // a restart: the reserved block's rest is void
    ASSERT_TRUE(pfs.ok()) << pfs.status();
  }
  std::string summary;
  std::vector<std::string> ids;
  {
    auto pfs = Rebuilt(opts, &summary);
    ASSERT_TRUE(pfs.ok()) << pfs.status();
    for (int i = 0; i < 3; ++i) {
      auto c = PutOneFile(pfs->get(), "r", "master", absl::StrCat("/after", i), "x");
      ASSERT_TRUE(c.ok()) << c.status();
      ids.push_back(c->id());
    }
  }
  auto pfs = Rebuilt(opts, &summary);
  ASSERT_TRUE(pfs.ok()) << pfs.status();
  EXPECT_NE(summary.find("0 never applied"), std::string::npos) << summary;
  auto head = (*pfs)->InspectCommit("r", "master");
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->id(), ids.back());
  for (const auto& id : ids) EXPECT_TRUE((*pfs)->InspectCommit("r", id).ok()) << id;
  // And once more after a restart of the rebuilt index.
  pfs->reset();
  auto again = Rebuilt(opts, &summary);
  ASSERT_TRUE(again.ok()) << again.status();
  head = (*again)->InspectCommit("r", "master");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->id(), ids.back());
}

INSTANTIATE_TEST_SUITE_P(LogModes, PfsRebuildTwiceTest,
                         ::testing::Values(LogMode::kStrict, LogMode::kShipped));

}  // namespace
}  // namespace tusk::pfs

namespace tusk::pfs {
namespace {

// Eight bytes of a pack's footer overwritten (inside a blob's hash): fsck
// names the pack, and a rebuild recovers every blob from its content, so
// the file still reads back.
TEST(PfsRebuildTest, DamagedFooterIsDetectedAndRecovered) {
  TempDir dir;
  PfsOptions opts;
  opts.data_dir = dir.path();
  opts.chunker = ChunkerOptions{1024, 4096, 16384};
  std::string big(3 << 20, 0);  // many chunks in a pack of their own
  std::mt19937_64 rng(11);
  for (auto& c : big) c = static_cast<char>(rng());
  {
    auto pfs = Pfs::Open(opts);
    ASSERT_TRUE(pfs.ok()) << pfs.status();
    ASSERT_TRUE((*pfs)->CreateRepo("r", "").ok());
    ASSERT_TRUE(PutOneFile(pfs->get(), "r", "master", "/big", big).ok());
  }
  auto [largest, size] = LargestPack(dir.path());
  std::string key = largest.substr(dir.path().size() + std::string("/objects/").size());
  {
    auto store = OpenLocalObjectStore(dir.path() + "/objects");
    ASSERT_TRUE(store.ok());
    auto footer = ReadPackFooter(store->get(), key, size);
    ASSERT_TRUE(footer.ok()) << footer.status();
    ASSERT_GT(footer->items_size(), 10);
    // The last item's hash, where it sits in the file.
    std::string whole;
    {
      std::ifstream f(largest, std::ios::binary);
      whole.assign(std::istreambuf_iterator<char>(f), {});
    }
    size_t at = whole.rfind(footer->items(footer->items_size() - 1).hash());
    ASSERT_NE(at, std::string::npos);
    std::fstream f(largest, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>(at + 12));
    f.write("\xAA\xAA\xAA\xAA\xAA\xAA\xAA\xAA", 8);
  }
  {
    auto pfs = Pfs::Open(opts);
    ASSERT_TRUE(pfs.ok()) << pfs.status();
    std::vector<std::string> problems;
    auto fsck = (*pfs)->Fsck([&](const std::string& p) { problems.push_back(p); });
    ASSERT_TRUE(fsck.ok());
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_NE(problems[0].find("damaged footer"), std::string::npos) << problems[0];
  }
  std::string summary;
  auto pfs = Rebuilt(opts, &summary);
  ASSERT_TRUE(pfs.ok()) << pfs.status();
  EXPECT_NE(summary.find("1 packs with a damaged footer"), std::string::npos) << summary;
  auto got = ReadAll(pfs->get(), "r", "master", "/big");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == big);
}

}  // namespace
}  // namespace tusk::pfs

namespace tusk::pfs {
namespace {

// A failed upload's packs are garbage at once: GC deletes them without
// waiting out the grace period (a full disk needs that space back).
TEST(PfsGcTest, FailedUploadPacksGoWithoutTheGrace) {
  TempDir dir;
  PfsOptions opts;
  opts.data_dir = dir.path();
  opts.blobs.pack_size = 1 << 20;
  auto pfs = Pfs::Open(opts);
  ASSERT_TRUE(pfs.ok()) << pfs.status();
  ASSERT_TRUE((*pfs)->CreateRepo("r", "").ok());
  std::string big(6 << 20, 0);
  std::mt19937_64 rng(5);
  for (auto& c : big) c = static_cast<char>(rng());
  {
    auto up = (*pfs)->BeginUpload("r", "master");
    ASSERT_TRUE(up.ok());
    ASSERT_TRUE((*up)->BeginFile("/big", false).ok());
    ASSERT_TRUE((*up)->Write(big).ok());
    // The client goes away: the upload is destroyed without Close.
  }
  GcOptions gc;  // the default grace: an hour
  auto stats = (*pfs)->Gc(gc);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_GE(stats->packs_deleted(), 1u);
  EXPECT_GE(stats->bytes_deleted(), 1u << 20);
  // And an acknowledged file next to it is untouched.
  ASSERT_TRUE(PutOneFile(pfs->get(), "r", "master", "/kept", big.substr(0, 2 << 20)).ok());
  stats = (*pfs)->Gc(gc);
  ASSERT_TRUE(stats.ok());
  auto fsck = (*pfs)->Fsck([](const std::string& p) { ADD_FAILURE() << p; });
  ASSERT_TRUE(fsck.ok());
}

}  // namespace
}  // namespace tusk::pfs

namespace tusk::pfs {
namespace {

// A durable record (a pipeline or source spec) survives rebuild, checkpoint,
// rebuild: the first rebuild must mark it as a record again, or the
// checkpoint leaves it out and the second rebuild loses it.
TEST(PfsRebuildTest, RecordsSurviveARebuildACheckpointAndARebuild) {
  TempDir dir;
  PfsOptions opts;
  opts.data_dir = dir.path();
  {
    auto pfs = Pfs::Open(opts);
    ASSERT_TRUE(pfs.ok()) << pfs.status();
    ASSERT_TRUE((*pfs)->Space(kPipelineSpace).PutRecord(PipelineKey("test"), "spec").ok());
  }
  std::string summary;
  {
    auto pfs = Rebuilt(opts, &summary);
    ASSERT_TRUE(pfs.ok()) << pfs.status();
    GcOptions gc;
    ASSERT_TRUE((*pfs)->Gc(gc).ok());  // writes a checkpoint
  }
  auto pfs = Rebuilt(opts, &summary);
  ASSERT_TRUE(pfs.ok()) << pfs.status();
  auto v = (*pfs)->Space(kPipelineSpace).Get(PipelineKey("test"));
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(v->has_value()) << summary;
  EXPECT_EQ(**v, "spec");
}

// Rebuilds that follow each other within a second each keep the index they
// replace (the old ones' names once collided, and the second rebuild failed).
TEST(PfsRebuildTest, RebuildsWithinOneSecondKeepEveryOldIndex) {
  TempDir dir;
  PfsOptions opts;
  opts.data_dir = dir.path();
  {
    auto pfs = Pfs::Open(opts);
    ASSERT_TRUE(pfs.ok()) << pfs.status();
    ASSERT_TRUE(CommitFiles(pfs->get(), "r", {{"/a", "kept"}}).ok());
  }
  opts.rebuild_index = true;  // over the index there is: it is kept aside
  for (int i = 0; i < 3; ++i) {
    auto pfs = Pfs::Open(opts);
    ASSERT_TRUE(pfs.ok()) << "rebuild " << i << ": " << pfs.status();
    auto info = (*pfs)->InspectFile("r", "master", "/a");
    ASSERT_TRUE(info.ok()) << info.status();
  }
  int old_indexes = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    if (e.path().filename().string().rfind("index.old-", 0) == 0) ++old_indexes;
  }
  EXPECT_EQ(old_indexes, 3);
}

// Records written with a commit (FinishOptions.records) and in batches
// (WriteRecords: puts, deletes, deletions by prefix, keys of any bytes) come
// back from a rebuild as they were last written, before and after a
// checkpoint.
TEST(PfsRebuildTest, RecordChangesWithCommitsAndPrefixesSurviveRebuilds) {
  TempDir dir;
  PfsOptions opts;
  opts.data_dir = dir.path();
  const std::string nul(1, '\0');
  auto job = [&](const std::string& p, const std::string& id) { return "Jj" + p + nul + id; };
  const std::string raw = "Jh\x01\xff" + nul + "\x80";  // not UTF-8, with a NUL
  {
    auto pfs = Pfs::Open(opts);
    ASSERT_TRUE(pfs.ok()) << pfs.status();
    ASSERT_TRUE((*pfs)->CreateRepo("r", "").ok());
    auto c = (*pfs)->StartCommit("r", "master", "", v1::USER, {});
    ASSERT_TRUE(c.ok()) << c.status();
    RecordChanges with_commit;
    with_commit.put[job("p", "a")] = "job a";
    with_commit.put[job("p", "b")] = "job b";
    with_commit.put[job("q", "a")] = "other pipeline";
    with_commit.put[raw] = "done";
    FinishOptions fo;
    fo.records = &with_commit;
    ASSERT_TRUE((*pfs)->FinishCommit("r", c->id(), fo).ok());
    RecordChanges later;
    later.deleted_prefixes.push_back(job("p", ""));
    later.put[job("p", "c")] = "job c";  // after the prefix: it stays
    later.deleted.push_back(raw);
    KvBatch extra;
    extra.Put("Jx", "not durable");
    ASSERT_TRUE((*pfs)->WriteRecords(later, &extra).ok());
    auto x = (*pfs)->Space(kJobSpace).Get("Jx");
    ASSERT_TRUE(x.ok() && x->has_value());
  }
  auto check = [&](Pfs* pfs, const std::string& when) {
    auto space = pfs->Space(kJobSpace);
    std::map<std::string, std::string> got;
    ASSERT_TRUE(space
                    .ScanPrefix("J",
                                [&](absl::string_view k, absl::string_view v) {
                                  got[std::string(k)] = std::string(v);
                                  return true;
                                })
                    .ok());
    std::map<std::string, std::string> want = {{job("p", "c"), "job c"},
                                               {job("q", "a"), "other pipeline"}};
    EXPECT_EQ(got, want) << when;
  };
  std::string summary;
  {
    auto pfs = Rebuilt(opts, &summary);
    ASSERT_TRUE(pfs.ok()) << pfs.status();
    check(pfs->get(), "after a rebuild");
    GcOptions gc;
    ASSERT_TRUE((*pfs)->Gc(gc).ok());  // a checkpoint
  }
  auto pfs = Rebuilt(opts, &summary);
  ASSERT_TRUE(pfs.ok()) << pfs.status();
  check(pfs->get(), "after a checkpoint and a rebuild");
}

}  // namespace
}  // namespace tusk::pfs
