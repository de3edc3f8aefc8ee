// rass-caption-map as a library call: label maps (+ image tags) -> prompts on
// stdout and, with a tokenizer, HDF5 packs with per-term masks and token
// positions (caption_pack.hpp); and build-table, which writes a similarity table
// for a tag vocabulary. Batch inputs and the per-item error policy are the
// batch layer's (lib/rass/batch).
//
// Tags (--tags FILE, "-" = stdin): one tag list per line (parse_tag_list:
// "a, b, c" or RAM's "a | b | c").
//   - keyed: when any line holds a TAB, every non-empty line is
//     "key<TAB>tag list" (what this tool prints in batch mode, so its output
//     chains); an item gets the line of its key, or no tags when there is none;
//     keys that match no item are named in a warning.
//   - unkeyed: only with a single label map: the file holds one tag list (one
//     non-empty line); several lines are an error, since their pairing with
//     images would be a guess.
#pragma once
#include <string>
#include <vector>

#include "rass/core/shard.hpp"

namespace rass::text {

struct CaptionMapJob {
  // inputs
  std::vector<std::string> inputs;  // label maps: files, directories, "-"
  std::string manifest;             // JSON lines with a "label" (or "gt") field, or TSV
  std::string classes = "ade20k";   // built-in set or file (rass-eval-miou's --classes)
  bool reduce_zero_label = false;
  std::string tags;                 // tag lists, "-" = stdin
  std::string key;                  // single mode: the item key (default: the file's stem)
  // similarity
  std::string similarity = "wordnet";  // wordnet | sbert (a table is --table)
  std::string table;                   // TSV tag, class, score
  std::string wordnet_dir;             // "" = WordNet::default_dir()
  int senses = 2;                      // wordnet: senses compared per word (0 = all)
  std::string text_model;              // sbert: sentence-transformers folder
  std::string device = "cpu";          // sbert
  double threshold = 0.5;
  // outputs
  std::string prompt_style = "osediff";  // osediff | rass
  std::string tokenizer;                 // CLIP tokenizer folder (vocab.json + merges.txt, or a model folder)
  std::string output;                    // single: FILE.h5
  std::string output_dir;                // batch: DIR/<key>.h5
  bool resume = false;
  int jobs = 0;
  Shard shard;
  bool quiet = false;
  bool json = false;
  // build-table
  bool build_table = false;
  std::string vocabulary;   // tags, one per line
  std::string table_out;    // TSV ("-" = stdout)
  bool all_classes = false;  // every scored class per tag, not only the best
};

// Exit codes as the batch layer's: 0; 3 when some inputs were bad; 1 when an
// item failed at runtime. Usage errors throw Error(usage).
int run_caption_map(const CaptionMapJob& job);
int run_build_table(const CaptionMapJob& job);
// build_table ? run_build_table : run_caption_map.
int run_caption_map_tool(const CaptionMapJob& job);

}  // namespace rass::text
