#include "cli/command.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace tusk::cli {
namespace {

constexpr char kAfterCommands[] = R"(
REF is a branch, a 32-hex-character commit id, or either followed by ^ (parent)
or ~N (N-th ancestor). A put or delete on a branch without an open commit makes
one commit around it; 'put file -r' of a directory is one commit.

Global flags:
  --address HOST:PORT   tuskd address (default: $TUSK_ADDRESS, else the current
                        context's, else 127.0.0.1:1650)
  --tls-ca FILE         reach tuskd over TLS, trusting this PEM CA bundle
                        (default: $TUSK_TLS_CA, else the current context's)
  --json                print the API's messages as JSON, one per line
  -h, --help            help for tusk or for one command ('tusk put file --help')

Environment: TUSK_ADDRESS; TUSK_TOKEN (a token, for tuskd --auth); TUSK_TLS_CA
(reach tuskd over TLS), TUSK_TLS_CERT and TUSK_TLS_KEY (mutual TLS); TUSK_CONFIG
(the contexts file, default ~/.config/tusk/config.yaml). Each wins over the
current context.

Exit codes: 0 ok, 1 error, 2 bad usage, 3 not found, 4 conflict (exists, open or
finished commit, file/directory clash), 5 tuskd or its object store unreachable
(worth retrying), 6 corrupt data (fsck), 7 not allowed (no token, or its role
does not allow the call).
)";

// Every flag of every command, by name (and alias): whether it takes a
// value everywhere it is declared. Used only to step over flags that come
// before the command's words.
std::map<std::string, bool> AllFlags(const std::vector<Command>& commands) {
  std::map<std::string, bool> out;
  auto add = [&](const FlagDef& f) {
    for (const std::string& n : {f.name, f.alias}) {
      if (n.empty()) continue;
      auto [it, fresh] = out.emplace(n, f.takes_value);
      if (!fresh) it->second = it->second && f.takes_value;
    }
  };
  for (const auto& f : CommandTable::GlobalFlags()) add(f);
  for (const auto& c : commands) {
    for (const auto& f : c.flags) add(f);
  }
  return out;
}

}  // namespace

const std::vector<FlagDef>& CommandTable::GlobalFlags() {
  static const auto* flags = new std::vector<FlagDef>{
      {"--address", true}, {"--tls-ca", true}, {"--json", false}, {"-h", false, false, "--help"}};
  return *flags;
}

void CommandTable::Add(Command command) {
  if (std::find(sections_.begin(), sections_.end(), command.section) == sections_.end()) {
    sections_.push_back(command.section);
  }
  by_name_[command.name] = commands_.size();
  commands_.push_back(std::move(command));
}

const Command* CommandTable::Find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &commands_[it->second];
}

std::string CommandTable::MainHelp() const {
  std::string out =
      "tusk: command line for tusk, a versioned data lake\n\n"
      "Usage: tusk COMMAND [ARGS] [--address HOST:PORT] [--json]\n";
  for (const auto& section : sections_) {
    absl::StrAppend(&out, "\n", section, ":\n");
    for (const auto& c : commands_) {
      if (c.section == section) absl::StrAppend(&out, "  ", c.usage, "\n");
    }
  }
  return out + kAfterCommands;
}

std::string CommandTable::CommandHelp(const Command& c) const {
  return absl::StrCat("Usage: tusk ", c.usage, "\n", c.help,
                      "\nFlags: --address HOST:PORT, --tls-ca FILE, --json (see 'tusk --help')\n");
}

absl::StatusOr<CommandTable::Parsed> CommandTable::Parse(
    const std::vector<std::string>& argv) const {
  // The command's words: the first one or two arguments that are not flags
  // (or values of flags before them).
  const std::map<std::string, bool> all = AllFlags(commands_);
  std::vector<size_t> words;
  std::string name;
  for (size_t i = 0; i < argv.size() && words.size() < 2; ++i) {
    const std::string& a = argv[i];
    if (a == "--") break;
    if (a.size() > 1 && a[0] == '-') {
      auto f = all.find(a);
      if (f != all.end() && f->second) ++i;  // its value
      continue;
    }
    std::string candidate = name.empty() ? a : absl::StrCat(name, " ", a);
    if (words.size() == 1 && Find(name) != nullptr && Find(candidate) == nullptr) break;
    words.push_back(i);
    name = candidate;
    if (Find(name) != nullptr && !name.empty() && words.size() == 1) {
      // A one-word command ("gc", "logs") takes no second word.
      bool two = false;
      for (const auto& c : commands_) two = two || absl::StartsWith(c.name, name + " ");
      if (!two) break;
    }
  }
  Parsed parsed;
  std::vector<std::string> rest;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (std::find(words.begin(), words.end(), i) == words.end()) rest.push_back(argv[i]);
  }
  if (name.empty()) {
    // No command: only global flags (tusk --help).
    FlagSpec spec;
    for (const auto& f : GlobalFlags()) {
      (f.takes_value ? spec.value_flags : spec.bool_flags).insert(f.name);
      if (!f.alias.empty()) spec.aliases[f.alias] = f.name;
    }
    auto args = ParseArgs(rest, spec);
    if (!args.ok()) return args.status();
    parsed.args = *std::move(args);
    return parsed;
  }
  parsed.command = Find(name);
  if (parsed.command == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown command '", name, "'"));
  }
  const Command& c = *parsed.command;
  FlagSpec spec;
  std::set<std::string> repeatable;
  for (const auto* list : {&GlobalFlags(), &c.flags}) {
    for (const auto& f : *list) {
      (f.takes_value ? spec.value_flags : spec.bool_flags).insert(f.name);
      if (!f.alias.empty()) spec.aliases[f.alias] = f.name;
      if (f.repeatable) repeatable.insert(f.name);
    }
  }
  auto args = ParseArgs(rest, spec);
  if (!args.ok()) {
    // A flag some other command takes: say this one does not.
    for (const auto& a : rest) {
      std::string flag = a.substr(0, a.find('='));
      if (flag.size() > 1 && flag[0] == '-' && !spec.value_flags.count(flag) &&
          !spec.bool_flags.count(flag) && !spec.aliases.count(flag) && all.count(flag)) {
        return absl::InvalidArgumentError(
            absl::StrCat(c.name, " does not take ", flag, " (see 'tusk ", c.name, " --help')"));
      }
    }
    return args.status();
  }
  for (const auto& [flag, values] : args->values) {
    if (values.size() > 1 && !repeatable.count(flag)) {
      return absl::InvalidArgumentError(absl::StrCat(flag, " is given more than once"));
    }
  }
  if (!args->Has("-h")) {
    int n = static_cast<int>(args->positional.size());
    if (n > c.max_args && c.max_args >= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument '", args->positional[c.max_args], "'"));
    }
    if (n < c.min_args) {
      return absl::InvalidArgumentError(
          absl::StrCat(c.name, " needs ", c.usage.substr(c.name.size() + 1)));
    }
  }
  parsed.args = *std::move(args);
  return parsed;
}

CommandTable AllCommands() {
  CommandTable t;
  AddRepoCommands(&t);
  AddCommitCommands(&t);
  AddFileCommands(&t);
  AddPutFileCommands(&t);
  AddSourceCommands(&t);
  AddPipelineCommands(&t);
  AddJobCommands(&t);
  AddAdminCommands(&t);
  AddAuthCommands(&t);
  AddContextCommands(&t);
  return t;
}

}  // namespace tusk::cli
