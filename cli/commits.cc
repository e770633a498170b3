// Commits: start, finish, list, inspect, diff, revert, delete.

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/command.h"
#include "cli/command_base.h"
#include "cli/output.h"
#include "cli/spec_file.h"
#include "common/status.h"
#include "common/version.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "pfs/refs.h"

namespace tusk::cli {
namespace {

class CommitCommands : public CommandBase {
 public:
  using CommandBase::CommandBase;

  int StartCommit() {
    if (!NeedPositional(1, "REPO@BRANCH")) return kExitUsage;
    auto spec = Spec(0);
    if (!spec.ok()) return Fail(spec.status());
    StartCommitRequest req;
    req.set_repo(spec->repo);
    req.set_branch(spec->ref);
    req.set_message(args_.Get("-m"));
    req.set_origin(USER);
    req.set_force(args_.Has("--force"));
    return Call(&API::Stub::StartCommit, req,
                [&](const CommitInfo& c) { std::cout << c.id() << "\n"; });
  }

  int FinishCommit() {
    if (!NeedPositional(1, "REPO@BRANCH or REPO@ID")) return kExitUsage;
    auto spec = Spec(0);
    if (!spec.ok()) return Fail(spec.status());
    FinishCommitRequest req;
    req.set_repo(spec->repo);
    req.set_ref(spec->ref);
    req.set_message(args_.Get("-m"));
    return Call(&API::Stub::FinishCommit, req, [&](const CommitInfo& c) {
      std::cout << "finished commit " << c.repo() << "@" << c.id() << " (" << c.file_count()
                << " files, " << HumanBytes(c.size_bytes()) << ")\n";
    });
  }

  // The commits of a commit set (an input commit and all that pipelines
  // computed from it), as they are now.
  int ListCommitSet(const std::string& id) {
    InspectCommitSetRequest req;
    req.set_commit_set(id);
    Table t({"REPO", "ID", "BRANCH", "STATE", "ORIGIN", "STARTED", "ERROR"});
    int rc = Stream(&API::Stub::InspectCommitSet, req, [&](const CommitInfo& c) {
      if (json_) return PrintJson(c);
      t.Add({c.repo(), c.id(), c.branch(), CommitState_Name(c.state()), Origin_Name(c.origin()),
             Time(c.started()), c.error()});
    });
    if (rc == kExitOk && !json_) t.Print();
    return rc;
  }

  int ListCommit() {
    if (args_.Has("--commit-set")) {
      if (!NeedPositional(0, "")) return kExitUsage;
      return ListCommitSet(args_.Get("--commit-set"));
    }
    if (!NeedPositional(1, "REPO[@REF]")) return kExitUsage;
    // A bare commit set id, as pachctl list commit takes it.
    if (pfs::IsCommitId(args_.positional[0])) return ListCommitSet(args_.positional[0]);
    auto spec = Spec(0);
    if (!spec.ok()) return Fail(spec.status());
    ListCommitRequest req;
    req.set_repo(spec->repo);
    if (spec->has_ref) req.set_ref(spec->ref);
    if (args_.Has("-n")) {
      uint64_t n = 0;
      if (!absl::SimpleAtoi(args_.Get("-n"), &n)) return UsageError("-n needs a number");
      req.set_limit(n);
    }
    Table t({"ID", "BRANCH", "STATE", "STARTED", "SIZE", "FILES", "MESSAGE"});
    int rc = Stream(&API::Stub::ListCommit, req, [&](const CommitInfo& c) {
      if (json_) {
        PrintJson(c);
      } else {
        t.Add({c.id(), c.branch(), CommitState_Name(c.state()), Time(c.started()),
               HumanBytes(c.size_bytes()), absl::StrCat(c.file_count()), c.message()});
      }
    });
    if (rc == kExitOk && !json_) t.Print();
    return rc;
  }

