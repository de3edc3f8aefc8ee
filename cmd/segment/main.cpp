// rass-segment: flags only; the work is rass::model::run_segment_tool (lib/rass/model/segment_tool.cpp).
#include "rass/cli/segment_cli.hpp"
#include "rass/model/segment_tool.hpp"

int main(int argc, char** argv) {
  rass::cli::SegmentCli cli;
  return rass::cli::run_main(cli, argc, argv, [&] { return rass::model::run_segment_tool(cli.job()); });
}
