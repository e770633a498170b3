// GC against concurrent writers, for a bounded time: repos are filled and
// deleted (their content becomes garbage) while writers put files whose
// content is drawn from the same pool (dedup reuses the garbage), uploads stay
// open across collections, explicit commits finish while GC marks, retention
// squashes a branch, and GC, checkpoints and the packer run in a loop with no
// grace. At the end every acknowledged file must read back byte for byte and
// fsck must find nothing.
//
// TUSK_GC_STRESS_SECONDS sets how long the writers run (default 8: the CI
// mode); benchmarks/run_gc_stress.sh runs the long mode.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status.h"
#include "pfs/pfs.h"
#include "pfs/test_env.h"

namespace tusk::pfs {
namespace {

// Content number `id` of the shared pool: a few sizes, so that some files
// are inline tails, some span chunks and packs.
std::string PoolContent(int id) {
  static constexpr size_t kSizes[] = {90, 5000, 40 << 10, 300 << 10, 1200 << 10};
  size_t size = kSizes[id % 5] + static_cast<size_t>(id);
  std::string s(size, '\0');
  uint64_t x = 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(id + 1);
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s[i] = static_cast<char>(x);
  }
  return s;
}

constexpr int kPool = 40;

struct Acked {
  std::string repo, path;
  int content;
};

class GcStressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FLAGS_minloglevel = google::GLOG_WARNING;
    PfsOptions opts;
    opts.data_dir = dir_.path();
    // Small chunks and packs: many of each, so that packs mix content.
    opts.chunker = ChunkerOptions{4096, 16384, 65536};
    opts.blobs.pack_size = 256 << 10;
    opts.blobs.inline_tail_max = 16 << 10;
    opts.pack_pending_bytes = 64 << 10;
    auto p = Pfs::Open(opts);
    ASSERT_TRUE(p.ok()) << p.status();
    pfs_ = std::move(*p);
    const char* env = std::getenv("TUSK_GC_STRESS_SECONDS");
    int seconds = 8;
    if (env != nullptr) {
      ASSERT_TRUE(absl::SimpleAtoi(env, &seconds)) << env;
    }
    duration_ = absl::Seconds(seconds);
  }

  void Ack(const std::string& repo, const std::string& path, int content) {
    absl::MutexLock lock(&mu_);
    acked_.push_back({repo, path, content});
  }

  void Fail(const std::string& what, const absl::Status& s) {
    absl::MutexLock lock(&mu_);
    if (errors_.size() < 20) errors_.push_back(absl::StrCat(what, ": ", s.ToString()));
    error_count_++;
  }

  TempDir dir_;
  std::unique_ptr<Pfs> pfs_;
  absl::Duration duration_;
  absl::Mutex mu_;
  std::vector<Acked> acked_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> errors_ ABSL_GUARDED_BY(mu_);
  int error_count_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<uint64_t> gcs_{0};
};

