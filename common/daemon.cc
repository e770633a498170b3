#include "common/daemon.h"

#include <gflags/gflags.h>
#include <glog/logging.h>
#include <pthread.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "common/version.h"

DEFINE_string(log_level, "info", "least severe log messages kept: debug, info, warning or error");

// gflags ends the process through this pointer (exported by libgflags for
// tests; not in its header): after help output, and on a flag it cannot
// parse. The daemons' exit codes say which.
namespace google {
extern void (*gflags_exitfunc)(int);
}  // namespace google

namespace tusk {
namespace {

bool help_requested = false;
std::map<std::string, std::vector<std::string>>* repeated = nullptr;

void ExitForGflags(int) { std::exit(help_requested ? 0 : 2); }

// "2026-11-21T09:51:00.123Z I file.cc:12]" (glog adds the space after it).
void LogPrefix(std::ostream& s, const google::LogMessageInfo& info, void*) {
  absl::Time t = absl::FromTimeT(info.time.timestamp()) + absl::Microseconds(info.time.usec());
  s << absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone()) << ' ' << info.severity[0]
    << ' ' << info.filename << ':' << info.line_number << ']';
}

bool IsBoolFlag(const std::string& name) {
  google::CommandLineFlagInfo f;
  return google::GetCommandLineFlagInfo(name.c_str(), &f) && f.type == "bool";
}

bool IsFlag(const std::string& name) {
  google::CommandLineFlagInfo f;
  return google::GetCommandLineFlagInfo(name.c_str(), &f);
}

// argv with flag names in gflags' spelling, checked: names every problem
// the way the daemons always have, before gflags sees them.
std::optional<std::string> Normalize(int argc, char** argv, const DaemonInfo& info,
                                     std::vector<std::string>* out,
                                     std::vector<std::string>* positional) {
  out->push_back(argv[0]);
  bool flags_done = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (flags_done || arg.size() < 2 || arg[0] != '-') {
      positional->push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    if (!absl::StartsWith(arg, "--")) return absl::StrCat("unknown flag '", arg, "'");
    size_t eq = arg.find('=');
    std::string given = arg.substr(0, eq);
    std::string name = absl::StrReplaceAll(given.substr(2), {{"-", "_"}});
    std::string value = eq == std::string::npos ? "" : arg.substr(eq);
    if (!IsFlag(name)) {
      if (absl::StartsWith(name, "no_") && IsBoolFlag(name.substr(3))) {
        name = "no" + name.substr(3);
      } else if (!(absl::StartsWith(name, "no") && IsBoolFlag(name.substr(2)))) {
        return absl::StrCat("unknown flag '", given, "'");
      }
    }
    if (absl::StartsWith(name, "help")) help_requested = true;
    out->push_back(absl::StrCat("--", name, value));
    bool many =
        std::find(info.repeatable.begin(), info.repeatable.end(), name) != info.repeatable.end();
    if (eq == std::string::npos && IsFlag(name) && !IsBoolFlag(name)) {
      if (i + 1 >= argc) return absl::StrCat(given, " needs a value");
      out->push_back(argv[++i]);
      if (many) (*repeated)[name].push_back(argv[i]);
    } else if (many) {
      (*repeated)[name].push_back(value.substr(1));
    }
  }
  if (!info.positional_ok && !positional->empty()) {
    return absl::StrCat("unexpected argument '", (*positional)[0], "'");
  }
  return std::nullopt;
}

}  // namespace

std::optional<int> InitDaemon(int argc, char** argv, const DaemonInfo& info,
                              std::vector<std::string>* positional) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") break;
    if (arg == "-h" || arg == "--help") {
      std::cout << info.usage;
      return 0;
    }
    if (arg == "--version") {
      std::cout << info.program << " " << kTuskVersion << "\n";
      return 0;
    }
  }
  repeated = new std::map<std::string, std::vector<std::string>>();
  std::vector<std::string> args, rest;
  if (auto error = Normalize(argc, argv, info, &args, &rest)) {
    return UsageError(info.program, *error);
  }
  google::SetUsageMessage(info.usage);
  google::SetVersionString(kTuskVersion);
  google::gflags_exitfunc = &ExitForGflags;
  std::vector<char*> ptrs;
  for (auto& a : args) ptrs.push_back(a.data());
  ptrs.push_back(nullptr);
  int n = static_cast<int>(args.size());
  char** p = ptrs.data();
  google::ParseCommandLineFlags(&n, &p, /*remove_flags=*/true);
  if (positional != nullptr) *positional = rest;

  // glog's own flags are gflags too: a user's --logtostderr=false (log
  // files in --log_dir) or --v wins over these defaults.
  if (!FlagWasSet("logtostderr")) FLAGS_logtostderr = true;
  const std::string& level = FLAGS_log_level;
  if (level == "debug") {
    FLAGS_minloglevel = google::GLOG_INFO;
    if (!FlagWasSet("v")) FLAGS_v = 1;
  } else if (level == "info") {
    FLAGS_minloglevel = google::GLOG_INFO;
  } else if (level == "warning") {
    FLAGS_minloglevel = google::GLOG_WARNING;
  } else if (level == "error") {
    FLAGS_minloglevel = google::GLOG_ERROR;
  } else {
    return UsageError(info.program,
                      "--log-level must be debug, info, warning or error, not '" + level + "'");
  }
  google::InitGoogleLogging(info.program, &LogPrefix, nullptr);
  google::InstallFailureSignalHandler();
  // SIGTERM is a stop request here, not a failure: daemons that handle it
  // block it and sigwait; the others end the default way, without a trace.
  signal(SIGTERM, SIG_DFL);
  return std::nullopt;
}

std::vector<std::string> RepeatedFlag(const std::string& name) {
  if (repeated == nullptr) return {};
  auto it = repeated->find(name);
  return it == repeated->end() ? std::vector<std::string>() : it->second;
}

bool FlagWasSet(const char* name) {
  google::CommandLineFlagInfo f;
  return google::GetCommandLineFlagInfo(name, &f) && !f.is_default;
}

int UsageError(const std::string& program, const std::string& error) {
  std::cerr << program << ": " << error << "\nRun '" << program << " --help' for usage.\n";
  return 2;
}

sigset_t BlockStopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return signals;
}

}  // namespace tusk
