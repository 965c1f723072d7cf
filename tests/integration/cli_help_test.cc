// The CLI's own description of itself against README: every flag that `roilens <command> --help`
// lists is named in README's CLI table row of that command and vice versa, every command has a
// row, and `roilens --version` prints the project() version of the top-level CMakeLists.txt.
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "testing/cli_runner.h"
#include "testing/paths.h"

namespace roilens {
namespace {

using testing::ReadFileText;
using testing::RunCli;

/// The flags in the "Options:" part of a CLI11 --help text ("-c,--config TEXT ..." gives -c and
/// --config), without -h/--help.
std::set<std::string> HelpFlags(const std::string& help) {
  std::set<std::string> flags;
  std::istringstream in(help);
  std::string line;
  while (std::getline(in, line)) {
    const auto start = line.find_first_not_of(' ');
    if (start == std::string::npos || start == 0 || line[start] != '-') continue;
    std::string names = line.substr(start, line.find(' ', start) - start);
    std::istringstream split(names);
    std::string name;
    while (std::getline(split, name, ',')) {
      if (name != "-h" && name != "--help" && !name.empty()) flags.insert(name);
    }
  }
  return flags;
}

/// Subcommand names listed under "Subcommands:" of the top-level --help.
std::set<std::string> HelpSubcommands(const std::string& help) {
  std::set<std::string> names;
  std::istringstream in(help);
  std::string line;
  bool in_list = false;
  while (std::getline(in, line)) {
    if (line.rfind("Subcommands:", 0) == 0) {
      in_list = true;
      continue;
    }
    if (!in_list) continue;
    std::istringstream words(line);
    std::string name;
    if (words >> name) names.insert(name);
  }
  return names;
}

/// README's CLI table: command name -> the whole row (only rows of `roilens <command> ...`).
std::map<std::string, std::string> ReadmeRows() {
  std::map<std::string, std::string> rows;
  std::istringstream in(ReadFileText(testing::SourceDir() + "/README.md"));
  std::string line;
  const std::regex row("^\\| `roilens ([a-z]+)[ `]");
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_search(line, m, row)) rows[m[1]] = line;
  }
  return rows;
}

/// Every -x / --long-name token in README text (not inside words like "cut-off" or "1-25").
std::set<std::string> TextFlags(const std::string& text) {
  std::set<std::string> flags;
  const std::regex flag("(^|[^A-Za-z0-9_-])(--?[A-Za-z][A-Za-z0-9-]*)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), flag); it != std::sregex_iterator();
       ++it) {
    flags.insert((*it)[2]);
  }
  return flags;
}

std::string Joined(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += n + " ";
  return out;
}

TEST(CliHelpTest, ReadmeTableNamesEveryFlagOfEveryCommandAndNoOther) {
  auto top = RunCli({"--help"});
  ASSERT_EQ(top.exit_code, 0) << top.err;
  const auto commands = HelpSubcommands(top.out);
  ASSERT_GE(commands.size(), 5u) << top.out;
  const auto rows = ReadmeRows();
  for (const std::string& command : commands) {
    SCOPED_TRACE(command);
    auto it = rows.find(command);
    ASSERT_NE(it, rows.end()) << "README's CLI table has no row for `roilens " << command << "`";
    auto help = RunCli({command, "--help"});
    ASSERT_EQ(help.exit_code, 0) << help.err;
    const auto cli = HelpFlags(help.out);
    ASSERT_FALSE(cli.empty()) << help.out;
    const auto readme = TextFlags(it->second);
    std::set<std::string> missing, stale;
    for (const auto& f : cli) {
      if (!readme.count(f)) missing.insert(f);
    }
    for (const auto& f : readme) {
      if (!cli.count(f)) stale.insert(f);
    }
    EXPECT_TRUE(missing.empty()) << "flags of `roilens " << command
                                 << "` that README's row does not name: " << Joined(missing);
    EXPECT_TRUE(stale.empty()) << "flags README's row of `roilens " << command
                               << "` names but the CLI does not take: " << Joined(stale);
  }
  for (const auto& [command, row] : rows) {
    EXPECT_TRUE(commands.count(command))
        << "README documents `roilens " << command << "`, which the CLI does not have";
  }
}

TEST(CliHelpTest, VersionIsTheCMakeProjectVersionAndReadmeSaysSo) {
  const std::string cmake = ReadFileText(testing::SourceDir() + "/CMakeLists.txt");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(cmake, m, std::regex("project\\(roilens VERSION ([0-9.]+)")));
  auto result = RunCli({"--version"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "roilens " + m[1].str() + "\n");
  EXPECT_NE(ReadFileText(testing::SourceDir() + "/README.md").find("`roilens --version`"),
            std::string::npos);
}

TEST(CliHelpTest, CommonFlagsHaveShortForms) {
  for (const char* command : {"run", "calibrate"}) {
    auto help = RunCli({command, "--help"});
    const auto flags = HelpFlags(help.out);
    EXPECT_TRUE(flags.count("-c") && flags.count("--config")) << command << ": " << help.out;
    EXPECT_TRUE(flags.count("-o") && flags.count("--out")) << command << ": " << help.out;
  }
  EXPECT_TRUE(HelpFlags(RunCli({"run", "--help"}).out).count("-q"));
}

TEST(CliHelpTest, NegativeMaxFramesIsRefusedWithAClearMessage) {
  for (const char* value : {"-3", "-1"}) {
    auto result =
        RunCli({"run", "in.mp4", "-c", "station.json", "-o", "out", "--max-frames", value});
    EXPECT_EQ(result.exit_code, 2) << value << ": " << result.out << result.err;
    EXPECT_NE((result.out + result.err)
                  .find("--max-frames must be 0 (the whole input) or a "
                        "positive frame count"),
              std::string::npos)
        << result.out << result.err;
  }
  auto joined = RunCli({"run", "in.mp4", "-c", "station.json", "-o", "out", "--max-frames=-2"});
  EXPECT_EQ(joined.exit_code, 2) << joined.out << joined.err;
}

}  // namespace
}  // namespace roilens
