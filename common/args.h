#pragma once

// Command-line parsing for the tusk CLI: positional arguments and flags.
// Value flags take the next argument (or `--flag=value`); boolean flags take
// none. Unknown flags are errors. "--" ends flag parsing.

#include <map>
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

}  // namespace tusk
