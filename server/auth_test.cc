// tuskd --auth, in process: every RPC of every service refuses a call
// without a valid token; each role is allowed and denied on representative
// RPCs of each service; a forged runner is refused; tokens survive a restart
// and an index rebuild; secrets stay out of what callers see.

#include "server/auth.h"

#include <grpcpp/grpcpp.h>

#include <fstream>

#include "common/grpc_channel.h"
#include "common/proto_util.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "pfs/keys.h"
#include "pfs/test_env.h"
#include "proto/auth.grpc.pb.h"
#include "proto/ingest.grpc.pb.h"
#include "proto/pfs.grpc.pb.h"
#include "proto/pps.grpc.pb.h"
#include "server/raw_call_test_util.h"
#include "server/tuskd.h"

namespace tusk::server {
namespace {

namespace av1 = auth::v1;
namespace pv1 = pfs::v1;
namespace ppsv1 = pps::v1;
namespace iv1 = ingest::v1;

TuskdOptions Options(const std::string& dir) {
  TuskdOptions o;
  o.data_dir = dir;
  o.listen = "127.0.0.1:0";
  o.runners = "none";
  o.auth = true;
  o.gc_interval = absl::ZeroDuration();
  return o;
}

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(Options(dir_.path())); }

  void Start(TuskdOptions o) {
    tuskd_.reset();
    auto t = Tuskd::Open(std::move(o));
    ASSERT_TRUE(t.ok()) << t.status();
    tuskd_ = std::move(*t);
    if (!tuskd_->new_root_token().empty()) root_ = tuskd_->new_root_token();
  }

  std::shared_ptr<grpc::Channel> Channel(const std::string& token) {
    ChannelOptions o;
    o.token = token;
    auto c = NewChannel(tuskd_->address(), o);
    EXPECT_TRUE(c.ok()) << c.status();
    return *c;
  }

