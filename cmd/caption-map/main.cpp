// rass-caption-map: flags only; the work is rass::text::run_caption_map_tool
// (lib/rass/text/caption_map_tool.cpp). Built with LibTorch, it registers the
// Sentence-BERT similarity (lib/rass/model/sbert.cpp) first.
#include "rass/cli/caption_map_cli.hpp"
#ifdef RASS_CAPTION_MAP_SBERT
#include "rass/model/sbert_register.hpp"
#endif

int main(int argc, char** argv) {
#ifdef RASS_CAPTION_MAP_SBERT
  rass::model::register_sbert_similarity();
#endif
  rass::cli::CaptionMapCli cli;
  return rass::cli::run_main(cli, argc, argv, [&] { return rass::text::run_caption_map_tool(cli.job()); });
}
