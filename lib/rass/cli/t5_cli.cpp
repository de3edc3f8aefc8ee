#include "rass/cli/t5_cli.hpp"

namespace rass::cli {

T5Cli::T5Cli()
    : ToolCli("t5", "T5 encoder features of image captions, as PixArt and DreamClear make them "
                    "(tools/extract_t5_features.py): the caption cleaned, tokenized and encoded; for rass-dreamclear --caption.") {
  CLI::App& a = *app_;
  a.add_option("inputs", j_.inputs, "caption files (their first line; .caption or .txt in directories, searched recursively) or - for stdin")
      ->type_name("INPUT");
  a.add_option("--text", text_, "the caption itself instead of a file (one caption; -o names the output)")->type_name("TEXT");
  a.add_option("-o,--output", j_.output, "output .npz or - (one caption): caption_feature [1, L, C] float32, attention_mask [1, L] int64")
      ->type_name("FILE");
  a.add_option("-O,--output-dir", j_.output_dir, "output directory (batch): DIR/<key>.npz")->type_name("DIR");
  a.add_option("--manifest", j_.manifest, "read caption file paths from a manifest (JSON lines with \"caption\" or \"path\"; or one path per line)")
      ->type_name("FILE");
  a.add_option("-m,--model", j_.model, "T5 encoder folder (transformers: config.json, model.safetensors or its shards; "
                                       "a PixArt pipeline's text_encoder/)")
      ->type_name("DIR");
  a.add_option("--tokenizer", j_.tokenizer, "T5's spiece.model (default: in the model folder, or ../tokenizer/spiece.model)")
      ->type_name("FILE");
  with_choices(a.add_option("--clean", j_.clean, "caption cleaning: pixart (T5Embedder's clean_caption, twice: the reference's), "
                                                 "lower (lower-case and strip) or none"),
               {"pixart", "lower", "none"})
      ->default_str("pixart");
  a.add_option("--max-length", j_.max_length, "tokens, </s> and padding included (PixArt's and DreamClear's 120)")
      ->default_str("120")
      ->check(integer_range(2, 4096));
  add_device_option(j_.device);
  with_choices(a.add_option("--dtype", j_.dtype, "fp32, or bf16 (the reference loads T5 in bfloat16: features equal to its precision)"),
               {"fp32", "bf16"})
      ->default_str("fp32");
  add_threads_option(j_.threads);
  a.add_flag("--resume", j_.resume, "batch: skip captions whose outputs exist and record the settings of this run (others are made again)");
  add_jobs_option();
  add_shard_option();
}

model::T5Job T5Cli::job() const {
  model::T5Job j = j_;
  if (app_->count("--text")) j.text = text_;
  j.jobs = common.jobs > 0 ? common.jobs : 1;
  j.shard = common.shard.empty() ? shard_from_env() : parse_shard(common.shard);
  j.json = common.json;
  j.quiet = common.quiet;
  return j;
}

}  // namespace rass::cli
