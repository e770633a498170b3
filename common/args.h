#pragma once

// Command-line parsing for tusk binaries: positional arguments and flags.
// Value flags take the next argument (or `--flag=value`); boolean flags take
// none. Unknown flags are errors. "--" ends flag parsing.

#include <csignal>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tusk {

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> values;  // flag -> values (repeatable)
  std::set<std::string> bools;

  bool Has(const std::string &flag) const { return bools.count(flag) || values.count(flag); }
  // Last value of a value flag, or `def`.
  std::string Get(const std::string &flag, const std::string &def = "") const {
    auto it = values.find(flag);
    return it == values.end() || it->second.empty() ? def : it->second.back();
  }
};

struct FlagSpec {
  std::set<std::string> value_flags;           // e.g. "-f", "--address"
  std::set<std::string> bool_flags;            // e.g. "--json", "-r"
  std::map<std::string, std::string> aliases;  // e.g. "--file" -> "-f"
};

absl::StatusOr<Args> ParseArgs(const std::vector<std::string> &argv, const FlagSpec &spec);

// "16MiB", "64k", "1G", "1000" -> bytes (K, M, G are powers of 1024).
// InvalidArgument naming `flag` for anything else.
absl::StatusOr<uint64_t> ParseBytes(const std::string &flag, const std::string &s);

// Blocks SIGINT and SIGTERM in this thread and the threads it starts (call it
// first in main), and ignores SIGPIPE. Returns the set for sigwait().
sigset_t BlockStopSignals();

// Prints "<program>: <error>" and a pointer to --help on stderr; returns 2,
// the exit code of bad usage.
int UsageError(const std::string &program, const std::string &error);

// The start of a server's or tool's main(): parses argv with `spec` plus
// -h/--help/--version, and handles those. Returns the exit code to end with
// (0 after help or version, 2 on bad usage) or nullopt to go on with *args.
// With `positional_ok` false, positional arguments are bad usage.
std::optional<int> ParseMainArgs(int argc, char **argv, FlagSpec spec, const std::string &program,
                                 const char *usage, bool positional_ok, Args *args);

}  // namespace tusk
