// pfs_bench_client: gRPC-level benchmarks of tuskd that the CLI cannot express.
//
//   pfs_bench_client microcommits --address A --repo R --count N
//       N x (start commit, put one 100-byte file, finish commit) from one client.
//   pfs_bench_client diff --address A --repo R --files N --changed K --repeat M
//       A commit of N files in one directory, a second commit changing K of
//       them, then M timed DiffCommit calls between the two.
//
// Prints one JSON object with the measurements on stdout.

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/grpc_channel.h"
#include "proto/pfs.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace tusk::pfs::v1;  // NOLINT

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

[[noreturn]] void Die(const std::string& what, const grpc::Status& s) {
  std::cerr << "pfs_bench_client: " << what << ": " << s.error_message() << "\n";
  std::exit(1);
}

// tusk's own client channel (common/grpc_channel.h), with TUSK_TOKEN and
// TUSK_TLS_* from the environment: what the CLI and tusk-ingest use.
std::unique_ptr<API::Stub> Connect(const std::string& address) {
  tusk::ChannelOptions options;
  tusk::ApplyChannelEnv(&options);
  auto channel = tusk::NewChannel(address, options);
  if (!channel.ok()) {
    std::cerr << channel.status() << "\n";
    std::exit(2);
  }
  return API::NewStub(*channel);
}

void EnsureRepo(API::Stub* stub, const std::string& repo) {
  grpc::ClientContext ctx;
  CreateRepoRequest req;
  req.set_name(repo);
  RepoInfo info;
  grpc::Status s = stub->CreateRepo(&ctx, req, &info);
  if (!s.ok() && s.error_code() != grpc::StatusCode::ALREADY_EXISTS) Die("create repo", s);
}

// Micro-commits of one 100-byte file each. Explicitly: StartCommit, a PutFile
// stream into the commit, FinishCommit (three round trips). With `one_stream`:
// one PutFile stream on the branch, which the server wraps in a commit that it
// starts and finishes (one round trip; the path tusk-ingest takes).
int MicroCommits(API::Stub* stub, const std::string& repo, int count, bool one_stream) {
  EnsureRepo(stub, repo);
  std::string payload(100, 'x');
  auto start = Clock::now();
  std::vector<double> latencies;
  double phase[3] = {0, 0, 0};
  for (int i = 0; i < count; ++i) {
    auto t0 = Clock::now();
    CommitInfo c;
    if (!one_stream) {
      grpc::ClientContext ctx;
      StartCommitRequest req;
      req.set_repo(repo);
      req.set_branch("master");
      grpc::Status s = stub->StartCommit(&ctx, req, &c);
      if (!s.ok()) Die("start commit", s);
    }
    auto t1 = Clock::now();
    phase[0] += Seconds(t0, t1);
    {
      grpc::ClientContext ctx;
      PutFileResponse resp;
      auto w = stub->PutFile(&ctx, &resp);
      PutFileRequest req;
      req.set_repo(repo);
      req.set_ref(one_stream ? "master" : c.id());
      req.set_path(absl::StrCat("/events/", i));
      payload.replace(0, 12, absl::StrFormat("%012d", i));
      req.set_data(payload);
      req.set_eof(true);
      req.set_size(payload.size());
      req.set_close(true);
      w->WriteLast(req, grpc::WriteOptions());  // the message and the half-close in one go
      grpc::Status s = w->Finish();
      if (!s.ok()) Die("put file", s);
      if (one_stream && resp.commit().state() != FINISHED) {
        std::cerr << "put file did not finish its automatic commit\n";
        std::exit(1);
      }
    }
    auto t2 = Clock::now();
    phase[1] += Seconds(t1, t2);
    if (!one_stream) {
      grpc::ClientContext ctx;
      FinishCommitRequest req;
      req.set_repo(repo);
      req.set_ref(c.id());
      CommitInfo done;
      grpc::Status s = stub->FinishCommit(&ctx, req, &done);
      if (!s.ok()) Die("finish commit", s);
    }
    phase[2] += Seconds(t2, Clock::now());
    latencies.push_back(Seconds(t0, Clock::now()) * 1000);
  }
  double secs = Seconds(start, Clock::now());
  std::sort(latencies.begin(), latencies.end());
  std::cout << absl::StrFormat(
      "{\"commits\": %d, \"seconds\": %.3f, \"commits_per_s\": %.0f, \"p50_ms\": %.3f, "
      "\"p99_ms\": %.3f, \"start_ms\": %.3f, \"put_ms\": %.3f, \"finish_ms\": %.3f}\n",
      count, secs, count / secs, latencies[latencies.size() / 2],
      latencies[latencies.size() * 99 / 100], phase[0] * 1000 / count, phase[1] * 1000 / count,
      phase[2] * 1000 / count);
  return 0;
}