  int InspectCommit() {
    if (!NeedPositional(1, "REPO@REF")) return kExitUsage;
    auto spec = Spec(0);
    if (!spec.ok()) return Fail(spec.status());
    InspectCommitRequest req;
    req.set_repo(spec->repo);
    req.set_ref(spec->ref);
    CommitInfo c;
    auto ctx = Ctx();
    grpc::Status s = stub_->InspectCommit(ctx.get(), req, &c);
    if (!s.ok()) return Fail(s);
    bool prov = args_.Has("--provenance"), sub = args_.Has("--subvenance");
    if (!prov && !sub) {
      PrintCommit(c);
      return kExitOk;
    }
    // The whole tree of commits it came from (or that came from it).
    std::set<std::string> seen;
    std::function<int(const CommitInfo&, int)> walk = [&](const CommitInfo& at, int depth) -> int {
      if (!seen.insert(at.repo() + "@" + at.id()).second) return kExitOk;
      if (json_) {
        PrintJson(at);
      } else {
        std::cout << std::string(depth * 2, ' ') << at.repo() << "@" << at.id() << " ("
                  << at.branch() << ", " << CommitState_Name(at.state())
                  << (at.error().empty() ? "" : ", failed: " + at.error()) << ")\n";
      }
      const auto& refs = prov ? at.provenance() : at.subvenance();
      for (const auto& r : refs) {
        InspectCommitRequest next;
        next.set_repo(r.repo());
        next.set_ref(r.id());
        CommitInfo nc;
        auto nctx = Ctx();
        grpc::Status ns = stub_->InspectCommit(nctx.get(), next, &nc);
        if (!ns.ok()) return Fail(ns);
        if (int rc = walk(nc, depth + 1); rc != kExitOk) return rc;
      }
      return kExitOk;
    };
    return walk(c, 0);
  }

  int DiffCommit() {
    if (args_.positional.empty() || args_.positional.size() > 2) {
      return UsageError("diff commit takes REPO@NEW [REPO@OLD]");
    }
    auto spec = Spec(0);
    if (!spec.ok()) return Fail(spec.status());
    DiffCommitRequest req;
    req.set_repo(spec->repo);
    req.set_new_ref(spec->ref);
    if (args_.positional.size() == 2) {
      auto old = Spec(1);
      if (!old.ok()) return Fail(old.status());
      if (old->repo != spec->repo) return UsageError("diff commit compares commits of one repo");
      req.set_old_ref(old->ref);
    }
    return Stream(&API::Stub::DiffCommit, req, [&](const FileDiff& d) {
      if (json_) return PrintJson(d);
      switch (d.change()) {
        case FileDiff::ADDED:
          std::cout << "+ " << d.path() << " (" << HumanBytes(d.new_size()) << ")\n";
          break;
        case FileDiff::DELETED:
          std::cout << "- " << d.path() << " (" << HumanBytes(d.old_size()) << ")\n";
          break;
        default:
          std::cout << "~ " << d.path() << " (" << HumanBytes(d.old_size()) << " -> "
                    << HumanBytes(d.new_size()) << ")\n";
      }
    });
  }

  int Revert() {
    if (!NeedPositional(1, "REPO@BRANCH")) return kExitUsage;
    if (!args_.Has("--to")) return UsageError("revert needs --to REF");
    auto spec = BranchSpec();
    if (!spec.ok()) return Fail(spec.status());
    RevertRequest req;
    req.set_repo(spec->repo);
    req.set_branch(spec->ref);
    std::string to = args_.Get("--to");
    // Accept both REF and REPO@REF.
    if (size_t at = to.find('@'); at != std::string::npos) {
      if (to.substr(0, at) != spec->repo)
        return UsageError("--to must name a commit of the same repo");
      to = to.substr(at + 1);
    }
    req.set_to(to);
    req.set_message(args_.Get("-m"));
    req.set_force(args_.Has("--force"));
    return Call(&API::Stub::Revert, req, [&](const CommitInfo& c) {
      std::cout << "reverted " << c.repo() << "@" << c.branch() << " to " << to << " in commit "
                << c.id() << "\n";
    });
  }

