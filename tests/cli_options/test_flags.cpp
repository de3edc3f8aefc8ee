// One source of truth for flags: every tool's CLI definition is checked against
// its man page and its completions, and for duplicate or undocumented options.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "rass/cli/completions.hpp"
#include "rass/cli/tool.hpp"
#include "rass/io/image_io.hpp"

using namespace rass::cli;

static std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// roff writes '-' as '\-'; undo that so flags can be searched for.
static std::string unroff(std::string s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '-') continue;
    out += s[i];
  }
  return out;
}

static bool has_word(const std::string& text, const std::string& flag) {
  for (size_t p = text.find(flag); p != std::string::npos; p = text.find(flag, p + 1)) {
    const char after = p + flag.size() < text.size() ? text[p + flag.size()] : ' ';
    const char before = p > 0 ? text[p - 1] : ' ';
    const bool bold = p >= 3 && text.compare(p - 3, 3, "\\fB") == 0;  // roff \fB--flag\fR
    if (bold && !(std::isalnum((unsigned char)after) || after == '-')) return true;
    if (!(std::isalnum((unsigned char)after) || after == '-') && !(std::isalnum((unsigned char)before) || before == '-'))
      return true;
  }
  return false;
}

TEST_CASE("every tool has documented, unique options") {
  auto tools = all_tool_clis();
  REQUIRE(!tools.empty());
  for (auto& tool : tools) {
    std::vector<CLI::App*> apps{&tool->app()};
    for (CLI::App* sub : tool->app().get_subcommands({})) apps.push_back(sub);
    for (CLI::App* app : apps) {
      std::set<std::string> seen;  // unique within the tool, or within one subcommand plus the tool's own
      for (const CLI::Option* opt : tool->app().get_options())
        if (app != &tool->app()) seen.insert(opt->get_name());
      for (const CLI::Option* opt : app->get_options()) {
        if (app != &tool->app() && opt == app->get_help_ptr()) continue;  // each subcommand has its own --help
        INFO("rass-", tool->name(), " ", app->get_name(), " ", opt->get_name());
        CHECK(!opt->get_description().empty());
        for (const auto& s : opt->get_snames()) CHECK(seen.insert("-" + s).second);
        for (const auto& l : opt->get_lnames()) CHECK(seen.insert("--" + l).second);
      }
    }
    // Shared options carry the shared help text, so they read the same in
    // every tool (and subcommand); a tool that runs them for part of its work
    // only may name that part first ("deep metrics: ").
    for (const SharedOption& shared : shared_options()) {
      std::string flags = shared.flags;
      std::string name = flags.substr(flags.find("--"));
      // rass-train's are one per process (cuda: LOCAL_RANK's device), said in its own words.
      if (tool->name() == "train" && (name == "--device" || name == "--threads")) continue;
      for (CLI::App* app : apps)
        for (const CLI::Option* o : app->get_options()) {
          if (!o->check_name(name)) continue;
          INFO("rass-", tool->name(), " ", app->get_name(), " ", name);
          const std::string d = o->get_description(), help = shared.help;
          const bool scoped = d.size() > help.size() + 2 && d.compare(d.size() - help.size(), help.size(), help) == 0 &&
                              d.compare(d.size() - help.size() - 2, 2, ": ") == 0;
          CHECK((d == help || scoped));
        }
    }
  }
}

