#include "dispatcher/datums.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "pfs/pfs.h"
#include "pfs/test_env.h"

namespace tusk::dispatcher {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Datums over real trees: repos in a real Pfs, each input resolved to the
// head commit's root, and the expected datums written out by hand.
class DatumsTest : public pfs::PfsFixture {
 protected:
  // Commits `files` (path -> content; empty content deletes the path) to
  // repo@master, creating the repo on first use; returns the new root.
  Hash Commit(const std::string& repo, const std::map<std::string, std::string>& files) {
    auto c = pfs::CommitFiles(pfs_.get(), repo, files);
    EXPECT_TRUE(c.ok()) << c.status();
    resolved_[repo] = Resolve(*c);
    return resolved_[repo].root;
  }

  static ResolvedInput Resolve(const pfs::v1::CommitInfo& c) {
    ResolvedInput r;
    r.commit = c.id();
    if (!c.root().empty()) {
      auto h = Hash::FromHex(c.root());
      EXPECT_TRUE(h.ok());
      r.root = *h;
    }
    return r;
  }

  static Input ParseInput(const std::string& json) {
    Input in;
    auto st = google::protobuf::util::JsonStringToMessage(json, &in);
    EXPECT_TRUE(st.ok()) << st << " in " << json;
    return in;
  }

  // Names every pfs input after its repo, as the spec parser does.
  static void NameInputs(Input* in) {
    if (in->has_pfs() && in->pfs().name().empty()) in->mutable_pfs()->set_name(in->pfs().repo());
    for (auto* list :
         {in->mutable_cross(), in->mutable_union_(), in->mutable_join(), in->mutable_group()}) {
      for (auto& child : *list) NameInputs(&child);
    }
  }

  // The datums of `json` as "name:path name:path ..." strings, in datum order.
  std::vector<std::string> Datums(const std::string& json) {
    Input in = ParseInput(json);
    NameInputs(&in);
    ResolvedInputs resolved;
    for (const auto& [repo, r] : resolved_) resolved[repo] = r;
    auto datums = ListDatums(pfs_->nodes(), in, resolved);
    EXPECT_TRUE(datums.ok()) << datums.status();
    std::vector<std::string> out;
    if (!datums.ok()) return out;
    for (const auto& d : *datums) {
      std::vector<std::string> parts;
      for (const auto& i : d.inputs) parts.push_back(i.name() + ":" + i.path());
      out.push_back(absl::StrJoin(parts, " "));
    }
    return out;
  }

