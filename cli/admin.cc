// Admin: version, fsck, gc, admin stats.

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

class AdminCommands : public CommandBase {
 public:
  using CommandBase::CommandBase;

  int Version() {
    VersionResponse v;
    auto ctx = Ctx();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::Status s = stub_->Version(ctx.get(), VersionRequest(), &v);
    if (json_) {
      VersionResponse client;
      client.set_version(kTuskVersion);
      client.set_api("tusk.pfs.v1");
      // One line: {"client": {...}, "server": {...}} (no "server" if unreachable).
      std::cout << "{\"client\":" << Json(client);
      if (s.ok()) std::cout << ",\"server\":" << Json(v);
      std::cout << "}\n";
    } else {
      std::cout << "tusk " << kTuskVersion << "\n";
      if (s.ok()) std::cout << "tuskd " << v.version() << " (" << address_ << ")\n";
    }
    if (!s.ok()) return Fail(s);
    return kExitOk;
  }

  int Fsck() {
    if (!NeedPositional(0, "")) return kExitUsage;
    auto ctx = Ctx();
    auto reader = stub_->Fsck(ctx.get(), FsckRequest());
    FsckResponse r;
    FsckResponse summary;
    uint64_t problems = 0;
    while (reader->Read(&r)) {
      if (json_) PrintJson(r);
      if (!r.problem().empty()) {
        problems++;
        if (!json_) std::cout << "problem: " << r.problem() << "\n";
      } else {
        summary = r;
      }
    }
    grpc::Status s = reader->Finish();
    if (!s.ok()) return Fail(s);
    if (!json_) {
      std::cout << "checked " << summary.commits() << " commits, " << summary.nodes()
                << " tree nodes, " << summary.chunks() << " chunks (" << HumanBytes(summary.bytes())
                << "): " << (problems == 0 ? "no problems" : absl::StrCat(problems, " problems"))
                << "\n";
    }
    return problems == 0 ? kExitOk : kExitCorrupt;
  }

 public:
  // --- sources ------------------------------------------------------------

  int Gc() {
    if (!NeedPositional(0, "")) return kExitUsage;
    GcRequest req;
    if (args_.Has("--grace")) {
      auto d = ParseFlagDuration("--grace", args_.Get("--grace"));
      if (!d.ok()) {
        return UsageError("--grace needs a duration like 1h or 0s, not '" + args_.Get("--grace") +
                          "'");
      }
      *req.mutable_grace() = ToDuration(*d);
    }
    if (args_.Has("--rewrite-below")) {
      double f = 0;
      if (!absl::SimpleAtod(args_.Get("--rewrite-below"), &f) || f < 0 || f > 1) {
        return UsageError("--rewrite-below needs a fraction from 0 to 1");
      }
      req.set_rewrite_below(f);
    }
    if (!json_) std::cerr << "collecting garbage...\n";
    return Call(&API::Stub::Gc, req, [&](const GcResponse& r) {
      std::cout << "squashed " << r.commits_squashed() << " commits by retention; "
                << r.live_blobs() << " live blobs (" << HumanBytes(r.bytes_live())
                << " in old packs); deleted " << r.packs_deleted() << " of " << r.packs()
                << " packs, rewrote " << r.packs_rewritten() << ", freed "
                << HumanBytes(r.bytes_deleted()) << " in "
                << absl::FormatDuration(absl::Nanoseconds(
                       google::protobuf::util::TimeUtil::DurationToNanoseconds(r.took())))
                << "\n";
    });
  }

  int AdminStats() {
    if (!NeedPositional(0, "")) return kExitUsage;
    return Call(&API::Stub::Stats, StatsRequest(), [&](const StatsResponse& r) {
      std::cout << "Object store: " << r.object_store() << "\nRequests: " << r.puts() << " PUT, "
                << r.gets() << " GET, " << r.heads() << " HEAD, " << r.lists() << " LIST, "
                << r.deletes() << " DELETE, " << r.retries()
                << " retried\nBytes: " << HumanBytes(r.bytes_written()) << " written, "
                << HumanBytes(r.bytes_read()) << " read\nCache: " << r.cache_hits() << " hits, "
                << r.cache_misses() << " misses\n";
    });
  }
};

}  // namespace

void AddAdminCommands(CommandTable* table) {
  table->Add({"fsck",
              "Admin",
              "fsck",
              "  Reads and verifies every reachable commit, tree node, chunk list and chunk. Exit "
              "6 if anything is wrong.\n",
              0,
              0,
              {},
              Run<AdminCommands, &AdminCommands::Fsck>});
  table->Add({"gc",
              "Admin",
              "gc [--grace DUR] [--rewrite-below F]",
              "  Applies retention, writes a checkpoint of the metadata to the object store,\n"
              "  then deletes the chunks, tree nodes and packs that no commit, open commit or\n"
              "  pipeline datum references. Packs younger than --grace (default: tuskd's\n"
              "  --gc-grace, 1h) are kept, so uploads in progress are safe. Packs whose live\n"
              "  bytes are below F of their size (default 0.5) are rewritten. tuskd also runs\n"
              "  this every --gc-interval.\n",
              0,
              0,
              {{"--grace", true, false}, {"--rewrite-below", true, false}},
              Run<AdminCommands, &AdminCommands::Gc>});
  table->Add({"admin stats",
              "Admin",
              "admin stats",
              "  Requests tuskd made to its object store (PUT, GET, HEAD, LIST, DELETE,\n"
              "  retries, bytes) and its local cache's hits and misses, since it started.\n"
              "  A local-directory store does not count requests.\n",
              0,
              0,
              {},
              Run<AdminCommands, &AdminCommands::AdminStats>});
  table->Add({"version",
              "Admin",
              "version",
              "  Prints the client's and the server's version.\n",
              0,
              0,
              {},
              Run<AdminCommands, &AdminCommands::Version>});
}

}  // namespace tusk::cli
