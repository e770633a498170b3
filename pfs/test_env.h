#pragma once

// Test helpers: a temporary directory with a real RocksDB index and a local
// object store. For tests only.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

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