  std::map<std::string, ResolvedInput> resolved_;
};

TEST_F(DatumsTest, PfsGlobs) {
  Commit("a", {{"/x/1.txt", "one"}, {"/x/2.txt", "two"}, {"/y/3.txt", "three"}, {"/top.csv", "t"}});
  EXPECT_THAT(Datums(R"js({"pfs": {"repo": "a", "glob": "/"}})js"), ElementsAre("a:/"));
  EXPECT_THAT(Datums(R"js({"pfs": {"repo": "a", "glob": "/*"}})js"),
              ElementsAre("a:/top.csv", "a:/x", "a:/y"));
  EXPECT_THAT(Datums(R"js({"pfs": {"repo": "a", "glob": "/*/*"}})js"),
              ElementsAre("a:/x/1.txt", "a:/x/2.txt", "a:/y/3.txt"));
  EXPECT_THAT(Datums(R"js({"pfs": {"repo": "a", "glob": "/x/*.txt"}})js"),
              ElementsAre("a:/x/1.txt", "a:/x/2.txt"));
  EXPECT_THAT(Datums(R"js({"pfs": {"repo": "a", "glob": "/*.csv"}})js"), ElementsAre("a:/top.csv"));
  EXPECT_THAT(Datums(R"js({"pfs": {"repo": "a", "glob": "/nothing/*"}})js"), IsEmpty());

  // Directories and files are told apart, and a datum carries the content hash.
  Input in = ParseInput(R"js({"pfs": {"repo": "a", "name": "a", "glob": "/*"}})js");
  auto datums = ListDatums(pfs_->nodes(), in, {{"a", resolved_["a"]}});
  ASSERT_TRUE(datums.ok()) << datums.status();
  ASSERT_EQ(datums->size(), 3u);
  EXPECT_FALSE((*datums)[0].inputs[0].dir());
  EXPECT_TRUE((*datums)[1].inputs[0].dir());
  EXPECT_EQ((*datums)[1].inputs[0].commit(), resolved_["a"].commit);
  EXPECT_EQ((*datums)[1].inputs[0].hash().size(), 64u);
  EXPECT_NE((*datums)[1].inputs[0].hash(), (*datums)[2].inputs[0].hash());
}

TEST_F(DatumsTest, EmptyBranchHasNoDatums) {
  ASSERT_TRUE(pfs_->CreateRepo("e", "").ok());
  resolved_["e"] = ResolvedInput{};
  EXPECT_THAT(Datums(R"js({"pfs": {"repo": "e", "glob": "/*"}})js"), IsEmpty());
}

TEST_F(DatumsTest, CrossIsEveryCombination) {
  Commit("a", {{"/x", "1"}, {"/y", "2"}});
  Commit("b", {{"/1", "1"}, {"/2", "2"}, {"/3", "3"}});
  EXPECT_THAT(
      Datums(R"js({"cross": [{"pfs": {"repo": "a", "glob": "/*"}},
                                   {"pfs": {"repo": "b", "glob": "/*"}}]})js"),
      ElementsAre("a:/x b:/1", "a:/x b:/2", "a:/x b:/3", "a:/y b:/1", "a:/y b:/2", "a:/y b:/3"));
  // The whole of one input crossed with each file of the other.
  EXPECT_THAT(Datums(R"js({"cross": [{"pfs": {"repo": "a", "glob": "/"}},
                                   {"pfs": {"repo": "b", "glob": "/*"}}]})js"),
              ElementsAre("a:/ b:/1", "a:/ b:/2", "a:/ b:/3"));
  // An input without datums makes the product empty.
  EXPECT_THAT(Datums(R"js({"cross": [{"pfs": {"repo": "a", "glob": "/*"}},
                                   {"pfs": {"repo": "b", "glob": "/none/*"}}]})js"),
              IsEmpty());
}

TEST_F(DatumsTest, UnionIsEachInputsDatums) {
  Commit("a", {{"/x", "1"}, {"/y", "2"}});
  Commit("b", {{"/1", "1"}, {"/2", "2"}});
  EXPECT_THAT(Datums(R"js({"union": [{"pfs": {"repo": "a", "glob": "/*"}},
                                   {"pfs": {"repo": "b", "glob": "/*"}}]})js"),
              ElementsAre("a:/x", "a:/y", "b:/1", "b:/2"));
  // A union inside a cross: each datum of the union with each of the other.
  Commit("c", {{"/k", "k"}});
  EXPECT_THAT(Datums(R"js({"cross": [{"pfs": {"repo": "c", "glob": "/*"}},
                                   {"union": [{"pfs": {"repo": "a", "glob": "/*"}},
                                              {"pfs": {"repo": "b", "glob": "/*"}}]}]})js"),
              ElementsAre("c:/k a:/x", "c:/k a:/y", "c:/k b:/1", "c:/k b:/2"));
}

TEST_F(DatumsTest, JoinMatchesOnCaptureGroups) {
  Commit("txt", {{"/1.txt", "a"}, {"/2.txt", "b"}, {"/3.txt", "c"}});
  Commit("csv", {{"/1.csv", "a"}, {"/2.csv", "b"}, {"/4.csv", "d"}});
  const std::string inner = R"js({"join": [
      {"pfs": {"repo": "txt", "glob": "/(*).txt", "join_on": "$1"}},
      {"pfs": {"repo": "csv", "glob": "/(*).csv", "join_on": "$1"}}]})js";
  EXPECT_THAT(Datums(inner), ElementsAre("txt:/1.txt csv:/1.csv", "txt:/2.txt csv:/2.csv"));

  // outer_join on one side: its unmatched files are datums of their own.
  EXPECT_THAT(Datums(R"js({"join": [
      {"pfs": {"repo": "txt", "glob": "/(*).txt", "join_on": "$1", "outer_join": true}},
      {"pfs": {"repo": "csv", "glob": "/(*).csv", "join_on": "$1"}}]})js"),
              ElementsAre("txt:/1.txt csv:/1.csv", "txt:/2.txt csv:/2.csv", "txt:/3.txt"));
  // On both sides: every unmatched file.
  EXPECT_THAT(
      Datums(R"js({"join": [
      {"pfs": {"repo": "txt", "glob": "/(*).txt", "join_on": "$1", "outer_join": true}},
      {"pfs": {"repo": "csv", "glob": "/(*).csv", "join_on": "$1", "outer_join": true}}]})js"),
      ElementsAre("txt:/1.txt csv:/1.csv", "txt:/2.txt csv:/2.csv", "txt:/3.txt", "csv:/4.csv"));

  // Several files with one key in one input: one datum per combination.
  Commit("parts", {{"/1-a.dat", "x"}, {"/1-b.dat", "y"}, {"/2-a.dat", "z"}});
  EXPECT_THAT(Datums(R"js({"join": [
      {"pfs": {"repo": "parts", "glob": "/(*)-(*).dat", "join_on": "$1"}},
      {"pfs": {"repo": "csv", "glob": "/(*).csv", "join_on": "$1"}}]})js"),
              ElementsAre("parts:/1-a.dat csv:/1.csv", "parts:/1-b.dat csv:/1.csv",
                          "parts:/2-a.dat csv:/2.csv"));
  // A key from two capture groups, in another order.
  Commit("pairs", {{"/a-1.dat", "p"}, {"/b-2.dat", "q"}});
  Commit("keys", {{"/1a", "k"}, {"/2c", "k"}});
  EXPECT_THAT(Datums(R"js({"join": [
      {"pfs": {"repo": "pairs", "glob": "/(*)-(*).dat", "join_on": "$2$1"}},
      {"pfs": {"repo": "keys", "glob": "/(*)", "join_on": "$1"}}]})js"),
              ElementsAre("pairs:/a-1.dat keys:/1a"));
}

TEST_F(DatumsTest, GroupGathersEveryFileOfAKey) {
  Commit("logs",
         {{"/2026-01-01-a.log", "1"}, {"/2026-01-01-b.log", "2"}, {"/2026-01-02-a.log", "3"}});
  Commit("meta", {{"/2026-01-01.json", "m"}, {"/2026-01-03.json", "n"}});
  EXPECT_THAT(Datums(R"js({"group": [
      {"pfs": {"repo": "logs", "glob": "/(*-*-*)-*.log", "group_by": "$1"}},
      {"pfs": {"repo": "meta", "glob": "/(*).json", "group_by": "$1"}}]})js"),
              ElementsAre("logs:/2026-01-01-a.log logs:/2026-01-01-b.log meta:/2026-01-01.json",
                          "logs:/2026-01-02-a.log", "meta:/2026-01-03.json"));
}

TEST_F(DatumsTest, ChangedDatumKeysComeFromTheTreeDiff) {
  Hash old_root = Commit("a", {{"/x/1", "one"}, {"/y/2", "two"}, {"/z/3", "three"}});
  Hash new_root = Commit("a", {{"/x/1", "ONE"}, {"/z/3", ""}, {"/w/4", "four"}});
  auto keys = [&](const std::string& glob) {
    PFSInput in;
    in.set_repo("a");
    in.set_name("a");
    in.set_glob(glob);
    auto k = ChangedDatumKeys(pfs_->nodes(), in, old_root, new_root);
    EXPECT_TRUE(k.ok()) << k.status();
    return k.ok() ? std::vector<std::string>(k->begin(), k->end()) : std::vector<std::string>{};
  };
  EXPECT_THAT(keys("/*"), ElementsAre("/w", "/x", "/z"));  // /y did not change
  EXPECT_THAT(keys("/*/*"), ElementsAre("/w/4", "/x/1", "/z/3"));
  EXPECT_THAT(keys("/"), ElementsAre("/"));
  EXPECT_THAT(keys("/x/*"), ElementsAre("/x/1"));
  EXPECT_THAT(keys("/y/*"), IsEmpty());
  // From an empty tree: every datum is new.
  PFSInput in;
  in.set_glob("/*");
  auto all = ChangedDatumKeys(pfs_->nodes(), in, Hash(), old_root);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_THAT(std::vector<std::string>(all->begin(), all->end()), ElementsAre("/x", "/y", "/z"));
}

TEST_F(DatumsTest, LookupDatumFindsOneKey) {
  Commit("a", {{"/x/1", "one"}, {"/y", "two"}});
  PFSInput in;
  in.set_repo("a");
  in.set_name("a");
  in.set_glob("/*");
  auto x = LookupDatum(pfs_->nodes(), in, resolved_["a"], "/x");
  ASSERT_TRUE(x.ok()) << x.status();
  ASSERT_TRUE(x->has_value());
  EXPECT_EQ((*x)->key, "/x");
  EXPECT_TRUE((*x)->inputs[0].dir());
  auto gone = LookupDatum(pfs_->nodes(), in, resolved_["a"], "/nope");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  auto empty = LookupDatum(pfs_->nodes(), in, ResolvedInput{}, "/x");
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->has_value());
}

TEST_F(DatumsTest, HashCoversContentPathAndSalt) {
  Commit("a", {{"/x", "one"}, {"/y", "two"}});
  auto list = [&] {
    Input in = ParseInput(R"js({"pfs": {"repo": "a", "name": "a", "glob": "/*"}})js");
    auto d = ListDatums(pfs_->nodes(), in, {{"a", resolved_["a"]}});
    EXPECT_TRUE(d.ok());
    return *d;
  };
  auto before = list();
  ASSERT_EQ(before.size(), 2u);
  EXPECT_EQ(DatumHash(0, before[0]), DatumHash(0, before[0]));
  EXPECT_NE(DatumHash(0, before[0]), DatumHash(0, before[1]));
  EXPECT_NE(DatumHash(0, before[0]), DatumHash(1, before[0]));  // update --reprocess
  Commit("a", {{"/y", "TWO"}});
  auto after = list();
  EXPECT_EQ(DatumHash(0, before[0]), DatumHash(0, after[0]));  // /x unchanged
  EXPECT_NE(DatumHash(0, before[1]), DatumHash(0, after[1]));  // /y changed
  // Same content under another path is another datum.
  Commit("a", {{"/z", "one"}});
  auto more = list();
  ASSERT_EQ(more.size(), 3u);
  EXPECT_EQ(more[0].inputs[0].hash(), more[2].inputs[0].hash());
  EXPECT_NE(DatumHash(0, more[0]), DatumHash(0, more[2]));
}

TEST(GlobTest, MatchCapturesAndKeys) {
  EXPECT_TRUE(MatchGlobPath("/*", "/a"));
  EXPECT_FALSE(MatchGlobPath("/*", "/a/b"));
  EXPECT_TRUE(MatchGlobPath("/*/b", "/x/b"));
  EXPECT_FALSE(MatchGlobPath("/*/b", "/x/c"));
  EXPECT_TRUE(MatchGlobPath("/(*).txt", "/a.txt"));  // parentheses only capture
  EXPECT_FALSE(MatchGlobPath("/(*).txt", "/a.csv"));
  EXPECT_TRUE(MatchGlobPath("/**", "/a/b/c"));
  EXPECT_TRUE(MatchGlobPath("/", "/"));

  EXPECT_THAT(GlobCaptures("/(*)-(*).txt", "/ab-cd.txt"), ElementsAre("ab", "cd"));
  EXPECT_THAT(GlobCaptures("/(*)/(*)", "/2026/x.log"), ElementsAre("2026", "x.log"));
  EXPECT_THAT(GlobCaptures("/(*)-(*).txt", "/abcd.txt"), IsEmpty());
  EXPECT_THAT(GlobCaptures("/(*).txt", "/a/b.txt"), IsEmpty());  // * stays in one component

  EXPECT_EQ(ExpandKey("$1", {"a", "b"}), "a");
  EXPECT_EQ(ExpandKey("$2-$1", {"a", "b"}), "b-a");
  EXPECT_EQ(ExpandKey("k$3", {"a", "b"}), "k");  // no such group: empty
  EXPECT_EQ(ExpandKey("$", {"a"}), "$");
  std::vector<std::string> twelve(12, "x");
  twelve[11] = "L";
  EXPECT_EQ(ExpandKey("$12", twelve), "L");
}

}  // namespace
}  // namespace tusk::dispatcher
