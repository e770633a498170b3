// tusk: the command line for tusk. Talks to tuskd over gRPC only. The
// commands are in a table (cli/command.h), one file per resource.

#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/config.h"
#include "cli/output.h"
#include "common/grpc_channel.h"
#include "pfs/refs.h"

namespace {

// Names, refs, paths and messages travel in protobuf strings, which must be
// UTF-8; local paths (-f, -o) are the file system's business.
std::optional<int> CheckUtf8(const tusk::Args& args) {
  for (const auto& p : args.positional) {
    if (auto st = tusk::pfs::CheckUtf8("argument", p); !st.ok()) {
      return tusk::cli::UsageError(std::string(st.message()));
    }
  }
  for (const auto& [flag, values] : args.values) {
    if (flag == "-f" || flag == "-o") continue;
    for (const auto& v : values) {
      if (auto st = tusk::pfs::CheckUtf8(flag, v); !st.ok()) {
        return tusk::cli::UsageError(std::string(st.message()));
      }
    }
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tusk::cli;  // NOLINT
  const CommandTable table = AllCommands();
  std::vector<std::string> argv_s(argv + 1, argv + argc);
  bool help = !argv_s.empty() && argv_s[0] == "help";
  if (help) argv_s.erase(argv_s.begin());
  auto parsed = table.Parse(argv_s);
  if (!parsed.ok()) return tusk::cli::UsageError(std::string(parsed.status().message()));
  help = help || parsed->args.Has("-h");
  if (parsed->command == nullptr) {
    // 'tusk' alone is bad usage; 'tusk help' and 'tusk --help' are not.
    (help ? std::cout : std::cerr) << table.MainHelp();
    return help ? kExitOk : kExitUsage;
  }
  if (help) {
    std::cout << table.CommandHelp(*parsed->command);
    return kExitOk;
  }
  if (auto bad = CheckUtf8(parsed->args)) return *bad;
  Invocation inv;
  inv.args = std::move(parsed->args);
  tusk::ChannelOptions channel;
  channel.tls_ca = inv.args.Get("--tls-ca");
  if (absl::Status s = ResolveConnection(inv.args.Get("--address"), &inv.address, &channel);
      !s.ok()) {
    return tusk::cli::UsageError(std::string(s.message()));
  }
  auto ch = tusk::NewChannel(inv.address, channel);
  if (!ch.ok()) return tusk::cli::UsageError(std::string(ch.status().message()));
  inv.channel = *ch;
  return parsed->command->run(inv);
}
