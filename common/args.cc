#include "common/args.h"

#include "absl/strings/str_cat.h"

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

}  // namespace tusk
