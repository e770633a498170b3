#include "common/args.h"

#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/version.h"

namespace tusk {

absl::StatusOr<Args> ParseArgs(const std::vector<std::string> &argv, const FlagSpec &spec) {
  Args out;
  bool flags_done = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    std::string arg = argv[i];
    if (flags_done || arg.size() < 2 || arg[0] != '-') {
      out.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    std::string value;
    bool inline_value = false;
    if (size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      inline_value = true;
    }
    if (auto a = spec.aliases.find(arg); a != spec.aliases.end()) arg = a->second;
    if (spec.value_flags.count(arg)) {
      if (!inline_value) {
        if (i + 1 >= argv.size())
          return absl::InvalidArgumentError(absl::StrCat(arg, " needs a value"));
        value = argv[++i];
      }
      out.values[arg].push_back(value);
    } else if (spec.bool_flags.count(arg)) {
      if (inline_value) return absl::InvalidArgumentError(absl::StrCat(arg, " takes no value"));
      out.bools.insert(arg);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag '", arg, "'"));
    }
  }
  return out;
}

absl::StatusOr<uint64_t> ParseBytes(const std::string &flag, const std::string &s) {
  uint64_t mult = 1;
  std::string lower;
  for (char ch : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (const auto &[suffix, m] : std::vector<std::pair<std::string, uint64_t>>{{"kib", 1ull << 10},
                                                                               {"mib", 1ull << 20},
                                                                               {"gib", 1ull << 30},
                                                                               {"kb", 1ull << 10},
                                                                               {"mb", 1ull << 20},
                                                                               {"gb", 1ull << 30},
                                                                               {"k", 1ull << 10},
                                                                               {"m", 1ull << 20},
                                                                               {"g", 1ull << 30},
                                                                               {"b", 1}}) {
    if (lower.size() > suffix.size() &&
        lower.compare(lower.size() - suffix.size(), suffix.size(), suffix) == 0) {
      mult = m;
      lower.resize(lower.size() - suffix.size());
      break;
    }
  }
  uint64_t n = 0;
  if (!absl::SimpleAtoi(lower, &n)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " '", s, "' is not a size (e.g. 16MiB, 64k, 1000)"));
  }
  return n * mult;
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

int UsageError(const std::string &program, const std::string &error) {
  std::cerr << program << ": " << error << "\nRun '" << program << " --help' for usage.\n";
  return 2;
}

std::optional<int> ParseMainArgs(int argc, char **argv, FlagSpec spec, const std::string &program,
                                 const char *usage, bool positional_ok, Args *args) {
  spec.bool_flags.insert({"-h", "--help", "--version"});
  auto parsed = ParseArgs(std::vector<std::string>(argv + 1, argv + argc), spec);
  if (!parsed.ok()) return UsageError(program, std::string(parsed.status().message()));
  if (parsed->Has("-h") || parsed->Has("--help")) {
    std::cout << usage;
    return 0;
  }
  if (parsed->Has("--version")) {
    std::cout << program << " " << kTuskVersion << "\n";
    return 0;
  }
  if (!positional_ok && !parsed->positional.empty()) {
    return UsageError(program, "unexpected argument '" + parsed->positional[0] + "'");
  }
  *args = *std::move(parsed);
  return std::nullopt;
}

}  // namespace tusk