TEST_F(GcStressTest, AcknowledgedFilesSurviveGcRacingWriters) {
  const int kWriters = 3;
  for (int w = 0; w < kWriters; ++w) ASSERT_TRUE(pfs_->CreateRepo(absl::StrCat("w", w), "").ok());
  ASSERT_TRUE(pfs_->CreateRepo("explicit", "").ok());
  ASSERT_TRUE(pfs_->CreateRepo("long", "").ok());
  ASSERT_TRUE(pfs_->CreateRepo("kept", "").ok());
  v1::Retention keep;
  keep.set_keep_last(3);
  ASSERT_TRUE(pfs_->UpdateRepo("kept", std::nullopt, keep).ok());

  std::atomic<bool> stop{false};
  const absl::Time end = absl::Now() + duration_;
  std::vector<std::thread> threads;
  std::atomic<uint64_t> deleted_repos{0}, long_uploads{0}, explicit_commits{0};

  // Makes garbage: a repo holding pool content, then deleted.
  threads.emplace_back([&] {
    std::mt19937 rng(1);
    for (int i = 0; !stop; ++i) {
      std::string repo = absl::StrCat("garbage", i);
      if (auto s = pfs_->CreateRepo(repo, ""); !s.ok()) {
        Fail("create " + repo, s.status());
        continue;
      }
      auto up = pfs_->BeginUpload(repo, "master");
      if (!up.ok()) {
        Fail("begin " + repo, up.status());
        continue;
      }
      absl::Status st;
      for (int f = 0; f < 6 && st.ok(); ++f) {
        std::string data = PoolContent(static_cast<int>(rng() % kPool));
        st = (*up)->BeginFile(absl::StrCat("/f", f), false);
        if (st.ok()) st = (*up)->Write(data);
        if (st.ok()) st = (*up)->EndFile(data.size());
      }
      if (st.ok()) st = (*up)->Close().status();
      if (!st.ok()) Fail("fill " + repo, st);
      if (auto s = pfs_->DeleteRepo(repo, true); !s.ok()) Fail("delete " + repo, s);
      deleted_repos++;
    }
  });

  // Writers: one file per automatic commit, content from the pool.
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937 rng(100 + w);
      std::string repo = absl::StrCat("w", w);
      for (int i = 0; !stop; ++i) {
        int content = static_cast<int>(rng() % kPool);
        std::string path = absl::StrCat("/", i, ".bin");
        auto c = PutOneFile(pfs_.get(), repo, "master", path, PoolContent(content));
        if (c.ok()) {
          Ack(repo, path, content);
        } else {
          Fail("put " + repo + path, c.status());
        }
      }
    });
  }

  // Uploads that stay open across a whole GC before they close (in a repo
  // of their own: their automatic commit holds the branch meanwhile, and a
  // GC of a large index can take longer than a writer waits).
  threads.emplace_back([&] {
    std::mt19937 rng(7);
    for (int i = 0; !stop; ++i) {
      auto up = pfs_->BeginUpload("long", "master");
      if (!up.ok()) {
        Fail("begin long upload", up.status());
        continue;
      }
      int content = static_cast<int>(rng() % kPool);
      std::string data = PoolContent(content);
      std::string path = absl::StrCat("/long", i);
      absl::Status st = (*up)->BeginFile(path, false);
      if (st.ok()) st = (*up)->Write(data);
      if (st.ok()) st = (*up)->EndFile(data.size());
      // Wait for a GC that started after the data was written to end.
      uint64_t seen = gcs_.load();
      while (st.ok() && !stop && gcs_.load() < seen + 2) std::this_thread::yield();
      if (st.ok()) st = (*up)->Close().status();
      if (st.ok()) {
        Ack("long", path, content);
        long_uploads++;
      } else {
        Fail("long upload", st);
      }
    }
  });

  // Explicit commits: files staged by closed uploads, finished later (while
  // a GC may be marking), and a retained branch that retention squashes.
  threads.emplace_back([&] {
    std::mt19937 rng(9);
    for (int i = 0; !stop; ++i) {
      auto c = pfs_->StartCommit("explicit", "master", "", v1::USER, {});
      if (!c.ok()) {
        Fail("start commit", c.status());
        continue;
      }
      std::vector<std::pair<std::string, int>> files;
      for (int f = 0; f < 3; ++f) {
        int content = static_cast<int>(rng() % kPool);
        std::string path = absl::StrCat("/c", i, "/", f);
        auto put = PutOneFile(pfs_.get(), "explicit", c->id(), path, PoolContent(content));
        if (!put.ok()) Fail("put into explicit commit", put.status());
        if (put.ok()) files.emplace_back(path, content);
      }
      uint64_t seen = gcs_.load();
      while (!stop && gcs_.load() < seen + 1) std::this_thread::yield();
      auto done = pfs_->FinishCommit("explicit", c->id(), FinishOptions());
      if (!done.ok()) {
        Fail("finish commit", done.status());
        continue;
      }
      for (const auto& [path, content] : files) Ack("explicit", path, content);
      explicit_commits++;
      int content = static_cast<int>(rng() % kPool);
      std::string path = absl::StrCat("/k", i);
      auto k = PutOneFile(pfs_.get(), "kept", "master", path, PoolContent(content));
      if (k.ok()) {
        Ack("kept", path, content);
      } else {
        Fail("put into kept", k.status());
      }
    }
  });

  // GC (with retention and a checkpoint) and the packer, in a loop.
  std::thread gc([&] {
    GcOptions opts;
    opts.grace = absl::ZeroDuration();
    opts.rewrite_below = 0.6;
    while (!stop) {
      auto st = pfs_->Gc(opts);
      if (!st.ok()) Fail("gc", st.status());
      gcs_++;
      if (auto s = pfs_->PackPending(); !s.ok()) Fail("pack pending", s);
    }
  });

  while (absl::Now() < end) absl::SleepFor(absl::Milliseconds(50));
  stop = true;
  for (auto& t : threads) t.join();
  gc.join();
  // One more collection with nothing running.
  GcOptions opts;
  opts.grace = absl::ZeroDuration();
  auto last = pfs_->Gc(opts);
  ASSERT_TRUE(last.ok()) << last.status();

  absl::MutexLock lock(&mu_);
  for (const auto& e : errors_) ADD_FAILURE() << e;
  EXPECT_EQ(error_count_, 0);
  uint64_t lost = 0;
  for (const auto& a : acked_) {
    std::string got;
    absl::Status s = pfs_->GetFile(
        a.repo, "master", a.path, [](const FileInfo&) { return absl::OkStatus(); },
        [&](std::string d) {
          got += d;
          return absl::OkStatus();
        });
    if (!s.ok() || got != PoolContent(a.content)) {
      if (++lost <= 10) ADD_FAILURE() << a.repo << ":" << a.path << " lost: " << s;
    }
  }
  uint64_t problems = 0;
  auto fsck = pfs_->Fsck([&](const std::string& p) {
    if (++problems <= 10) ADD_FAILURE() << "fsck: " << p;
  });
  ASSERT_TRUE(fsck.ok()) << fsck.status();
  std::cout << "gc stress: " << gcs_.load() << " collections, " << deleted_repos.load()
            << " repos deleted, " << acked_.size() << " files acknowledged (" << long_uploads.load()
            << " uploads open across a collection, " << explicit_commits.load()
            << " explicit commits), " << lost << " lost, " << problems << " fsck problems\n";
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(problems, 0u);
  EXPECT_GT(gcs_.load(), 2u);
  EXPECT_GT(long_uploads.load(), 0u);
}

}  // namespace
}  // namespace tusk::pfs
