#pragma once

// The tusk CLI's command tree. Each command declares, next to its code (one
// file per resource: repos.cc, commits.cc, files.cc, put_file.cc,
// sources.cc, pipelines.cc, jobs.cc, admin.cc), its name ("create repo"),
// where it shows in the main help, its usage and help text, how many
// arguments it takes and the flags it takes. CommandTable finds the command
// in argv, parses the rest against that command's flags only (a flag the
// command does not take is bad usage, exit 2), and generates the main help
// from the table.
//
// Thread-compatible: built once in main().

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/args.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace tusk::cli {

// Exit codes. Documented in the main help.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitNotFound = 3;
inline constexpr int kExitConflict = 4;
inline constexpr int kExitUnavailable = 5;
inline constexpr int kExitCorrupt = 6;
inline constexpr int kExitDenied = 7;  // no token, or its role does not allow it

struct FlagDef {
  std::string name;          // "--description", "-f"
  bool takes_value = false;  // else a boolean
  bool repeatable = false;   // a value flag given more than once keeps every value
  std::string alias = "";    // "--file" for "-f"
};

// What a command runs with: its parsed arguments and tuskd's channel.
struct Invocation {
  Args args;  // positional arguments (the command's words removed) and flags
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
};

struct Command {
  std::string name;     // one or two words: "version", "create repo"
  std::string section;  // heading in the main help
  std::string usage;    // "create repo NAME [--description D]" (without "tusk ")
  std::string help;     // what it does, lines indented by two spaces
  int min_args = 0;     // positional arguments
  int max_args = 0;     // -1: any number
  std::vector<FlagDef> flags;
  std::function<int(const Invocation&)> run;
};

class CommandTable {
 public:
  // Flags every command takes: --address, --json, -h/--help.
  static const std::vector<FlagDef>& GlobalFlags();

  void Add(Command command);
  const Command* Find(const std::string& name) const;
  const std::vector<Command>& commands() const { return commands_; }

  // The main help: every command's usage by section, then what holds for all.
  std::string MainHelp() const;
  // One command's help.
  std::string CommandHelp(const Command& command) const;

  struct Parsed {
    const Command* command = nullptr;  // null: no command given
    Args args;
  };
  // Finds the command in argv and parses its arguments and flags.
  // InvalidArgument (bad usage) naming what is wrong: an unknown command, a
  // flag this command does not take, a missing flag value, a flag given
  // twice that is not repeatable, too few or too many arguments.
  absl::StatusOr<Parsed> Parse(const std::vector<std::string>& argv) const;

 private:
  std::vector<Command> commands_;
  std::map<std::string, size_t> by_name_;
  std::vector<std::string> sections_;  // in the order first seen
};

// Each resource file's commands.
void AddRepoCommands(CommandTable* table);
void AddCommitCommands(CommandTable* table);
void AddFileCommands(CommandTable* table);
void AddPutFileCommands(CommandTable* table);
void AddSourceCommands(CommandTable* table);
void AddPipelineCommands(CommandTable* table);
void AddJobCommands(CommandTable* table);
void AddAdminCommands(CommandTable* table);
void AddAuthCommands(CommandTable* table);
void AddContextCommands(CommandTable* table);

// The whole table.
CommandTable AllCommands();

}  // namespace tusk::cli
