// A Runner against a tuskd started in process (no local runners): it runs a
// pipeline's datums, the output lands in the output commit, a failing
// command fails its datum with its log kept, and a stop request ends Run.

#include "runner/runner.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "absl/time/clock.h"
#include "common/fs.h"
#include "common/grpc_channel.h"
#include "gtest/gtest.h"
#include "pfs/test_env.h"
#include "proto/pps.grpc.pb.h"
#include "server/tuskd.h"

namespace tusk::runner {
namespace {

namespace ppsv1 = tusk::pps::v1;

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server::TuskdOptions o;
    o.data_dir = dir_.path() + "/data";
    o.listen = "127.0.0.1:0";
    o.runners = "none";
    auto t = server::Tuskd::Open(o);
    ASSERT_TRUE(t.ok()) << t.status();
    tuskd_ = std::move(*t);
    pps_ = ppsv1::Pps::NewStub(NewChannel(tuskd_->address()));
  }

  void TearDown() override {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  void CreatePipeline(const std::string& name, const std::string& repo,
                      std::vector<std::string> cmd, int tries) {
    ppsv1::CreatePipelineRequest req;
    req.mutable_spec()->mutable_pipeline()->set_name(name);
    for (auto& c : cmd) req.mutable_spec()->mutable_transform()->add_cmd(c);
    auto* in = req.mutable_spec()->mutable_input()->mutable_pfs();
    in->set_repo(repo);
    in->set_glob("/*");
    req.mutable_spec()->set_datum_tries(tries);
    ppsv1::PipelineInfo info;
    grpc::ClientContext ctx;
    grpc::Status s = pps_->CreatePipeline(&ctx, req, &info);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  void StartRunner(const std::string& pipeline, const std::string& exec_agent = "",
                   const std::string& pfs_dir = "") {
    RunnerOptions o;
    o.exec_agent = exec_agent;
    o.pfs_dir = pfs_dir;
    o.address = tuskd_->address();
    o.pipeline = pipeline;
    o.name = pipeline + "-test";
    o.work_dir = dir_.path() + "/work";
    o.sandbox = "none";
    o.lease_wait_ms = 200;
    auto r = Runner::Open(o);
    ASSERT_TRUE(r.ok()) << r.status();
    thread_ = std::thread([this, runner = std::shared_ptr<Runner>(std::move(*r))] {
      run_status_ = runner->Run(&stop_);
    });
  }

  // The newest job of `pipeline`, once it is done.
  ppsv1::JobInfo WaitJob(const std::string& pipeline) {
    for (int i = 0; i < 600; ++i) {
      grpc::ClientContext ctx;
      ppsv1::ListJobRequest req;
      req.set_pipeline(pipeline);
      auto reader = pps_->ListJob(&ctx, req);
      ppsv1::JobInfo j, newest;
      bool any = false;
      while (reader->Read(&j)) {
        if (!any) newest = j;
        any = true;
      }
      reader->Finish();
      if (any && (newest.state() == ppsv1::JOB_SUCCESS || newest.state() == ppsv1::JOB_FAILURE)) {
        return newest;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    ADD_FAILURE() << "no job of " << pipeline << " finished within 30 s";
    return ppsv1::JobInfo();
  }

  pfs::TempDir dir_;
  std::unique_ptr<server::Tuskd> tuskd_;
  std::unique_ptr<ppsv1::Pps::Stub> pps_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  absl::Status run_status_;
};

TEST_F(RunnerTest, RunsEachDatumAndTheOutputLands) {
  pfs::Pfs* pfs = tuskd_->pfs();
  ASSERT_TRUE(pfs::CommitFiles(pfs, "in", {{"/a", "one\n"}, {"/b", "two\n"}}).ok());
  CreatePipeline("upper", "in", {"sh", "-c", "tr a-z A-Z < $in > /pfs/out/$(basename $in)"}, 1);
  StartRunner("upper");
  ppsv1::JobInfo job = WaitJob("upper");
  EXPECT_EQ(job.state(), ppsv1::JOB_SUCCESS) << job.reason();
  EXPECT_EQ(job.datums_processed(), 2u);
  std::string content;
  ASSERT_TRUE(pfs->GetFile(
                     "upper", "master", "/a", [](const pfs::FileInfo&) { return absl::OkStatus(); },
                     [&](std::string d) {
                       content += d;
                       return absl::OkStatus();
                     })
                  .ok());
  EXPECT_EQ(content, "ONE\n");
  stop_ = true;
  thread_.join();
  EXPECT_TRUE(run_status_.ok()) << run_status_;
}

TEST_F(RunnerTest, AFailingCommandFailsItsDatumWithItsLog) {
  ASSERT_TRUE(pfs::CommitFiles(tuskd_->pfs(), "in", {{"/a", "x"}}).ok());
  CreatePipeline("broken", "in", {"sh", "-c", "echo something went wrong >&2; exit 3"}, 2);
  StartRunner("broken");
  ppsv1::JobInfo job = WaitJob("broken");
  EXPECT_EQ(job.state(), ppsv1::JOB_FAILURE);
  EXPECT_EQ(job.datums_failed(), 1u);
  grpc::ClientContext ctx;
  ppsv1::GetLogsRequest req;
  req.set_pipeline("broken");
  auto reader = pps_->GetLogs(&ctx, req);
  ppsv1::LogMessage m;
  int attempts = 0;
  std::string text;
  while (reader->Read(&m)) {
    attempts++;
    text += m.message();
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(attempts, 2);  // datum_tries
  EXPECT_NE(text.find("something went wrong"), std::string::npos);
}

// An "image" without tusk: a bubblewrap root with only /usr (and its links),
// /pfs mounted from the runner's volume and the agent's directory shared;
// tusk-exec-agent, copied in, is its entrypoint. What a pod with a runner
// sidecar does, without a container engine.
TEST_F(RunnerTest, RunsCommandsInAnImageThroughTheExecAgent) {
  const std::string pfs_dir = dir_.path() + "/volume-pfs";
  const std::string agent_dir = dir_.path() + "/volume-agent";
  ASSERT_TRUE(MkdirAll(pfs_dir).ok());
  ASSERT_TRUE(MkdirAll(agent_dir).ok());
  const std::string socket = agent_dir + "/agent.sock";
  pid_t agent = ::fork();
  ASSERT_GE(agent, 0);
  if (agent == 0) {
    ::execlp("bwrap", "bwrap", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
             "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--proc", "/proc",
             "--dev", "/dev", "--tmpfs", "/tmp", "--bind", pfs_dir.c_str(), "/pfs", "--bind",
             agent_dir.c_str(), agent_dir.c_str(), "--ro-bind", TUSK_EXEC_AGENT,
             "/tusk/tusk-exec-agent", "--setenv", "IMAGE_VAR", "from the image",
             "--die-with-parent", "--", "/tusk/tusk-exec-agent", "--socket", socket.c_str(),
             nullptr);
    ::_exit(127);
  }
  struct Reap {
    pid_t pid;
    ~Reap() {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reap{agent};
  for (int i = 0; i < 500 && ::access(socket.c_str(), F_OK) != 0; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(::access(socket.c_str(), F_OK), 0) << "the agent did not start";

  pfs::Pfs* pfs = tuskd_->pfs();
  ASSERT_TRUE(pfs::CommitFiles(pfs, "in", {{"/a", "one\n"}, {"/b", "two\n"}}).ok());
  CreatePipeline("boxed", "in",
                 {"sh", "-c",
                  "tr a-z A-Z < $in > /pfs/out/$(basename $in); echo \"$IMAGE_VAR\" >> "
                  "/pfs/out/$(basename $in); pwd >> /pfs/out/$(basename $in)"},
                 1);
  StartRunner("boxed", socket, pfs_dir);
  ppsv1::JobInfo job = WaitJob("boxed");
  EXPECT_EQ(job.state(), ppsv1::JOB_SUCCESS) << job.reason();
  EXPECT_EQ(job.datums_processed(), 2u);
  std::string content;
  ASSERT_TRUE(pfs->GetFile(
                     "boxed", "master", "/b", [](const pfs::FileInfo&) { return absl::OkStatus(); },
                     [&](std::string d) {
                       content += d;
                       return absl::OkStatus();
                     })
                  .ok());
  // The command saw /pfs, the image's environment, and /pfs as its directory.
  EXPECT_EQ(content, "TWO\nfrom the image\n/pfs\n");
}

}  // namespace
}  // namespace tusk::runner
