// `rass <tool> args...` runs `rass-<tool> args...`: first next to this binary,
// then on PATH (as git does for its subcommands).
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "rass/cli/tool.hpp"
#include "rass/core/error.hpp"
#include "rass/core/version.hpp"

namespace {
// Exit 126, as a shell says a command it found cannot run. ENOENT for a
// file that is there: a script whose interpreter is missing.
int cannot_run(const std::string& tool, int err) {
  std::fprintf(stderr, "rass: %s: cannot run it: %s%s\n", rass::printable_message(tool).c_str(), std::strerror(err),
               err == ENOENT ? " (a script whose interpreter is missing?)" : "");
  return 126;
}
}  // namespace

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
    if (argc > 2) {
      std::fprintf(stderr, "rass: %s takes no arguments\n", argv[1]);
      return 2;
    }
    std::printf("rass %s\n", rass::version());
    return rass::cli::check_stdout("rass", 0);
  }
  const std::string tool = std::string("rass-") + argv[1];
  if (std::strchr(argv[1], '/')) {  // execvp would take it as a path
    std::fprintf(stderr, "rass: '%s' is not a rass tool (a tool name holds no '/'); run 'rass --help'\n",
                 rass::printable_message(argv[1]).c_str());
    return 2;
  }
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
    if (::access(sibling.c_str(), X_OK) == 0) {
      ::execv(sibling.c_str(), args.data());
      return cannot_run(sibling, errno);
    }
  }
  ::execvp(tool.c_str(), args.data());
  // Found but not runnable (not executable, a bad interpreter line): said as
  // the shell says it (126), not as a missing tool.
  const int err = errno;
  if (err != ENOENT && err != ENOTDIR) return cannot_run(tool, err);
  // ENOENT also for a script whose interpreter is missing: the file is there.
  if (const char* path = std::getenv("PATH")) {
    const std::string dirs = path;
    for (size_t a = 0; a <= dirs.size();) {
      const size_t b = std::min(dirs.find(':', a), dirs.size());
      const std::string candidate = (b > a ? dirs.substr(a, b - a) : std::string(".")) + "/" + tool;
      if (::access(candidate.c_str(), F_OK) == 0) return cannot_run(candidate, err);
      a = b + 1;
    }
  }
  std::fprintf(stderr, "rass: '%s' is not a rass tool (no %s found); run 'rass --help'\n", rass::printable_message(argv[1]).c_str(),
               rass::printable_message(tool).c_str());
  return 2;
}
