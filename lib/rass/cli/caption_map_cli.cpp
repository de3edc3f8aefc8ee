#include "rass/cli/caption_map_cli.hpp"

#include <cmath>
#include <cstdlib>

#include "rass/core/decimal.hpp"
#include "rass/core/error.hpp"

namespace rass::cli {

CaptionMapCli::CaptionMapCli()
    : ToolCli("caption-map",
              "Semantic prompts for SCR: the classes of a label map plus image tags mapped to classes by similarity "
              "(seed 000 8.3); per-term masks and CLIP token positions in HDF5 for the semantic-constrained loss.") {
  CLI::App& a = *app_;
  a.add_option("inputs", j_.inputs, "label maps: files, directories (batch) or - (stdin)")->type_name("LABELMAP");
  a.add_option("--manifest", j_.manifest, "label maps from a manifest: JSON lines with \"label\" (or gt, seg, pred) and optional \"key\", or TSV")
      ->type_name("FILE");
  a.add_option("--classes", j_.classes, "class names: ade20k (default), cityscapes, voc, or a file with one name per line")
      ->type_name("SET|FILE")
      ->default_str("ade20k");
  a.add_flag("--reduce-zero-label", j_.reduce_zero_label, "raw ADE20K annotations: 0 -> ignore, v -> v-1, as mmseg");
  a.add_option("--tags", j_.tags,
               "image tags: one list per line (\"a, b, c\" or RAM's \"a | b | c\"); batch: key<TAB>tags lines; - = stdin")
      ->type_name("FILE");
  a.add_option("--key", j_.key, "single label map: its key (default: the file's stem; \"stdin\" for -)");
  with_choices(a.add_option("--similarity", j_.similarity, "tag -> class similarity: wordnet (Wu-Palmer, no weights) or sbert (--text-model)"),
               {"wordnet", "sbert"})
      ->default_str("wordnet");
  a.add_option("--table", j_.table, "similarity table: TSV lines tag<TAB>class<TAB>score (replaces --similarity)")
      ->type_name("FILE");
  a.add_option("--wordnet", j_.wordnet_dir, "WordNet database folder (index.noun, data.noun, noun.exc)")
      ->envname("RASS_WORDNET_DIR")
      ->type_name("DIR")
      ->default_str("/usr/share/wordnet");
  a.add_option("--senses", j_.senses, "wordnet: noun senses compared per word, most frequent first (0 = all)")
      ->default_str("2");
  a.add_option("--text-model", j_.text_model, "sbert: a sentence-transformers folder (model.safetensors, vocab.txt, ...)")
      ->type_name("DIR");
  add_device_option(j_.device, "sbert: ");
  a.add_option("--threshold", threshold_, "a tag inherits its class's mask when the similarity is at least this")
      ->default_str("0.5");
  with_choices(a.add_option("--prompt-style", j_.prompt_style, "osediff: terms joined by \", \"; rass: by spaces (no commas)"),
               {"osediff", "rass"})
      ->default_str("osediff");
  a.add_option("--tokenizer", j_.tokenizer, "CLIP tokenizer folder (vocab.json, merges.txt) or a Stable Diffusion folder; needed for HDF5 output")
      ->envname("RASS_TOKENIZER")
      ->type_name("DIR");
  a.add_option("-o,--output", j_.output, "single label map: write the HDF5 pack here; build-table: the table (- = stdout)")
      ->type_name("FILE");
  a.add_option("-O,--output-dir", j_.output_dir, "batch: write DIR/<key>.h5 per label map")->type_name("DIR");
  a.add_flag("--resume", j_.resume, "batch: keep packs an earlier run finished (prompts are still printed)");
  add_jobs_option();
  add_shard_option();

  build_table_ = a.add_subcommand("build-table", "write a similarity table (TSV tag, class, score) for a tag vocabulary with --similarity");
  // The table goes to the tool's -o (- = stdout): one --output flag for the tool.
  build_table_->add_option("vocabulary", j_.vocabulary, "tags, one per line (- = stdin)")->type_name("FILE")->required();
  build_table_->add_flag("--all-classes", j_.all_classes, "every class with a score, not only each tag's best");
  build_table_->fallthrough();
}

text::CaptionMapJob CaptionMapCli::job() const {
  text::CaptionMapJob j = j_;
  double t = 0;
  if (!parse_decimal(threshold_, &t))
    throw_usage("--threshold '" + threshold_ + "' is not a number");
  j.threshold = t;
  j.build_table = build_table_->parsed();
  if (j.build_table) {
    j.table_out = j.output;
    j.output.clear();
  }
  j.jobs = common.jobs;
  j.quiet = common.quiet;
  j.json = common.json;
  j.shard = common.shard.empty() ? shard_from_env() : parse_shard(common.shard);
  if (j.build_table && (!j.inputs.empty() || !j.manifest.empty()))
    throw_usage("build-table takes a vocabulary file, not label maps");
  auto given = [&](const char* flag) { return app_->get_option(flag)->count() > 0; };
  // Flags of the caption map that build-table does not use: refused, not
  // ignored (a --threshold there would not filter the table).
  if (j.build_table)
    for (const char* flag : {"--tags", "--key", "--threshold", "--prompt-style", "--tokenizer", "--output-dir", "--resume",
                             "--reduce-zero-label"})
      if (flag != std::string("--tokenizer") ? given(flag) : given_on_command_line("--tokenizer"))
        throw_usage(std::string(flag) + " does not apply to build-table (it scores the vocabulary against the classes)");
  // The table is one file: shards would each write all of it to the one -o.
  if (j.build_table && (common.json || given_on_command_line("--shard")))
    throw_usage(std::string(common.json ? "--json" : "--shard") + " does not apply to build-table (it writes one TSV table)");
  // A flag of the similarity that does not run would do nothing: refused, so
  // a script meant for one similarity does not silently get the other.
  const bool table = !j.table.empty() && !j.build_table;
  const std::string runs = table ? "--table (which replaces --similarity)" : "--similarity " + j.similarity;
  if (given("--senses") && (table || j.similarity != "wordnet"))
    throw_usage("--senses applies to --similarity wordnet, not to " + runs);
  for (const char* flag : {"--text-model", "--device"})
    if (given(flag) && (table || j.similarity != "sbert"))
      throw_usage(std::string(flag) + " applies to --similarity sbert, not to " + runs);
  // RASS_WORDNET_DIR may be set for every run; only the flag itself is refused.
  if (given_on_command_line("--wordnet") && (table || j.similarity != "wordnet"))
    throw_usage("--wordnet applies to --similarity wordnet, not to " + runs);
  return j;
}

}  // namespace rass::cli
