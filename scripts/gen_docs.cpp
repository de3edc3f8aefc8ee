// rass-gen-docs DIR: writes the shell completions of every tool under DIR
// (bash/, zsh/, fish/) from the tools' CLI definitions. `make docs` runs it.
#include <cstdio>
#include <string>

#include "rass/cli/completions.hpp"
#include "rass/core/error.hpp"
#include "rass/core/file.hpp"

int main(int argc, char** argv) {
  // An option is never a folder name: `rass-gen-docs --help` made a folder
  // "--help". Nor is "": `rass-gen-docs "$DIR"` with DIR unset wrote /bash.
  const bool help = argc == 2 && (std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help");
  if (argc != 2 || argv[1][0] == '-' || argv[1][0] == '\0') {
    std::fprintf(help ? stdout : stderr, "usage: rass-gen-docs COMPLETIONS_DIR\n");
    return help ? 0 : 2;
  }
  const std::string dir = argv[1];
  try {
    for (const char* sub : {"bash", "zsh", "fish"}) rass::make_directories(dir + "/" + sub);
    rass::write_file_atomic(dir + "/bash/rass", rass::cli::dispatcher_bash_completion());
    rass::write_file_atomic(dir + "/zsh/_rass", rass::cli::dispatcher_zsh_completion());
    rass::write_file_atomic(dir + "/fish/rass.fish", rass::cli::dispatcher_fish_completion());
    for (auto& tool : rass::cli::all_tool_clis()) {
      rass::write_file_atomic(dir + "/" + bash_completion_path(*tool), bash_completion(*tool));
      rass::write_file_atomic(dir + "/" + zsh_completion_path(*tool), zsh_completion(*tool));
      rass::write_file_atomic(dir + "/" + fish_completion_path(*tool), fish_completion(*tool));
    }
  } catch (const rass::Error& e) {
    std::fprintf(stderr, "rass-gen-docs: %s\n", e.what());
    return e.exit_code();
  }
  return 0;
}
