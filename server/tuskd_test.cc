// Tuskd started in process: serves, stops, and keeps its data across a
// restart; bad options and a taken port are errors, not crashes.

#include "server/tuskd.h"

#include <grpcpp/grpcpp.h>

#include <thread>

#include "common/grpc_channel.h"
#include "gtest/gtest.h"
#include "pfs/test_env.h"
#include "proto/pfs.grpc.pb.h"
#include "server/raw_call_test_util.h"

namespace tusk::server {
namespace {

TuskdOptions Options(const std::string& dir) {
  TuskdOptions o;
  o.data_dir = dir;
  o.listen = "127.0.0.1:0";
  o.runners = "none";
  return o;
}

TEST(TuskdTest, ServesStopsAndKeepsItsDataAcrossARestart) {
  pfs::TempDir dir;
  {
    auto t = Tuskd::Open(Options(dir.path()));
    ASSERT_TRUE(t.ok()) << t.status();
    ASSERT_GT((*t)->port(), 0);
    auto stub = pfs::v1::API::NewStub(NewChannel((*t)->address()));
    grpc::ClientContext ctx;
    pfs::v1::CreateRepoRequest req;
    req.set_name("images");
    pfs::v1::RepoInfo repo;
    grpc::Status st = stub->CreateRepo(&ctx, req, &repo);
    ASSERT_TRUE(st.ok()) << st.error_message();
    // Wait returns once another thread shuts the server down.
    std::thread stopper([&] { (*t)->Shutdown(); });
    (*t)->Wait();
    stopper.join();
  }
  auto t = Tuskd::Open(Options(dir.path()));
  ASSERT_TRUE(t.ok()) << t.status();
  auto stub = pfs::v1::API::NewStub(NewChannel((*t)->address()));
  grpc::ClientContext ctx;
  pfs::v1::InspectRepoRequest req;
  req.set_name("images");
  pfs::v1::RepoInfo repo;
  grpc::Status st = stub->InspectRepo(&ctx, req, &repo);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(repo.name(), "images");
}

TEST(TuskdTest, BadOptionsAndATakenPortAreErrors) {
  TuskdOptions none;
  none.listen = "127.0.0.1:0";
  EXPECT_EQ(Tuskd::Open(none).status().code(), absl::StatusCode::kInvalidArgument);

  pfs::TempDir a, b;
  auto first = Tuskd::Open(Options(a.path()));
  ASSERT_TRUE(first.ok()) << first.status();
  TuskdOptions same = Options(b.path());
  same.listen = (*first)->address();
  auto second = Tuskd::Open(same);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
  EXPECT_NE(second.status().message().find("cannot listen on"), absl::string_view::npos);

  // A second Tuskd on the same data directory is refused (RocksDB's lock),
  // and the first keeps serving.
  auto again = Tuskd::Open(Options(a.path()));
  EXPECT_FALSE(again.ok());
  auto stub = pfs::v1::API::NewStub(NewChannel((*first)->address()));
  grpc::ClientContext ctx;
  pfs::v1::ListRepoResponse repos;
  EXPECT_TRUE(stub->ListRepo(&ctx, pfs::v1::ListRepoRequest(), &repos).ok());
}

TEST(TuskdTest, HealthServiceSaysServingWithoutAToken) {
  pfs::TempDir dir;
  TuskdOptions o = Options(dir.path());
  o.auth = true;
  auto t = Tuskd::Open(o);
  ASSERT_TRUE(t.ok()) << t.status();
  // grpc.health.v1.Health/Check of the whole server: an empty request.
  std::string reply;
  grpc::Status st =
      RawCall(NewChannel((*t)->address()), "/grpc.health.v1.Health/Check", "", "", &reply);
  ASSERT_TRUE(st.ok()) << st.error_message();
  // HealthCheckResponse{status: SERVING (1)}.
  EXPECT_EQ(reply, std::string("\x08\x01", 2));
}

}  // namespace
}  // namespace tusk::server
