#pragma once

// The start of a daemon's main() (tuskd, tusk-ingest, tusk-runner,
// tusk-dev-kafka): flags through gflags, logs through glog.
//
// Flags are defined with gflags in each main.cc (DEFINE_string(data_dir,...))
// and read there into the daemon's Options struct; libraries never read
// them. On the command line a flag may be spelled with dashes or
// underscores (--data-dir, --data_dir), a boolean one negated with --no-
// (--no-local-runners); --flagfile=FILE reads flags from a file (one
// --name=value per line, underscores), and --helpon=MODULE, --helpfull and
// --helpmatch=S list gflags' view of the flags.
//
// Logs go to stderr, one line per message:
//   2026-11-21T09:51:00.123Z I pfs_commits.cc:208] finished commit 3f2a...
// --log-level (debug, info, warning, error) picks the least severe kept;
// debug turns on VLOG(1). A crash (SIGSEGV, SIGABRT, SIGBUS, SIGILL,
// SIGFPE) prints the signal and a stack trace before the process dies.

#include <signal.h>

#include <optional>
#include <string>
#include <vector>

namespace tusk {

struct DaemonInfo {
  const char* program;  // "tuskd"
  const char* usage;    // what -h/--help prints
  // Whether the daemon takes positional arguments; if not, one is bad usage.
  bool positional_ok = false;
  // String flags that may be given more than once (gflags keeps the last
  // value; RepeatedFlag has them all).
  std::vector<std::string> repeatable = {};
};

// Parses argv (gflags) and sets up logging (glog). Returns the exit code to
// end with (0 after --help or --version, 2 on bad usage: an unknown flag, a
// missing or bad value, an unexpected argument) or nullopt to go on, with
// the positional arguments in *positional (if not null).
std::optional<int> InitDaemon(int argc, char** argv, const DaemonInfo& info,
                              std::vector<std::string>* positional = nullptr);

// Whether the flag `name` (underscores) was given on the command line or in
// a flag file.
bool FlagWasSet(const char* name);

// Every value a repeatable string flag (DaemonInfo.repeatable) was given, in
// order.
std::vector<std::string> RepeatedFlag(const std::string& name);

// Prints "<program>: <error>" and a pointer to --help on stderr; returns 2,
// the exit code of bad usage.
int UsageError(const std::string& program, const std::string& error);

// Blocks SIGINT and SIGTERM in this thread and the threads it starts (call it
// first in main, after InitDaemon), and ignores SIGPIPE. Returns the set for
// sigwait().
sigset_t BlockStopSignals();

}  // namespace tusk