  std::string Token(av1::Role role, std::vector<std::string> repos = {},
                    const std::string& pipeline = "") {
    auto stub = av1::Auth::NewStub(Channel(root_));
    grpc::ClientContext ctx;
    av1::CreateTokenRequest req;
    req.set_role(role);
    for (auto& r : repos) req.add_repos(r);
    req.set_pipeline(pipeline);
    av1::CreateTokenResponse resp;
    grpc::Status s = stub->CreateToken(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.token();
  }

  grpc::StatusCode CreateRepo(const std::string& token, const std::string& name) {
    auto stub = pv1::API::NewStub(Channel(token));
    grpc::ClientContext ctx;
    pv1::CreateRepoRequest req;
    req.set_name(name);
    pv1::RepoInfo out;
    return stub->CreateRepo(&ctx, req, &out).error_code();
  }

  grpc::StatusCode InspectRepo(const std::string& token, const std::string& name) {
    auto stub = pv1::API::NewStub(Channel(token));
    grpc::ClientContext ctx;
    pv1::InspectRepoRequest req;
    req.set_name(name);
    pv1::RepoInfo out;
    return stub->InspectRepo(&ctx, req, &out).error_code();
  }

  grpc::Status Put(const std::string& token, const std::string& repo, const std::string& path,
                   const std::string& data) {
    auto stub = pv1::API::NewStub(Channel(token));
    grpc::ClientContext ctx;
    pv1::PutFileResponse resp;
    auto w = stub->PutFile(&ctx, &resp);
    pv1::PutFileRequest req;
    req.set_repo(repo);
    req.set_ref("master");
    req.set_path(path);
    req.set_data(data);
    req.set_eof(true);
    req.set_size(data.size());
    req.set_close(true);
    w->Write(req);
    w->WritesDone();
    return w->Finish();
  }

  pfs::TempDir dir_;
  std::unique_ptr<Tuskd> tuskd_;
  std::string root_;
};

TEST_F(AuthTest, EveryRpcOfEveryServiceRefusesACallWithoutAValidToken) {
  ASSERT_FALSE(root_.empty());
  auto channel = NewChannel(tuskd_->address());
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  int methods = 0;
  for (const char* name : {"tusk.pfs.v1.API", "tusk.pps.v1.Pps", "tusk.pps.v1.Worker",
                           "tusk.ingest.v1.Sources", "tusk.auth.v1.Auth"}) {
    const auto* service = pool->FindServiceByName(name);
    ASSERT_NE(service, nullptr) << name;
    for (int i = 0; i < service->method_count(); ++i) {
      std::string method = absl::StrCat("/", name, "/", service->method(i)->name());
      grpc::Status none = RawCall(channel, method, "");
      EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << method << ": " << none.error_message();
      grpc::Status forged = RawCall(channel, method, "tusk_root_0123456789abcdef");
      EXPECT_EQ(forged.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << method << ": " << forged.error_message();
      EXPECT_EQ(forged.error_message().find("0123456789abcdef"), std::string::npos)
          << "the secret came back in: " << forged.error_message();
      ++methods;
    }
  }
  EXPECT_GE(methods, 50);
  // And with the root token, calls get past authentication (to their own
  // argument checks).
  EXPECT_NE(RawCall(channel, "/tusk.pfs.v1.API/ListRepo", root_).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(AuthTest, WritersAndReadersActOnTheirReposOnly) {
  ASSERT_EQ(CreateRepo(root_, "images"), grpc::StatusCode::OK);
  const std::string writer = Token(av1::WRITER, {"logs-*"});
  const std::string reader = Token(av1::READER, {"images"});

  EXPECT_EQ(CreateRepo(writer, "logs-a"), grpc::StatusCode::OK);
  EXPECT_EQ(CreateRepo(writer, "images2"), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(CreateRepo(reader, "images3"), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(Put(writer, "logs-a", "/x", "x").ok());
  grpc::Status denied = Put(writer, "images", "/x", "x");
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(denied.error_message().find("writer on \"images\""), std::string::npos)
      << denied.error_message();
  EXPECT_EQ(Put(reader, "images", "/x", "x").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(Put(root_, "images", "/x", "x").ok());
  EXPECT_EQ(InspectRepo(reader, "images"), grpc::StatusCode::OK);
  EXPECT_EQ(InspectRepo(reader, "logs-a"), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(InspectRepo(writer, "logs-a"), grpc::StatusCode::OK);

  // Lists show what the caller may read.
  auto stub = pv1::API::NewStub(Channel(reader));
  grpc::ClientContext ctx;
  pv1::ListRepoResponse repos;
  ASSERT_TRUE(stub->ListRepo(&ctx, pv1::ListRepoRequest(), &repos).ok());
  ASSERT_EQ(repos.repos_size(), 1);
  EXPECT_EQ(repos.repos(0).name(), "images");

  // Cluster-wide operations need admin.
  grpc::ClientContext gc_ctx;
  pv1::GcResponse gc;
  EXPECT_EQ(pv1::API::NewStub(Channel(writer))->Gc(&gc_ctx, pv1::GcRequest(), &gc).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(AuthTest, PipelinesNeedWriteOnTheOutputAndReadOnTheInputs) {
  ASSERT_EQ(CreateRepo(root_, "raw"), grpc::StatusCode::OK);
  ppsv1::CreatePipelineRequest req;
  req.mutable_spec()->mutable_pipeline()->set_name("clean");
  req.mutable_spec()->mutable_transform()->add_cmd("true");
  req.mutable_spec()->mutable_input()->mutable_pfs()->set_repo("raw");
  req.mutable_spec()->mutable_input()->mutable_pfs()->set_glob("/*");
  auto create = [&](const std::string& token) {
    grpc::ClientContext ctx;
    ppsv1::PipelineInfo out;
    return ppsv1::Pps::NewStub(Channel(token))->CreatePipeline(&ctx, req, &out);
  };
  grpc::Status s = create(Token(av1::WRITER, {"clean"}));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(s.error_message().find("read repo \"raw\""), std::string::npos) << s.error_message();
  EXPECT_EQ(create(Token(av1::WRITER, {"raw"})).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // A token may carry several globs: write the output, read (here: write) the input.
  EXPECT_TRUE(create(Token(av1::WRITER, {"clean", "raw"})).ok());

  const std::string reader = Token(av1::READER, {"clean"});
  grpc::ClientContext ctx;
  ppsv1::InspectPipelineRequest ins;
  ins.set_name("clean");
  ppsv1::PipelineInfo info;
  EXPECT_TRUE(ppsv1::Pps::NewStub(Channel(reader))->InspectPipeline(&ctx, ins, &info).ok());
  grpc::ClientContext stop_ctx;
  ppsv1::StopPipelineRequest stop;
  stop.set_name("clean");
  EXPECT_EQ(ppsv1::Pps::NewStub(Channel(reader))->StopPipeline(&stop_ctx, stop, &info).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  grpc::ClientContext list_ctx;
  ppsv1::ListPipelineResponse list;
  ASSERT_TRUE(ppsv1::Pps::NewStub(Channel(Token(av1::READER, {"raw"})))
                  ->ListPipeline(&list_ctx, ppsv1::ListPipelineRequest(), &list)
                  .ok());
  EXPECT_EQ(list.pipelines_size(), 0);
}

TEST_F(AuthTest, AForgedRunnerIsRefusedAndARunnerTokenDoesOnlyItsPipelinesWork) {
  ASSERT_EQ(CreateRepo(root_, "raw"), grpc::StatusCode::OK);
  ASSERT_EQ(CreateRepo(root_, "secret"), grpc::StatusCode::OK);
  ASSERT_TRUE(Put(root_, "raw", "/a", "a").ok());
  ASSERT_TRUE(Put(root_, "secret", "/s", "s").ok());
  for (const char* name : {"clean", "other"}) {
    ppsv1::CreatePipelineRequest req;
    req.mutable_spec()->mutable_pipeline()->set_name(name);
    req.mutable_spec()->mutable_transform()->add_cmd("true");
    req.mutable_spec()->mutable_input()->mutable_pfs()->set_repo("raw");
    req.mutable_spec()->mutable_input()->mutable_pfs()->set_glob("/*");
    grpc::ClientContext ctx;
    ppsv1::PipelineInfo out;
    ASSERT_TRUE(ppsv1::Pps::NewStub(Channel(root_))->CreatePipeline(&ctx, req, &out).ok());
  }
  const std::string runner = Token(av1::RUNNER, {}, "clean");
  const std::string other_runner = Token(av1::RUNNER, {}, "other");
  const std::string writer = Token(av1::WRITER, {"clean", "raw"});

  auto lease = [&](const std::string& token, ppsv1::LeaseResponse* out) {
    grpc::ClientContext ctx;
    ppsv1::LeaseRequest req;
    req.set_pipeline("clean");
    req.set_runner("r1");
    req.set_wait_ms(5000);
    return ppsv1::Worker::NewStub(Channel(token))->Lease(&ctx, req, out);
  };
  ppsv1::LeaseResponse got;
  EXPECT_EQ(lease(writer, &got).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(lease(root_, &got).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(lease(other_runner, &got).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(lease(runner, &got).ok());
  ASSERT_FALSE(got.lease().empty()) << "no datum to lease";

  // A result for that lease from anything but clean's runner token is refused.
  auto finish = [&](const std::string& token) {
    grpc::ClientContext ctx;
    ppsv1::FinishDatumResponse resp;
    auto w = ppsv1::Worker::NewStub(Channel(token))->FinishDatum(&ctx, &resp);
    ppsv1::FinishDatumRequest msg;
    msg.set_lease(got.lease());
    msg.set_success(true);
    msg.set_path("/forged");
    msg.set_data("FORGED OUTPUT");
    msg.set_eof(true);
    msg.set_size(13);
    msg.set_close(true);
    w->Write(msg);
    w->WritesDone();
    return w->Finish();
  };
  EXPECT_EQ(finish(writer).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(finish(other_runner).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // Someone else's heartbeat does not keep the lease: it is reported lost to them.
  {
    grpc::ClientContext ctx;
    ppsv1::HeartbeatRequest hb;
    hb.set_runner("r1");
    hb.add_leases(got.lease());
    ppsv1::HeartbeatResponse hr;
    ASSERT_TRUE(ppsv1::Worker::NewStub(Channel(other_runner))->Heartbeat(&ctx, hb, &hr).ok());
    EXPECT_EQ(hr.lost_size(), 1);
  }

  // The runner token reads its pipeline's inputs, nothing else, and writes nothing.
  auto get = [&](const std::string& repo) {
    grpc::ClientContext ctx;
    pv1::InspectFileRequest req;
    req.set_repo(repo);
    req.set_ref("master");
    req.set_path(repo == "raw" ? "/a" : "/s");
    pv1::FileInfo out;
    return pv1::API::NewStub(Channel(runner))->InspectFile(&ctx, req, &out).error_code();
  };
  EXPECT_EQ(get("raw"), grpc::StatusCode::OK);
  EXPECT_EQ(get("secret"), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Put(runner, "clean", "/x", "x").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Put(runner, "raw", "/x", "x").error_code(), grpc::StatusCode::PERMISSION_DENIED);

  EXPECT_TRUE(finish(runner).ok());
  // Deleting the pipeline revokes its runner tokens.
  grpc::ClientContext del_ctx;
  ppsv1::DeletePipelineRequest del;
  del.set_name("clean");
  ppsv1::DeletePipelineResponse del_out;
  ASSERT_TRUE(ppsv1::Pps::NewStub(Channel(root_))->DeletePipeline(&del_ctx, del, &del_out).ok());
  EXPECT_EQ(get("raw"), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(AuthTest, SourcesFollowTheirRepoAndHideKafkaSecrets) {
  iv1::CreateSourceRequest req;
  req.mutable_spec()->set_name("clicks");
  req.mutable_spec()->set_repo("clicks");
  req.mutable_spec()->mutable_kafka()->set_brokers("127.0.0.1:9");
  req.mutable_spec()->mutable_kafka()->add_topics("clicks");
  (*req.mutable_spec()->mutable_kafka()->mutable_config())["sasl.password"] = "hunter2";
  (*req.mutable_spec()->mutable_kafka()->mutable_config())["sasl.username"] = "ingest";
  auto create = [&](const std::string& token, iv1::SourceInfo* out) {
    grpc::ClientContext ctx;
    return iv1::Sources::NewStub(Channel(token))->CreateSource(&ctx, req, out);
  };
  iv1::SourceInfo info;
  EXPECT_EQ(create(Token(av1::READER, {"clicks"}), &info).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  const std::string writer = Token(av1::WRITER, {"clicks"});
  ASSERT_TRUE(create(writer, &info).ok());
  EXPECT_EQ(info.spec().kafka().config().at("sasl.password"), "[hidden]");
  EXPECT_EQ(info.spec().kafka().config().at("sasl.username"), "ingest");

  // An update with the hidden value keeps the secret; members get it whole.
  req.set_update(true);
  *req.mutable_spec() = info.spec();
  req.mutable_spec()->set_max_records(10);
  ASSERT_TRUE(create(writer, &info).ok());
  grpc::ClientContext ctx;
  iv1::ReportSourceRequest report;
  report.set_name("clicks");
  report.mutable_member()->set_id("m1");
  iv1::ReportSourceResponse spec;
  ASSERT_TRUE(iv1::Sources::NewStub(Channel(writer))->ReportSource(&ctx, report, &spec).ok());
  EXPECT_EQ(spec.spec().kafka().config().at("sasl.password"), "hunter2");
  grpc::ClientContext ctx2;
  EXPECT_EQ(iv1::Sources::NewStub(Channel(Token(av1::READER, {"clicks"})))
                ->ReportSource(&ctx2, report, &spec)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(AuthTest, TokensAreAdminBusinessAndSurviveARestartAndARebuild) {
  const std::string writer = Token(av1::WRITER, {"logs"});
  // Only admin makes tokens; anyone may ask who they are.
  {
    grpc::ClientContext ctx;
    av1::CreateTokenRequest req;
    req.set_role(av1::ADMIN);
    av1::CreateTokenResponse out;
    EXPECT_EQ(av1::Auth::NewStub(Channel(writer))->CreateToken(&ctx, req, &out).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    grpc::ClientContext who_ctx;
    av1::WhoAmIResponse who;
    ASSERT_TRUE(
        av1::Auth::NewStub(Channel(writer))->WhoAmI(&who_ctx, av1::WhoAmIRequest(), &who).ok());
    EXPECT_EQ(who.token().role(), av1::WRITER);
    EXPECT_EQ(who.token().repos(0), "logs");
  }
  const std::string doomed = Token(av1::READER, {"logs"});
  {
    grpc::ClientContext ctx;
    av1::RevokeTokenRequest req;
    req.set_id(doomed.substr(5, doomed.find('_', 5) - 5));
    av1::RevokeTokenResponse out;
    ASSERT_TRUE(av1::Auth::NewStub(Channel(root_))->RevokeToken(&ctx, req, &out).ok());
  }
  EXPECT_EQ(InspectRepo(doomed, "logs"), grpc::StatusCode::UNAUTHENTICATED);
  ASSERT_EQ(CreateRepo(writer, "logs"), grpc::StatusCode::OK);

  // Restart: same tokens, no new root token.
  const std::string root = root_;
  Start(Options(dir_.path()));
  EXPECT_TRUE(tuskd_->new_root_token().empty());
  EXPECT_EQ(InspectRepo(writer, "logs"), grpc::StatusCode::OK);
  EXPECT_EQ(InspectRepo(root, "logs"), grpc::StatusCode::OK);
  EXPECT_EQ(InspectRepo(doomed, "logs"), grpc::StatusCode::UNAUTHENTICATED);

  // Rebuild the index from the object store alone: the same again.
  TuskdOptions rebuild = Options(dir_.path());
  rebuild.rebuild_index = true;
  Start(rebuild);
  EXPECT_TRUE(tuskd_->new_root_token().empty());
  EXPECT_EQ(InspectRepo(writer, "logs"), grpc::StatusCode::OK);
  EXPECT_EQ(InspectRepo(root, "logs"), grpc::StatusCode::OK);
  EXPECT_EQ(InspectRepo(doomed, "logs"), grpc::StatusCode::UNAUTHENTICATED);

  // Rotating the root token retires the old one.
  TuskdOptions rotate = Options(dir_.path());
  rotate.rotate_root_token = true;
  Start(rotate);
  ASSERT_FALSE(tuskd_->new_root_token().empty());
  EXPECT_EQ(InspectRepo(root, "logs"), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(InspectRepo(tuskd_->new_root_token(), "logs"), grpc::StatusCode::OK);
}

TEST(TokenStoreTest, ExpiredMalformedAndBadRequestsAreRefused) {
  pfs::TempDir dir;
  TuskdOptions o = Options(dir.path());
  auto t = Tuskd::Open(o);
  ASSERT_TRUE(t.ok()) << t.status();
  auto store = TokenStore::Open((*t)->pfs()->Space(pfs::kTokenSpace));
  ASSERT_TRUE(store.ok()) << store.status();
  av1::CreateTokenRequest req;
  req.set_role(av1::READER);
  req.add_repos("logs");
  *req.mutable_ttl() = ToDuration(absl::Hours(1));
  auto made = (*store)->Create(req, "test");
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_TRUE((*store)->Verify(made->token, absl::Now()).ok());
  auto late = (*store)->Verify(made->token, absl::Now() + absl::Hours(2));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(late.status().message().find("expired"), absl::string_view::npos);
  // One character off.
  std::string off = made->token;
  off.back() = off.back() == '0' ? '1' : '0';
  EXPECT_EQ((*store)->Verify(off, absl::Now()).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ((*store)->Verify("Bearer", absl::Now()).status().code(),
            absl::StatusCode::kUnauthenticated);

  av1::CreateTokenRequest bad;
  bad.set_role(av1::WRITER);
  EXPECT_EQ((*store)->Create(bad, "t").status().code(), absl::StatusCode::kInvalidArgument);
  bad.add_repos("../etc");
  EXPECT_EQ((*store)->Create(bad, "t").status().code(), absl::StatusCode::kInvalidArgument);
  bad.clear_repos();
  bad.set_role(av1::RUNNER);
  EXPECT_EQ((*store)->Create(bad, "t").status().code(), absl::StatusCode::kInvalidArgument);
  bad.set_role(av1::ROLE_UNSPECIFIED);
  EXPECT_EQ((*store)->Create(bad, "t").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*store)->Revoke("root").code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace tusk::server