TEST_CASE("every flag appears in the tool's man page and completions, and completions are current") {
  const std::string root = RASS_SOURCE_DIR;
  for (auto& tool : all_tool_clis()) {
    const std::string man = unroff(slurp(root + "/man/rass-" + tool->name() + ".1"));
    REQUIRE_MESSAGE(!man.empty(), "missing man/rass-", tool->name(), ".1");
    const std::string bash = slurp(root + "/completions/" + bash_completion_path(*tool));
    const std::string zsh = slurp(root + "/completions/" + zsh_completion_path(*tool));
    const std::string fish = slurp(root + "/completions/" + fish_completion_path(*tool));
    for (const std::string& flag : tool_flags(*tool)) {
      INFO("rass-", tool->name(), " ", flag);
      CHECK(has_word(man, flag));
      CHECK(has_word(bash, flag));
      CHECK(has_word(zsh, flag));
      const std::string fish_form = flag.size() == 2 ? "-s " + flag.substr(1) : "-l " + flag.substr(2);
      CHECK(has_word(fish, fish_form));
    }
    INFO("completions of rass-", tool->name(), " are stale: run `make docs`");
    CHECK(bash == bash_completion(*tool));
    CHECK(zsh == zsh_completion(*tool));
    CHECK(fish == fish_completion(*tool));
  }
}

TEST_CASE("the dispatcher's completions list every tool and are current") {
  const std::string root = std::string(RASS_SOURCE_DIR) + "/completions/";
  CHECK(slurp(root + "bash/rass") == dispatcher_bash_completion());
  CHECK(slurp(root + "zsh/_rass") == dispatcher_zsh_completion());
  CHECK(slurp(root + "fish/rass.fish") == dispatcher_fish_completion());
  for (auto& tool : all_tool_clis()) CHECK(has_word(slurp(root + "bash/rass"), tool->name()));
}

TEST_CASE("the man page documents no flag the tool lacks") {
  const std::string root = RASS_SOURCE_DIR;
  for (auto& tool : all_tool_clis()) {
    const std::string man = unroff(slurp(root + "/man/rass-" + tool->name() + ".1"));
    std::set<std::string> known;
    for (const auto& f : tool_flags(*tool)) known.insert(f);
    // Flags are written in bold: \fB--flag\fR.
    for (size_t p = man.find("\\fB--"); p != std::string::npos; p = man.find("\\fB--", p + 1)) {
      size_t end = man.find("\\f", p + 3);
      std::string flag = man.substr(p + 3, end - p - 3);
      if (flag.find(' ') != std::string::npos) flag = flag.substr(0, flag.find(' '));
      INFO("man page of rass-", tool->name(), " mentions ", flag);
      CHECK(known.count(flag) == 1);
    }
  }
}

namespace {
// Parses `args` with a fresh CLI of `tool` (argv[0] added).
// Tools with subcommands (rass-model) get their first one and an operand.
void parse(ToolCli& tool, std::vector<std::string> args) {
  args.insert(args.begin(), "rass-" + tool.name());
  const auto subs = tool.app().get_subcommands({});
  if (!subs.empty()) {
    args.push_back(subs[0]->get_name());
    args.push_back("x");
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  tool.app().parse(int(argv.size()), argv.data());
}
}  // namespace

TEST_CASE("--max-pixels and RASS_MAX_PIXELS set the process-wide pixel limit in every tool") {
  ::unsetenv("RASS_MAX_PIXELS");
  for (auto& tool : all_tool_clis()) {
    INFO("rass-", tool->name());
    rass::set_max_pixels(rass::kDefaultMaxPixels);
    parse(*tool, {"--max-pixels", "1234"});
    CHECK(rass::max_pixels() == 1234);
  }
  for (auto& tool : all_tool_clis()) {
    INFO("rass-", tool->name());
    ::setenv("RASS_MAX_PIXELS", "4321", 1);
    parse(*tool, {});
    CHECK(rass::max_pixels() == 4321);
    parse(*tool, {"--max-pixels", "0"});  // the flag wins over the environment
    CHECK(rass::max_pixels() == 0);
    ::unsetenv("RASS_MAX_PIXELS");
  }
  for (const char* bad : {"-5", "1e3", "abc", "", "99999999999999999999"}) {
    INFO("--max-pixels '", bad, "'");
    auto tools = all_tool_clis();
    CHECK_THROWS_AS(parse(*tools[0], {"--max-pixels", bad}), CLI::ParseError);
  }
  rass::set_max_pixels(rass::kDefaultMaxPixels);
}
