#pragma once

// Test helpers: a temporary directory with a real RocksDB index and a local
// object store. For tests only.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "pfs/blob_store.h"
#include "pfs/kv.h"
#include "pfs/object_store.h"
#include "pfs/pfs.h"
#include "pfs/tree.h"

namespace tusk::pfs {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "tusk-test-XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    EXPECT_NE(p, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A BlobStore and NodeStore over a fresh index and object store.
struct StoreEnv {
  TempDir dir;
  std::unique_ptr<Kv> kv;
  std::unique_ptr<ObjectStore> store;
  std::unique_ptr<BlobStore> blobs;
  std::unique_ptr<NodeStore> nodes;

  explicit StoreEnv(size_t cache_bytes = 1 << 20, BlobStoreOptions options = {}) {
    auto k = Kv::Open(dir.path() + "/index");
    EXPECT_TRUE(k.ok()) << k.status();
    kv = std::move(*k);
    auto s = OpenLocalObjectStore(dir.path() + "/objects");
    EXPECT_TRUE(s.ok()) << s.status();
    store = std::move(*s);
    auto b = BlobStore::Open(kv.get(), store.get(), options);
    EXPECT_TRUE(b.ok()) << b.status();
    blobs = std::move(*b);
    nodes = std::make_unique<NodeStore>(blobs.get(), cache_bytes);
  }
};

// Writes one file into repo@ref (a branch, or an open commit's id) in one
// upload; returns what Close returns.
inline absl::StatusOr<CommitInfo> PutOneFile(Pfs* pfs, const std::string& repo,
                                             const std::string& ref, const std::string& path,
                                             absl::string_view data) {
  ASSIGN_OR_RETURN(auto up, pfs->BeginUpload(repo, ref));
  RETURN_IF_ERROR(up->BeginFile(path, false));
  RETURN_IF_ERROR(up->Write(data));
  RETURN_IF_ERROR(up->EndFile(data.size()));
  return up->Close();
}

// Commits `files` (path -> content; empty content deletes the path) to
// repo@master, creating the repo on first use.
inline absl::StatusOr<CommitInfo> CommitFiles(Pfs* pfs, const std::string& repo,
                                              const std::map<std::string, std::string>& files) {
  if (!pfs->InspectRepo(repo).ok()) RETURN_IF_ERROR(pfs->CreateRepo(repo, "").status());
  ASSIGN_OR_RETURN(auto up, pfs->BeginUpload(repo, "master"));
  for (const auto& [path, data] : files) {
    if (data.empty()) {
      RETURN_IF_ERROR(up->Delete(path));
      continue;
    }
    RETURN_IF_ERROR(up->BeginFile(path, false));
    RETURN_IF_ERROR(up->Write(data));
    RETURN_IF_ERROR(up->EndFile(data.size()));
  }
  return up->Close();
}

// An ObjectStore that fails on demand: the next `fail_puts` Puts (or every
// Put whose key starts with `fail_prefix`) fail with Unavailable, as a
// remote store past its retries would.
class FaultyObjectStore : public ObjectStore {
 public:
  explicit FaultyObjectStore(ObjectStore* base) : base_(base) {}
  std::atomic<int> fail_puts{0};
  std::string fail_prefix;  // set before use, from the test thread

  absl::Status Put(const std::string& key, absl::string_view data) override {
    if ((!fail_prefix.empty() && key.rfind(fail_prefix, 0) == 0) || fail_puts.fetch_sub(1) > 0) {
      return absl::UnavailableError(absl::StrCat("injected failure writing ", key, ": HTTP 500"));
    }
    return base_->Put(key, data);
  }
  absl::StatusOr<std::string> GetRange(const std::string& key, uint64_t offset,
                                       uint64_t length) override {
    return base_->GetRange(key, offset, length);
  }
  absl::StatusOr<uint64_t> Size(const std::string& key) override { return base_->Size(key); }
  absl::Status Delete(const std::string& key) override { return base_->Delete(key); }
  absl::Status List(const std::string& prefix,
                    const std::function<void(const std::string&, uint64_t)>& fn) override {
    return base_->List(prefix, fn);
  }
  std::string Describe() const override { return "faulty " + base_->Describe(); }

 private:
  ObjectStore* base_;
};

// A test fixture with a Pfs (default options) in a fresh directory.
class PfsFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    PfsOptions opts;
    opts.data_dir = dir_.path();
    auto p = Pfs::Open(opts);
    ASSERT_TRUE(p.ok()) << p.status();
    pfs_ = std::move(*p);
  }

  TempDir dir_;
  std::unique_ptr<Pfs> pfs_;
};

}  // namespace tusk::pfs
