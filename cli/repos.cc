// Repos and branches: create, list, inspect, update and delete.

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
#include "common/flag_values.h"
#include "common/proto_util.h"
#include "common/status.h"
#include "common/version.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"

namespace tusk::cli {
namespace {

class RepoCommands : public CommandBase {
 public:
  using CommandBase::CommandBase;

  int CreateRepo() {
    if (!NeedPositional(1, "repo name")) return kExitUsage;
    CreateRepoRequest req;
    req.set_name(args_.positional[0]);
    req.set_description(args_.Get("--description"));
    return Call(&API::Stub::CreateRepo, req,
                [&](const RepoInfo& r) { std::cout << "created repo " << r.name() << "\n"; });
  }

  int ListRepo() {
    if (!NeedPositional(0, "")) return kExitUsage;
    ListRepoResponse resp;
    auto ctx = Ctx();
    grpc::Status s = stub_->ListRepo(ctx.get(), ListRepoRequest(), &resp);
    if (!s.ok()) return Fail(s);
    if (json_) {
      for (const auto& r : resp.repos()) PrintJson(r);
      return kExitOk;
    }
    Table t({"NAME", "CREATED", "SIZE (MASTER)", "DESCRIPTION"});
    for (const auto& r : resp.repos()) {
      t.Add({r.name(), Time(r.created()), HumanBytes(r.size_bytes()), r.description()});
    }
    t.Print();
    return kExitOk;
  }

  int InspectRepo() {
    if (!NeedPositional(1, "repo name")) return kExitUsage;
    InspectRepoRequest req;
    req.set_name(args_.positional[0]);
    return Call(&API::Stub::InspectRepo, req, [&](const RepoInfo& r) {
      std::cout << "Name: " << r.name() << "\nDescription: " << r.description()
                << "\nCreated: " << Time(r.created())
                << "\nSize of master: " << HumanBytes(r.size_bytes())
                << "\nBranches: " << absl::StrJoin(r.branches(), ", ")
                << "\nRetention: " << RetentionText(r) << "\n";
    });
  }

  int DeleteRepo() {
    if (!NeedPositional(1, "repo name")) return kExitUsage;
    DeleteRepoRequest req;
    req.set_name(args_.positional[0]);
    req.set_force(args_.Has("--force"));
    return Call(&API::Stub::DeleteRepo, req, [&](const DeleteRepoResponse& resp) {
      std::cout << "deleted repo " << req.name() << "\n";
    });
  }

  static std::string RetentionText(const RepoInfo& r) {
    if (!r.has_retention()) return "all history";
    std::vector<std::string> parts;
    if (r.retention().keep_last() > 0)
      parts.push_back(absl::StrCat("last ", r.retention().keep_last(), " commits"));
    int64_t ns = google::protobuf::util::TimeUtil::DurationToNanoseconds(r.retention().keep_for());
    if (ns > 0)
      parts.push_back(
          absl::StrCat("commits younger than ", absl::FormatDuration(absl::Nanoseconds(ns))));
    return absl::StrCat("keep ", absl::StrJoin(parts, " or "), " per branch");
  }

  int UpdateRepo() {
    if (!NeedPositional(1, "repo name")) return kExitUsage;
    UpdateRepoRequest req;
    req.set_name(args_.positional[0]);
    if (args_.Has("--description")) req.set_description(args_.Get("--description"));
    bool retention = args_.Has("--keep-last") || args_.Has("--keep-for") || args_.Has("--keep-all");
    if (args_.Has("--keep-all") && (args_.Has("--keep-last") || args_.Has("--keep-for"))) {
      return UsageError("--keep-all removes the retention; it goes without --keep-last/--keep-for");
    }
    if (args_.Has("--keep-last")) {
      uint64_t n = 0;
      if (!absl::SimpleAtoi(args_.Get("--keep-last"), &n) || n == 0) {
        return UsageError("--keep-last needs a number of commits, at least 1");
      }
      req.mutable_retention()->set_keep_last(n);
    }
    if (args_.Has("--keep-for")) {
      auto d = ParseFlagDuration("--keep-for", args_.Get("--keep-for"));
      if (!d.ok() || *d <= absl::ZeroDuration()) {
        return UsageError("--keep-for needs a duration like 48h, 30m or 7d, not '" +
                          args_.Get("--keep-for") + "'");
      }
      *req.mutable_retention()->mutable_keep_for() = ToDuration(*d);
    }
    if (retention && !req.has_retention()) req.mutable_retention();  // --keep-all: empty
    if (!req.has_description() && !retention) {
      return UsageError("update repo needs --description, --keep-last, --keep-for or --keep-all");
    }
    return Call(&API::Stub::UpdateRepo, req, [&](const RepoInfo& r) {
      std::cout << "updated repo " << r.name() << ": " << RetentionText(r) << "\n";
    });
  }

  int CreateBranch() {
    if (!NeedPositional(1, "REPO@BRANCH")) return kExitUsage;
    auto spec = BranchSpec();
    if (!spec.ok()) return Fail(spec.status());
    CreateBranchRequest req;
    req.set_repo(spec->repo);
    req.set_branch(spec->ref);
    req.set_head(args_.Get("--head"));
    return Call(&API::Stub::CreateBranch, req, [&](const BranchInfo& b) {
      std::cout << "branch " << b.repo() << "@" << b.name() << " -> " << Short(b.head()) << "\n";
    });
  }

