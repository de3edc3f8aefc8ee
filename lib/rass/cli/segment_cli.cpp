#include "rass/cli/segment_cli.hpp"

#include <cerrno>
#include <cstdlib>

#include "rass/core/default_model.hpp"
#include "rass/core/error.hpp"

namespace rass::cli {

SegmentCli::SegmentCli()
    : ToolCli("segment", "Semantic segmentation of low-quality images with the RAS model (RASS): VAE encoder + one UNet "
                         "pass (SCR merged, Seg LoRA) -> feature projection -> Mask2Former head -> label map.") {
  CLI::App& a = *app_;
  a.add_option("inputs", j_.inputs, "LQ images, directories (searched recursively) or - for stdin")->type_name("INPUT");
  a.add_option("-o,--output", j_.output, "label map PNG (class index 0..C-1; 16-bit beyond 256 classes) or - (one input)")
      ->type_name("FILE");
  a.add_option("-O,--output-dir", j_.output_dir, "output directory (batch): DIR/<key>.png")->type_name("DIR");
  a.add_option("--manifest", j_.manifest, "read image paths from a manifest (JSON lines with \"lq\", \"image\" or \"path\"; or one path per line)")
      ->type_name("FILE");
  a.add_option("-m,--model", j_.model, "segmentation model folder (segment.json, unet/, vae/, text_encoder/, tokenizer/, seg_head.safetensors); default: the embedded mini model's segment/")
      ->type_name("DIR");
  with_choices(a.add_option("--backbone", j_.backbone, "ras (the UNet with SCR merged) or plain (the SD UNet without SCR: unet_plain/)"),
               {"ras", "plain"})
      ->default_str("ras");
  a.add_option("--prompt", j_.prompt, "user prompt (appended to the tags by --prompt-style)");
  a.add_option("--prompt-file", j_.prompt_file, "read the user prompt from a file")->type_name("FILE");
  a.add_option("--tags", j_.tags, "tag lines (RAM output), one per input in input order, or KEY<TAB>tags lines; - for stdin")
      ->type_name("FILE");
  style_opt_ = with_choices(a.add_option("--prompt-style", prompt_style_, "rass: tags and prompt without commas (default: the model's); osediff: \"TAGS, PROMPT,\""),
                            {"osediff", "rass"});
  a.add_option("--classes", j_.classes, "class names for the legend and checks: a file (one per line) or a built-in set (ade20k, cityscapes, voc); the count must equal the head's")
      ->type_name("FILE");
  a.add_flag("--whole", j_.whole, "one pass over the whole (padded) image instead of sliding windows");
  a.add_flag("--no-resize", j_.no_resize, "keep the native resolution (no shortest-edge resize); windows of at most 512 px bound the backbone's memory");
  a.add_option("--window", j_.window, "sliding-window side in pixels, a multiple of the coarsest feature stride (32) when the image needs several (0: the padded image's short side, as released; with --no-resize at most 512)")
      ->default_str("0");
  a.add_flag("--vae-mode", j_.vae_mode, "use the latent mean instead of a sample (deterministic)");
  a.add_option("-s,--seed", seed_, "seed of the latent sample, 0..2^64-1; with the item key it fixes the draw")
      ->type_name("UINT")
      ->default_str("0");
  a.add_option("--latent-in", j_.latent_in, "UNet input latent [4,H/8,W/8] .npy of the processed (padded) image, e.g. rass-restore --latent-out (one input: a file; batch: a directory of <key>.npy)")
      ->type_name("PATH");
  a.add_option("--color", j_.color, "also write the label map in the class palette as an RGB PNG (one input: a file or -; batch: a directory)")
      ->type_name("PATH");
  a.add_option("--overlay", j_.overlay, "also write the image blended with the class colours and a legend of the classes present (PNG)")
      ->type_name("PATH");
  a.add_option("--logits-out", j_.logits_out, "write the per-class scores [C,H,W] float32 .npy (semantic inference before argmax)")
      ->type_name("PATH");
  a.add_option("--probs-out", j_.probs_out, "write the top-1 probability map [H,W] float32 .npy (top score / sum of scores)")
      ->type_name("PATH");
  add_device_option(j_.device);
  with_choices(a.add_option("--dtype", j_.dtype, "fp32, fp16 (CUDA; the VAE stays fp32) or bf16"), {"fp32", "fp16", "bf16"})
      ->default_str("fp32");
  add_threads_option(j_.threads);
  add_speed_options(j_.channels_last, j_.cudnn_benchmark, j_.cuda_graphs);
  add_timings_option(j_.timings);
  a.add_option("--batch", j_.batch, "windows per backbone call: windows of one size from up to N consecutive items (and a large image's own windows) run together; results as one at a time")
      ->default_str("1")
      ->check(positive_integer(4096));
  a.add_flag("--resume", j_.resume, "batch: skip items whose outputs exist and record the settings of this run (others are made again)");
  add_jobs_option();
  add_shard_option();
}

model::SegmentJob SegmentCli::job() const {
  model::SegmentJob j = j_;
  if (style_opt_->count()) j.prompt_style = prompt_style_;
  j.seed = parse_seed(seed_);
  if (j.window % 8) throw_usage("--window " + std::to_string(j.window) + ": expected a multiple of 8 (32 when it tiles the image)");
  j.jobs = common.jobs > 0 ? common.jobs : 1;
  j.shard = common.shard.empty() ? shard_from_env() : parse_shard(common.shard);
  j.json = common.json;
  j.quiet = common.quiet;
  // No --model: the embedded mini model's segmentation folder.
  if (j.model.empty()) j.model = default_model_part("segment", "segment", j.quiet);
  return j;
}

}  // namespace rass::cli
