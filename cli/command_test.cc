// The CLI's command table: finding commands, per-command flags, arity, and
// the help made from it. No tuskd is needed: parsing happens before any call.

#include "cli/command.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tusk::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::StatusOr<CommandTable::Parsed> Parse(const std::string& line) {
  static const CommandTable* table = new CommandTable(AllCommands());
  return table->Parse(absl::StrSplit(line, ' ', absl::SkipEmpty()));
}

std::string Error(const std::string& line) {
  auto p = Parse(line);
  EXPECT_FALSE(p.ok()) << line;
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << line;
  return std::string(p.status().message());
}

TEST(CommandTableTest, FindsOneAndTwoWordCommandsWithFlagsAnywhere) {
  auto p = Parse("list repo");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->command->name, "list repo");
  p = Parse("--address 127.0.0.1:9 --json inspect commit images@master --provenance");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->command->name, "inspect commit");
  EXPECT_THAT(p->args.positional, ElementsAre("images@master"));
  EXPECT_EQ(p->args.Get("--address"), "127.0.0.1:9");
  EXPECT_TRUE(p->args.Has("--json"));
  EXPECT_TRUE(p->args.Has("--provenance"));
  p = Parse("gc --grace 0s");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->command->name, "gc");
  p = Parse("");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->command, nullptr);
  EXPECT_THAT(Error("frobnicate repo"), HasSubstr("unknown command 'frobnicate repo'"));
}

TEST(CommandTableTest, AFlagTheCommandDoesNotTakeIsBadUsage) {
  EXPECT_THAT(Error("list repo --untar --staged"), HasSubstr("list repo does not take --untar"));
  EXPECT_THAT(Error("create repo x --bogus"), HasSubstr("unknown flag '--bogus'"));
  EXPECT_THAT(Error("create repo x --description"), HasSubstr("--description needs a value"));
  EXPECT_THAT(Error("create repo x --description a --description b"),
              HasSubstr("--description is given more than once"));
}

TEST(CommandTableTest, RepeatableFlagsKeepEveryValue) {
  auto p = Parse("put file data@master:/dir/ -f a.txt --file b.txt -f c.txt");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->args.values.count("-f"), 1u);
  EXPECT_THAT(p->args.values.at("-f"), ElementsAre("a.txt", "b.txt", "c.txt"));
  p = Parse("create source s --kafka k:9 --topic a --topic b --repo r");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(p->args.values.at("--topic"), ElementsAre("a", "b"));
}

TEST(CommandTableTest, FlagsMeanWhatTheirCommandSays) {
  // In logs, -f follows; in put file it names a file.
  auto p = Parse("logs -p edges -f");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->args.Has("--follow"));
  EXPECT_THAT(Error("put file data@master -f"), HasSubstr("-f needs a value"));
}

TEST(CommandTableTest, ArityIsChecked) {
  EXPECT_THAT(Error("list repo extra"), HasSubstr("unexpected argument 'extra'"));
  EXPECT_THAT(Error("inspect datum edges@abc"), HasSubstr("inspect datum needs"));
  EXPECT_TRUE(Parse("diff commit r@a r@b").ok());
  EXPECT_THAT(Error("diff commit r@a r@b r@c"), HasSubstr("unexpected argument 'r@c'"));
  // --help is answered whatever the arguments.
  EXPECT_TRUE(Parse("inspect datum --help").ok());
}

TEST(CommandTableTest, MainHelpListsEveryCommandOnce) {
  CommandTable table = AllCommands();
  std::string help = table.MainHelp();
  std::set<std::string> names;
  for (const auto& c : table.commands()) {
    EXPECT_TRUE(names.insert(c.name).second) << "twice: " << c.name;
    EXPECT_THAT(help, HasSubstr("  " + c.usage + "\n")) << c.name;
    EXPECT_TRUE(absl::StartsWith(c.usage, c.name)) << c.usage;
    EXPECT_TRUE(c.run) << c.name;
    EXPECT_THAT(table.CommandHelp(c), HasSubstr("Usage: tusk " + c.usage));
  }
  EXPECT_GE(names.size(), 44u);
  EXPECT_THAT(help, HasSubstr("Exit codes:"));
}

}  // namespace
}  // namespace tusk::cli