  int ListBranch() {
    if (!NeedPositional(1, "repo name")) return kExitUsage;
    ListBranchRequest req;
    req.set_repo(args_.positional[0]);
    ListBranchResponse resp;
    auto ctx = Ctx();
    grpc::Status s = stub_->ListBranch(ctx.get(), req, &resp);
    if (!s.ok()) return Fail(s);
    if (json_) {
      for (const auto& b : resp.branches()) PrintJson(b);
      return kExitOk;
    }
    Table t({"BRANCH", "HEAD", "OPEN COMMIT"});
    for (const auto& b : resp.branches())
      t.Add({b.name(), Short(b.head()), Short(b.open_commit())});
    t.Print();
    return kExitOk;
  }

  int InspectBranch() {
    if (!NeedPositional(1, "REPO@BRANCH")) return kExitUsage;
    auto spec = BranchSpec();
    if (!spec.ok()) return Fail(spec.status());
    InspectBranchRequest req;
    req.set_repo(spec->repo);
    req.set_branch(spec->ref);
    return Call(&API::Stub::InspectBranch, req, [&](const BranchInfo& b) {
      std::cout << "Branch: " << b.repo() << "@" << b.name() << "\nHead: " << Short(b.head())
                << "\nOpen commit: " << Short(b.open_commit()) << "\nCreated: " << Time(b.created())
                << "\n";
      auto refs = [](const auto& list) {
        std::vector<std::string> out;
        for (const auto& r : list) out.push_back(r.repo() + "@" + r.name());
        return out.empty() ? std::string("-") : absl::StrJoin(out, ", ");
      };
      std::cout << "Provenance: " << refs(b.provenance())
                << "\nSubvenance: " << refs(b.subvenance()) << "\n";
    });
  }

  int DeleteBranch() {
    if (!NeedPositional(1, "REPO@BRANCH")) return kExitUsage;
    auto spec = BranchSpec();
    if (!spec.ok()) return Fail(spec.status());
    DeleteBranchRequest req;
    req.set_repo(spec->repo);
    req.set_branch(spec->ref);
    req.set_force(args_.Has("--force"));
    return Call(&API::Stub::DeleteBranch, req, [&](const DeleteBranchResponse& resp) {
      std::cout << "deleted branch " << spec->repo << "@" << spec->ref << "\n";
    });
  }
};

}  // namespace

void AddRepoCommands(CommandTable* table) {
  table->Add({"create repo",
              "Repos and branches",
              "create repo NAME [--description D]",
              "  Creates a repo with a 'master' branch.\n",
              1,
              1,
              {{"--description", true, false}},
              Run<RepoCommands, &RepoCommands::CreateRepo>});
  table->Add({"list repo",
              "Repos and branches",
              "list repo",
              "  Lists repos with their size (head of master) and description.\n",
              0,
              0,
              {},
              Run<RepoCommands, &RepoCommands::ListRepo>});
  table->Add({"inspect repo",
              "Repos and branches",
              "inspect repo NAME",
              "  Shows a repo's details and branches.\n",
              1,
              1,
              {},
              Run<RepoCommands, &RepoCommands::InspectRepo>});
  table->Add({"delete repo",
              "Repos and branches",
              "delete repo NAME [--force]",
              "  Deletes a repo. Refused while a pipeline reads it or computes it (delete the\n"
              "  pipeline instead); --force deletes it anyway, and discards open commits.\n"
              "  Its data is freed by the next gc, except what other repos share.\n",
              1,
              1,
              {{"--force", false, false}},
              Run<RepoCommands, &RepoCommands::DeleteRepo>});
  table->Add(
      {"update repo",
       "Repos and branches",
       "update repo NAME [--description D] [--keep-last N] [--keep-for DUR] [--keep-all]",
       "  Changes a repo's description or retention. With retention, each branch keeps its\n"
       "  newest N commits and/or those younger than DUR (48h, 30m, 7d); when both are set,\n"
       "  either keeps a commit. Older commits are squashed into their oldest kept child,\n"
       "  which becomes the branch's first commit (its files are unchanged), and commits\n"
       "  computed from a squashed commit name that child instead. Applied every minute\n"
       "  (tuskd --retention-interval) and by 'tusk gc'. --keep-all removes the retention.\n",
       1,
       1,
       {{"--description", true, false},
        {"--keep-last", true, false},
        {"--keep-for", true, false},
        {"--keep-all", false, false}},
       Run<RepoCommands, &RepoCommands::UpdateRepo>});
  table->Add({"create branch",
              "Repos and branches",
              "create branch REPO@BRANCH [--head REF]",
              "  Creates a branch, or moves it to REF (it must have no open commit).\n"
              "  A branch from an old commit shares all of its data.\n",
              1,
              1,
              {{"--head", true, false}},
              Run<RepoCommands, &RepoCommands::CreateBranch>});
  table->Add({"list branch",
              "Repos and branches",
              "list branch REPO",
              "",
              1,
              1,
              {},
              Run<RepoCommands, &RepoCommands::ListBranch>});
  table->Add({"inspect branch",
              "Repos and branches",
              "inspect branch REPO@BRANCH",
              "",
              1,
              1,
              {},
              Run<RepoCommands, &RepoCommands::InspectBranch>});
  table->Add({"delete branch",
              "Repos and branches",
              "delete branch REPO@BRANCH [--force]",
              "  Commits stay reachable by id.\n",
              1,
              1,
              {{"--force", false, false}},
              Run<RepoCommands, &RepoCommands::DeleteBranch>});
}

}  // namespace tusk::cli
