#include "pfs/refs.h"

#include <gtest/gtest.h>

namespace tusk::pfs {
namespace {

TEST(RefsTest, RepoNames) {
  EXPECT_TRUE(ValidateRepoName("images").ok());
  EXPECT_TRUE(ValidateRepoName("a_b-c9").ok());
  EXPECT_FALSE(ValidateRepoName("").ok());
  EXPECT_FALSE(ValidateRepoName("-x").ok());
  EXPECT_FALSE(ValidateRepoName("a/b").ok());
  EXPECT_FALSE(ValidateRepoName("a b").ok());
  EXPECT_FALSE(ValidateRepoName("a@b").ok());
  EXPECT_FALSE(ValidateRepoName(std::string(64, 'a')).ok());
  auto s = ValidateRepoName("bad name");
  EXPECT_NE(s.message().find("bad name"), std::string::npos);
}

TEST(RefsTest, Utf8) {
  // (IsValidUtf8 itself: ingest/format_test.cc.)
  EXPECT_TRUE(NormalizePath("/caf\xc3\xa9/\xf0\x9f\x90\x98").ok());
  EXPECT_FALSE(NormalizePath("/caf\xc3").ok());  // truncated
  auto s = NormalizePath("/a/\xff\xfe.txt");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("not valid UTF-8"), std::string::npos);
  EXPECT_NE(s.status().message().find("\\xff"), std::string::npos) << s.status();
  EXPECT_FALSE(ValidateBranchName("ma\xffster").ok());
}

TEST(RefsTest, BranchNames) {
  EXPECT_TRUE(ValidateBranchName("master").ok());
  EXPECT_TRUE(ValidateBranchName("v1.2_rc-3").ok());
  EXPECT_FALSE(ValidateBranchName("").ok());
  EXPECT_FALSE(ValidateBranchName(".hidden").ok());
  EXPECT_FALSE(ValidateBranchName("a..b").ok());
  EXPECT_FALSE(ValidateBranchName("a:b").ok());
  EXPECT_FALSE(ValidateBranchName("a^").ok());
  EXPECT_FALSE(ValidateBranchName("0123456789abcdef0123456789abcdef").ok());
}

TEST(RefsTest, CommitIds) {
  std::string id = NewCommitId();
  EXPECT_TRUE(IsCommitId(id));
  EXPECT_NE(id, NewCommitId());
  EXPECT_FALSE(IsCommitId("0123456789ABCDEF0123456789abcdef"));
  EXPECT_FALSE(IsCommitId("0123"));
}

TEST(RefsTest, Paths) {
  EXPECT_EQ(*NormalizePath("a/b"), "/a/b");
  EXPECT_EQ(*NormalizePath("//a///b/"), "/a/b");
  EXPECT_EQ(*NormalizePath(""), "/");
  EXPECT_EQ(*NormalizePath("/"), "/");
  EXPECT_EQ(*NormalizePath("/d\xc3\xa9j\xc3\xa0/\xe6\x97\xa5\xe6\x9c\xac"),
            "/d\xc3\xa9j\xc3\xa0/\xe6\x97\xa5\xe6\x9c\xac");
  EXPECT_FALSE(NormalizePath("/a/../../etc/passwd").ok());
  EXPECT_FALSE(NormalizePath("..").ok());
  EXPECT_FALSE(NormalizePath("/a/./b").ok());
  EXPECT_FALSE(NormalizePath(std::string("/a\0b", 4)).ok());
  auto s = NormalizePath("/x/../y");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("'..'"), std::string::npos);
  EXPECT_EQ(SplitPath("/a/b/c").size(), 3u);
  EXPECT_TRUE(SplitPath("/").empty());
  EXPECT_EQ(JoinPath("/", "a"), "/a");
  EXPECT_EQ(JoinPath("/a", "b"), "/a/b");
}

TEST(RefsTest, Refs) {
  auto r = ParseRef("master");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->base, "master");
  EXPECT_FALSE(r->is_commit_id);
  EXPECT_EQ(r->ancestors, 0);
  r = ParseRef("master^^");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ancestors, 2);
  r = ParseRef("master~3^");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ancestors, 4);
  r = ParseRef("dev~");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ancestors, 1);
  r = ParseRef("0123456789abcdef0123456789abcdef~2");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->is_commit_id);
  EXPECT_EQ(r->ancestors, 2);
  EXPECT_FALSE(ParseRef("").ok());
  EXPECT_FALSE(ParseRef("master~x").ok());
  EXPECT_FALSE(ParseRef("~1").ok());
  EXPECT_FALSE(ParseRef("bad name").ok());
}

TEST(RefsTest, FileSpecs) {
  auto f = ParseFileSpec("images@dev~1:/a/b.png");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->repo, "images");
  EXPECT_EQ(f->ref, "dev~1");
  EXPECT_EQ(f->path, "/a/b.png");
  f = ParseFileSpec("images");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->ref, "master");
  EXPECT_EQ(f->path, "/");
  EXPECT_FALSE(f->has_path);
  f = ParseFileSpec("images:/x:y");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->ref, "master");
  EXPECT_EQ(f->path, "/x:y");
  f = ParseFileSpec("images@master:/with@at");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->path, "/with@at");
  f = ParseFileSpec("images:/x@y");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->repo, "images");
  EXPECT_EQ(f->path, "/x@y");
  EXPECT_FALSE(ParseFileSpec("bad repo@master").ok());
  EXPECT_FALSE(ParseFileSpec("r@master:/../x").ok());
  EXPECT_FALSE(ParseFileSpec("r@:/x").ok());
}

}  // namespace
}  // namespace tusk::pfs
