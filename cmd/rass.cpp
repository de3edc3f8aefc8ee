// `rass <tool> args...` runs `rass-<tool> args...`: first next to this binary,
// then on PATH (as git does for its subcommands).
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "rass/cli/tool.hpp"
#include "rass/core/error.hpp"
#include "rass/core/version.hpp"

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help")) {
    // Asked for, the list goes to stdout (checked as every tool's is); bare
    // `rass` is a usage error, and its usage goes to stderr.
    std::FILE* out = argc < 2 ? stderr : stdout;
    std::fprintf(out, "usage: rass <tool> [args...]   (runs rass-<tool>)\n\ntools:\n");
    for (const auto& t : rass::cli::all_tool_clis()) std::fprintf(out, "  %-12s %s\n", t->name().c_str(), t->summary().c_str());
    return argc < 2 ? 2 : rass::cli::check_stdout("rass", 0);
  }
  if (!std::strcmp(argv[1], "-V") || !std::strcmp(argv[1], "--version")) {
    std::printf("rass %s\n", rass::version());
    return rass::cli::check_stdout("rass", 0);
  }
  const std::string tool = std::string("rass-") + argv[1];
  std::vector<char*> args{const_cast<char*>(tool.c_str())};
  for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
    std::string dir(self);
    dir = dir.substr(0, dir.find_last_of('/'));
    std::string sibling = dir + "/" + tool;
    if (::access(sibling.c_str(), X_OK) == 0) ::execv(sibling.c_str(), args.data());
  }
  ::execvp(tool.c_str(), args.data());
  std::fprintf(stderr, "rass: '%s' is not a rass tool (no %s found); run 'rass --help'\n", rass::printable_message(argv[1]).c_str(),
               rass::printable_message(tool).c_str());
  return 2;
}