// Puts files name-<i> for i in [0, n) into one commit, in one stream.
CommitInfo PutMany(API::Stub* stub, const std::string& repo, int n,
                   const std::map<int, std::string>& overrides, bool only_overrides) {
  grpc::ClientContext ctx;
  PutFileResponse resp;
  auto w = stub->PutFile(&ctx, &resp);
  bool first = true;
  auto put = [&](int i, const std::string& content) {
    PutFileRequest req;
    if (first) {
      req.set_repo(repo);
      req.set_ref("master");
      first = false;
    }
    req.set_path(absl::StrFormat("/files/name-%07d", i));
    req.set_data(content);
    req.set_eof(true);
    req.set_size(content.size());
    grpc::WriteOptions opts;
    opts.set_buffer_hint();
    return w->Write(req, opts);
  };
  if (only_overrides) {
    for (const auto& [i, content] : overrides) put(i, content);
  } else {
    for (int i = 0; i < n; ++i) {
      auto it = overrides.find(i);
      if (!put(i, it != overrides.end() ? it->second : absl::StrCat("content of file ", i))) break;
    }
  }
  PutFileRequest close;
  if (first) {
    close.set_repo(repo);
    close.set_ref("master");
  }
  close.set_close(true);
  w->Write(close);
  w->WritesDone();
  grpc::Status s = w->Finish();
  if (!s.ok()) Die("put file", s);
  return resp.commit();
}

int Diff(API::Stub* stub, const std::string& repo, int files, int changed, int repeat) {
  EnsureRepo(stub, repo);
  auto t0 = Clock::now();
  CommitInfo base = PutMany(stub, repo, files, {}, false);
  double load_secs = Seconds(t0, Clock::now());
  std::map<int, std::string> mods;
  for (int k = 0; k < changed; ++k) {
    int i = static_cast<int>((static_cast<int64_t>(k) * 7919 + 13) *
                             (files / std::max(changed, 1)) % files);
    mods[i] = absl::StrCat("changed content ", k);
  }
  CommitInfo next = PutMany(stub, repo, files, mods, true);
  std::vector<double> ms;
  size_t diffs = 0;
  for (int r = 0; r < repeat; ++r) {
    auto a = Clock::now();
    grpc::ClientContext ctx;
    DiffCommitRequest req;
    req.set_repo(repo);
    req.set_new_ref(next.id());
    req.set_old_ref(base.id());
    auto reader = stub->DiffCommit(&ctx, req);
    FileDiff d;
    diffs = 0;
    while (reader->Read(&d)) diffs++;
    grpc::Status s = reader->Finish();
    if (!s.ok()) Die("diff", s);
    ms.push_back(Seconds(a, Clock::now()) * 1000);
  }
  std::sort(ms.begin(), ms.end());
  std::cout << absl::StrFormat(
      "{\"files\": %d, \"changed\": %d, \"diff_entries\": %d, \"load_seconds\": %.2f, "
      "\"load_files_per_s\": %.0f, \"diff_ms_median\": %.3f, \"diff_ms_min\": %.3f}\n",
      files, changed, diffs, load_secs, files / load_secs, ms[ms.size() / 2], ms[0]);
  return diffs == static_cast<size_t>(changed) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: pfs_bench_client ping|microcommits|diff --address A --repo R [--count N] "
                 "[--one-stream 1]\n";
    return 2;
  }
  std::string mode = argv[1];
  std::map<std::string, std::string> flags;
  for (int i = 2; i + 1 < argc; i += 2) flags[argv[i]] = argv[i + 1];
  auto num = [&](const std::string& name, int def) {
    int v = def;
    if (flags.count(name) && !absl::SimpleAtoi(flags[name], &v)) {
      std::cerr << name << " needs a number\n";
      std::exit(2);
    }
    return v;
  };
  auto stub = Connect(flags.count("--address") ? flags["--address"] : "127.0.0.1:1650");
  std::string repo = flags.count("--repo") ? flags["--repo"] : "bench";
  if (mode == "ping") {
    auto start = Clock::now();
    int n = num("--count", 1000);
    for (int i = 0; i < n; ++i) {
      grpc::ClientContext ctx;
      VersionResponse v;
      grpc::Status s = stub->Version(&ctx, VersionRequest(), &v);
      if (!s.ok()) Die("version", s);
    }
    std::cout << absl::StrFormat("{\"rpc_us\": %.1f}\n", Seconds(start, Clock::now()) * 1e6 / n);
    return 0;
  }
  if (mode == "microcommits") {
    return MicroCommits(stub.get(), repo, num("--count", 1000), num("--one-stream", 0) != 0);
  }
  if (mode == "diff") {
    return Diff(stub.get(), repo, num("--files", 10000), num("--changed", 10), num("--repeat", 20));
  }
  std::cerr << "unknown mode " << mode << "\n";
  return 2;
}
