// Micro benchmarks (google-benchmark) of the PFS building blocks.

#include <benchmark/benchmark.h>

#include <filesystem>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "pfs/blob_store.h"
#include "pfs/chunker.h"
#include "pfs/kv.h"
#include "pfs/object_store.h"
#include "pfs/pfs.h"
#include "pfs/tree.h"

namespace tusk::pfs {
namespace {

std::string RandomData(size_t n) {
  std::mt19937_64 rng(1);
  std::string s(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&s[i], &v, 8);
  }
  return s;
}

void BM_Chunker(benchmark::State& state) {
  std::string data = RandomData(64 << 20);
  for (auto _ : state) {
    Chunker c;
    absl::string_view rest = data;
    size_t chunks = 0;
    while (!rest.empty()) {
      auto r = c.FindBoundary(rest);
      rest.remove_prefix(r.consumed);
      chunks += r.boundary;
    }
    benchmark::DoNotOptimize(chunks);
  }
  state.SetBytesProcessed(state.iterations() * data.size());
}
BENCHMARK(BM_Chunker)->Unit(benchmark::kMillisecond);

void BM_Sha256(benchmark::State& state) {
  std::string data = RandomData(1 << 20);
  for (auto _ : state) benchmark::DoNotOptimize(Sha256(data));
  state.SetBytesProcessed(state.iterations() * data.size());
}
BENCHMARK(BM_Sha256);

void BM_PrepareBlobIncompressible(benchmark::State& state) {
  std::string data = RandomData(1 << 20);
  for (auto _ : state) benchmark::DoNotOptimize(PrepareBlob(data));
  state.SetBytesProcessed(state.iterations() * data.size());
}
BENCHMARK(BM_PrepareBlobIncompressible);

// Editing one entry of a directory of state.range(0) entries.
void BM_EditLargeDirectory(benchmark::State& state) {
  auto dir = std::filesystem::temp_directory_path() / absl::StrCat("tusk-bench-", getpid());
  std::filesystem::create_directories(dir);
  {
    auto kv = *Kv::Open((dir / "index").string());
    auto store = *OpenLocalObjectStore((dir / "objects").string());
    auto blobs = *BlobStore::Open(kv.get(), store.get());
    NodeStore nodes(blobs.get(), 256 << 20);
    std::vector<DirChange> puts;
    for (int64_t i = 0; i < state.range(0); ++i) {
      Entry e;
      e.set_name(absl::StrCat("file-", 10000000 + i));
      e.set_type(Entry::FILE);
      e.set_hash(Sha256(e.name()).Raw());
      puts.push_back({e.name(), e});
    }
    auto writer = blobs->NewWriter();
    Hash root = EditDir(&nodes, writer.get(), Hash{}, puts)->hash;
    KvBatch batch;
    (void)writer->Finish(&batch);
    (void)kv->Write(&batch, false);
    int64_t i = 0;
    for (auto _ : state) {
      Entry e = puts[(i++ * 7919) % puts.size()].put.value_or(Entry());
      e.set_size(i);
      auto w = blobs->NewWriter();
      benchmark::DoNotOptimize(EditDir(&nodes, w.get(), root, {{e.name(), e}}));
    }
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_EditLargeDirectory)->Arg(10000)->Arg(1000000)->Unit(benchmark::kMicrosecond);

// One micro-commit through the library, without gRPC: start, put a 100-byte
// file, finish (synced). The difference to pfs_bench_client's figure is transport.
void BM_MicroCommitInProcess(benchmark::State& state) {
  auto dir = std::filesystem::temp_directory_path() / absl::StrCat("tusk-bench-mc-", getpid());
  {
    PfsOptions opts;
    opts.data_dir = dir.string();
    auto pfs = *Pfs::Open(opts);
    (void)pfs->CreateRepo("mc", "");
    std::string payload(100, 'x');
    int64_t i = 0;
    for (auto _ : state) {
      auto c = pfs->StartCommit("mc", "master", "", v1::USER, {});
      auto up = *pfs->BeginUpload("mc", c->id());
      (void)up->BeginFile(absl::StrCat("/events/", i++), false);
      (void)up->Write(payload);
      (void)up->EndFile(payload.size());
      (void)up->Close();
      benchmark::DoNotOptimize(pfs->FinishCommit("mc", c->id(), FinishOptions()));
    }
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_MicroCommitInProcess)->Unit(benchmark::kMicrosecond)->Iterations(1000);

}  // namespace
}  // namespace tusk::pfs

BENCHMARK_MAIN();
