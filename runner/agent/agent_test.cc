// tusk-exec-agent, for real: the static binary started on a socket in a temp
// directory, commands run through AgentClient: output, exit status, env,
// working directory, stdin, a command that cannot start, kill, a runner that
// goes away, several commands in a row; and the binary needs no loader.

#include <elf.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "pfs/test_env.h"
#include "runner/agent/agent_client.h"

namespace tusk::runner::agent {
namespace {

struct Result {
  std::string output;
  AgentEvent::Kind end = AgentEvent::kFailed;
  int code = -1;
  std::string failure;
};

Result RunToEnd(AgentClient* c) {
  Result r;
  for (;;) {
    auto e = c->Next();
    if (!e.ok()) {
      r.failure = std::string(e.status().message());
      return r;
    }
    if (e->kind == AgentEvent::kOutput) {
      r.output += e->output;
      continue;
    }
    r.end = e->kind;
    r.code = e->code;
    if (e->kind == AgentEvent::kFailed) r.failure = e->output;
    return r;
  }
}

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_ = dir_.path() + "/agent.sock";
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      ::execl(TUSK_EXEC_AGENT, TUSK_EXEC_AGENT, "--socket", socket_.c_str(), nullptr);
      ::_exit(127);
    }
    // Bounded wait for the socket to appear.
    for (int i = 0; i < 500; ++i) {
      struct stat st;
      if (::stat(socket_.c_str(), &st) == 0) return;
      absl::SleepFor(absl::Milliseconds(10));
    }
    FAIL() << "the agent did not start";
  }
  void TearDown() override {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }

  std::unique_ptr<AgentClient> Start(AgentCommand cmd) {
    auto c = AgentClient::Start(socket_, cmd);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  pfs::TempDir dir_;
  std::string socket_;
  pid_t pid_ = 0;
};

TEST_F(AgentTest, RunsACommandWithItsEnvDirectoryAndStdin) {
  {
    std::ofstream in(dir_.path() + "/in.txt");
    in << "from stdin\n";
  }
  AgentCommand cmd;
  cmd.argv = {"sh", "-c", "echo out; echo err >&2; echo \"$GREETING\"; pwd; cat; exit 3"};
  cmd.env = {"PATH=/usr/bin:/bin", "GREETING=hello there"};
  cmd.cwd = dir_.path();
  cmd.stdin_path = dir_.path() + "/in.txt";
  auto c = Start(cmd);
  ASSERT_NE(c, nullptr);
  Result r = RunToEnd(c.get());
  EXPECT_EQ(r.end, AgentEvent::kExit) << r.failure;
  EXPECT_EQ(r.code, 3);
  char real[4096];
  ASSERT_NE(::realpath(dir_.path().c_str(), real), nullptr);
  EXPECT_EQ(r.output, "out\nerr\nhello there\n" + std::string(real) + "\nfrom stdin\n");
}

TEST_F(AgentTest, ACommandThatCannotStartSaysWhy) {
  AgentCommand cmd;
  cmd.argv = {"no-such-command-anywhere"};
  cmd.env = {"PATH=/usr/bin:/bin"};
  auto c = Start(cmd);
  ASSERT_NE(c, nullptr);
  Result r = RunToEnd(c.get());
  EXPECT_EQ(r.end, AgentEvent::kFailed);
  EXPECT_NE(r.failure.find("cannot run no-such-command-anywhere"), std::string::npos) << r.failure;

  cmd.argv = {"true"};
  cmd.cwd = "/no/such/dir";
  c = Start(cmd);
  r = RunToEnd(c.get());
  EXPECT_EQ(r.end, AgentEvent::kFailed);
  EXPECT_NE(r.failure.find("cannot enter /no/such/dir"), std::string::npos) << r.failure;

  cmd.argv = {};
  c = Start(cmd);
  r = RunToEnd(c.get());
  EXPECT_EQ(r.end, AgentEvent::kFailed);
  EXPECT_NE(r.failure.find("empty"), std::string::npos) << r.failure;
}

TEST_F(AgentTest, KillEndsTheCommandAndItsChildren) {
  AgentCommand cmd;
  cmd.argv = {"sh", "-c", "sleep 60 & echo started; wait"};
  cmd.env = {"PATH=/usr/bin:/bin"};
  auto c = Start(cmd);
  ASSERT_NE(c, nullptr);
  auto first = c->Next();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->output, "started\n");
  c->Kill();
  Result r = RunToEnd(c.get());
  EXPECT_EQ(r.end, AgentEvent::kSignal);
  EXPECT_EQ(r.code, SIGKILL);
}

TEST_F(AgentTest, ARunnerThatGoesAwayTakesItsCommandWithIt) {
  const std::string pid_file = dir_.path() + "/pid";
  AgentCommand cmd;
  cmd.argv = {"sh", "-c", "echo $$ > " + pid_file + "; echo ready; exec sleep 60"};
  cmd.env = {"PATH=/usr/bin:/bin"};
  auto c = Start(cmd);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Next().ok());  // "ready": the pid file is written
  pid_t pid = 0;
  std::ifstream(pid_file) >> pid;
  ASSERT_GT(pid, 0);
  c.reset();
  bool gone = false;
  for (int i = 0; i < 500 && !gone; ++i) {
    gone = ::kill(pid, 0) != 0;
    if (!gone) absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(gone) << "the command outlived the connection";
  // The agent serves the next runner.
  cmd.argv = {"echo", "next"};
  c = Start(cmd);
  Result r = RunToEnd(c.get());
  EXPECT_EQ(r.output, "next\n");
  EXPECT_EQ(r.code, 0);
}

TEST(AgentBinaryTest, NeedsNoLoaderSoItRunsInAnyImage) {
  std::ifstream f(TUSK_EXEC_AGENT, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string elf = ss.str();
  ASSERT_GE(elf.size(), sizeof(Elf64_Ehdr));
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(elf.data());
  ASSERT_EQ(std::string(reinterpret_cast<const char*>(eh->e_ident), 4),
            "\x7f"
            "ELF");
  for (int i = 0; i < eh->e_phnum; ++i) {
    const auto* ph =
        reinterpret_cast<const Elf64_Phdr*>(elf.data() + eh->e_phoff + i * eh->e_phentsize);
    EXPECT_NE(ph->p_type, static_cast<uint32_t>(PT_INTERP))
        << "tusk-exec-agent is dynamically linked: it would need the image's loader and libc";
    EXPECT_NE(ph->p_type, static_cast<uint32_t>(PT_DYNAMIC)) << "it has a dynamic section";
  }
}

}  // namespace
}  // namespace tusk::runner::agent
