// rass-scenes: flags only; the work is rass::scenes::run_scenes (lib/rass/scenes/scenes_tool.cpp).
#include "rass/cli/scenes_cli.hpp"

int main(int argc, char** argv) {
  rass::cli::ScenesCli cli;
  return rass::cli::run_main(cli, argc, argv, [&] { return rass::scenes::run_scenes(cli.job()); });
}