  int DeleteCommit() {
    if (!NeedPositional(1, "REPO@REF")) return kExitUsage;
    auto spec = Spec(0);
    if (!spec.ok()) return Fail(spec.status());
    if (!spec->has_ref || spec->has_path) return UsageError("delete commit needs REPO@REF");
    DeleteCommitRequest req;
    req.set_repo(spec->repo);
    req.set_ref(spec->ref);
    return Call(&API::Stub::DeleteCommit, req, [&](const DeleteCommitResponse& resp) {
      std::cout << "deleted commit " << spec->repo << "@" << spec->ref << "\n";
      for (const auto& b : resp.moved()) {
        std::cout << "branch " << b.repo() << "@" << b.name() << " -> "
                  << (b.head().empty() ? "(no commits)" : b.head()) << "\n";
      }
    });
  }
};

}  // namespace

void AddCommitCommands(CommandTable* table) {
  table->Add({"start commit",
              "Commits",
              "start commit REPO@BRANCH [-m MSG] [--force]",
              "  Opens a commit on the branch (one per branch) and prints its id.\n"
              "  Writes to REPO@BRANCH or REPO@ID go into it until 'finish commit'.\n"
              "  --force: even on a pipeline's output branch.\n",
              1,
              1,
              {{"-m", true, false, "--message"}, {"--force", false, false}},
              Run<CommitCommands, &CommitCommands::StartCommit>});
  table->Add({"finish commit",
              "Commits",
              "finish commit REPO@BRANCH|REPO@ID [-m MSG]",
              "  Applies the commit's writes and moves the branch head, atomically and durably.\n",
              1,
              1,
              {{"-m", true, false, "--message"}},
              Run<CommitCommands, &CommitCommands::FinishCommit>});
  table->Add({"list commit",
              "Commits",
              "list commit REPO[@REF] [-n N] | list commit COMMIT_SET | --commit-set ID",
              "  History of REF (with the branch's open commit first), or every commit of the "
              "repo; newest first.\n"
              "  With a commit set id (32 hex characters, as pachctl takes it): the commits of\n"
              "  the set, one per repo it reached, with their state and error.\n",
              0,
              1,
              {{"-n", true, false, "--number"}, {"--commit-set", true, false}},
              Run<CommitCommands, &CommitCommands::ListCommit>});
  table->Add({"inspect commit",
              "Commits",
              "inspect commit REPO@REF [--provenance | --subvenance]",
              "",
              1,
              1,
              {{"--provenance", false, false}, {"--subvenance", false, false}},
              Run<CommitCommands, &CommitCommands::InspectCommit>});
  table->Add({"diff commit",
              "Commits",
              "diff commit REPO@NEW [REPO@OLD]",
              "  Files added (+), modified (~) and deleted (-) between OLD (default: NEW's parent) "
              "and NEW.\n",
              1,
              2,
              {},
              Run<CommitCommands, &CommitCommands::DiffCommit>});
  table->Add({"revert",
              "Commits",
              "revert REPO@BRANCH --to REF [-m MSG] [--force]",
              "  Makes a new commit on BRANCH whose files equal REF's. History is kept.\n"
              "  --force: even on a pipeline's output branch.\n",
              1,
              1,
              {{"--to", true, false}, {"-m", true, false, "--message"}, {"--force", false, false}},
              Run<CommitCommands, &CommitCommands::Revert>});
  table->Add(
      {"delete commit",
       "Commits",
       "delete commit REPO@REF",
       "  Deletes a finished commit that nothing depends on: no child\n"
       "  commit and no commit computed from it. A branch whose head it is moves back to its\n"
       "  parent. Its data is freed by the next gc.\n",
       1,
       1,
       {},
       Run<CommitCommands, &CommitCommands::DeleteCommit>});
}

}  // namespace tusk::cli
