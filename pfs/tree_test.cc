#include "pfs/tree.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "pfs/test_env.h"

namespace tusk::pfs {
namespace {

Entry FileEntry(const std::string& name, uint64_t content) {
  Entry e;
  e.set_name(name);
  e.set_type(Entry::FILE);
  e.set_size(content % 1000);
  e.set_hash(Sha256(absl::StrCat(content)).Raw());
  return e;
}

class TreeTest : public ::testing::Test {
 protected:
  // Applies changes and makes the new nodes durable in the index.
  DirInfo Edit(const Hash& root, const std::vector<DirChange>& changes,
               uint64_t* new_blobs = nullptr) {
    auto writer = env_.blobs->NewWriter();
    auto info = EditDir(env_.nodes.get(), writer.get(), root, changes);
    EXPECT_TRUE(info.ok()) << info.status();
    KvBatch batch;
    EXPECT_TRUE(writer->Finish(&batch).ok());
    EXPECT_TRUE(env_.kv->Write(&batch, false).ok());
    if (new_blobs) *new_blobs = writer->new_blobs();
    return info.ok() ? *info : DirInfo{};
  }

  std::map<std::string, Entry> Contents(const Hash& root) {
    std::map<std::string, Entry> out;
    std::string last;
    auto s = ForEachEntry(env_.nodes.get(), root, [&](const Entry& e) {
      EXPECT_LT(last, e.name()) << "entries out of order";
      last = e.name();
      out[e.name()] = e;
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  DirInfo FromScratch(const std::map<std::string, Entry>& model) {
    std::vector<DirChange> all;
    for (const auto& [n, e] : model) all.push_back({n, e});
    return Edit(Hash{}, all);
  }

  StoreEnv env_{/*cache_bytes=*/64 << 10};  // small cache: exercise reads from the store
};

TEST_F(TreeTest, RandomOperationsMatchModel) {
  std::mt19937_64 rng(42);
  std::map<std::string, Entry> model;
  Hash root;
  for (int round = 0; round < 40; ++round) {
    std::map<std::string, std::optional<Entry>> batch;
    int n = round < 5 ? 800 : static_cast<int>(rng() % 60) + 1;
    for (int i = 0; i < n; ++i) {
      std::string name = absl::StrCat("f", rng() % 5000);
      if (rng() % 3 == 0) {
        batch[name] = std::nullopt;
      } else {
        batch[name] = FileEntry(name, rng());
      }
    }
    std::vector<DirChange> changes;
    for (auto& [name, e] : batch) {
      changes.push_back({name, e});
      if (e) {
        model[name] = *e;
      } else {
        model.erase(name);
      }
    }
    Hash old_root = root;
    auto old_model = Contents(old_root);
    DirInfo info = Edit(root, changes);
    root = info.hash;
    auto got = Contents(root);
    ASSERT_EQ(got.size(), model.size()) << "round " << round;
    for (const auto& [name, e] : model) {
      ASSERT_TRUE(got.count(name)) << name;
      EXPECT_EQ(got[name].hash(), e.hash());
    }
    EXPECT_EQ(info.entries, model.size());
    // Canonical: the same content built from scratch has the same hash.
    EXPECT_EQ(FromScratch(model).hash, root) << "round " << round;
    // Point lookups.
    for (int i = 0; i < 20; ++i) {
      std::string name = absl::StrCat("f", rng() % 5000);
      auto e = FindEntry(env_.nodes.get(), root, name);
      ASSERT_TRUE(e.ok());
      EXPECT_EQ(e->has_value(), model.count(name) > 0) << name;
    }
    // Diff against the previous version matches the models' difference.
    std::map<std::string, PathDiff::Kind> want;
    for (const auto& [name, e] : old_model) {
      if (!model.count(name)) {
        want["/" + name] = PathDiff::kDeleted;
      } else if (model[name].hash() != e.hash() || model[name].size() != e.size()) {
        want["/" + name] = PathDiff::kModified;
      }
    }
    for (const auto& [name, e] : model) {
      if (!old_model.count(name)) want["/" + name] = PathDiff::kAdded;
    }
    std::map<std::string, PathDiff::Kind> diff;
    ASSERT_TRUE(DiffTrees(env_.nodes.get(), old_root, root, "/", [&](const PathDiff& d) {
                  diff[d.path] = d.kind;
                  return absl::OkStatus();
                }).ok());
    EXPECT_EQ(diff, want) << "round " << round;
  }
}

TEST_F(TreeTest, DeleteEverythingGivesEmptyTree) {
  std::vector<DirChange> puts, dels;
  for (int i = 0; i < 500; ++i) {
    std::string n = absl::StrCat("x", i);
    puts.push_back({n, FileEntry(n, i)});
  }
  std::sort(puts.begin(), puts.end(), [](auto& a, auto& b) { return a.name < b.name; });
  DirInfo info = Edit(Hash{}, puts);
  EXPECT_FALSE(info.hash.IsZero());
  for (auto& p : puts) dels.push_back({p.name, std::nullopt});
  EXPECT_TRUE(Edit(info.hash, dels).hash.IsZero());
}

TEST_F(TreeTest, LargeDirectoryEditRewritesFewNodes) {
  std::vector<DirChange> puts;
  for (int i = 0; i < 200000; ++i) {
    std::string n = absl::StrCat("file-", 1000000 + i);
    puts.push_back({n, FileEntry(n, i)});
  }
  DirInfo big = Edit(Hash{}, puts);
  EXPECT_EQ(big.entries, 200000u);
  uint64_t new_blobs = 0;
  DirInfo changed = Edit(big.hash, {{"file-1100000", FileEntry("file-1100000", 7)}}, &new_blobs);
  EXPECT_NE(changed.hash, big.hash);
  // One node per level: 200k entries at fanout ~64 is 3-4 levels.
  EXPECT_LE(new_blobs, 6u);
  // Diff touches one file.
  int diffs = 0;
  ASSERT_TRUE(DiffTrees(env_.nodes.get(), big.hash, changed.hash, "/", [&](const PathDiff& d) {
                EXPECT_EQ(d.path, "/file-1100000");
                diffs++;
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(diffs, 1);
}

TEST_F(TreeTest, NestedDirectoriesAndPaths) {
  DirInfo sub = Edit(Hash{}, {{"leaf.txt", FileEntry("leaf.txt", 1)}});
  Entry dir;
  dir.set_name("d");
  dir.set_type(Entry::DIR);
  dir.set_hash(sub.hash.Raw());
  dir.set_size(sub.size);
  dir.set_file_count(1);
  DirInfo root = Edit(Hash{}, {{"a.txt", FileEntry("a.txt", 2)}, {"d", dir}});
  EXPECT_EQ(root.file_count, 2u);
  auto e = LookupPath(env_.nodes.get(), root.hash, "/d/leaf.txt");
  ASSERT_TRUE(e.ok());
  ASSERT_TRUE(e->has_value());
  EXPECT_EQ((*e)->name(), "leaf.txt");
  e = LookupPath(env_.nodes.get(), root.hash, "/a.txt/nope");
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->has_value());
  std::vector<std::string> files;
  ASSERT_TRUE(WalkFiles(env_.nodes.get(), root.hash, "/", [&](const std::string& p, const Entry&) {
                files.push_back(p);
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(files, (std::vector<std::string>{"/a.txt", "/d/leaf.txt"}));
  std::vector<std::string> matched;
  ASSERT_TRUE(Glob(env_.nodes.get(), root.hash, "/*", [&](const std::string& p, const Entry&) {
                matched.push_back(p);
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(matched, (std::vector<std::string>{"/a.txt", "/d"}));
  matched.clear();
  ASSERT_TRUE(
      Glob(env_.nodes.get(), root.hash, "/**/*.txt", [&](const std::string& p, const Entry&) {
        matched.push_back(p);
        return absl::OkStatus();
      }).ok());
  EXPECT_EQ(matched, (std::vector<std::string>{"/a.txt", "/d/leaf.txt"}));
}

TEST(GlobTest, Components) {
  EXPECT_TRUE(MatchComponent("*.csv", "a.csv"));
  EXPECT_FALSE(MatchComponent("*.csv", "a.txt"));
  EXPECT_TRUE(MatchComponent("{a,b}*", "beta"));
  EXPECT_TRUE(MatchComponent("[0-9]?", "7x"));
  EXPECT_FALSE(MatchComponent("[0-9]?", "x7"));
  EXPECT_TRUE(ValidateGlob("/a/*/{x,y}").ok());
  EXPECT_FALSE(ValidateGlob("/a/[b").ok());
  EXPECT_FALSE(ValidateGlob("/a/{b").ok());
  EXPECT_FALSE(ValidateGlob("/a/b}").ok());
}

}  // namespace
}  // namespace tusk::pfs
