#include "rass/cli/sam_cli.hpp"

#include <string>

#include "rass/core/error.hpp"

namespace rass::cli {

SamCli::SamCli()
    : ToolCli("sam", "Prompted segmentation with Segment Anything (SAM v1 or SAM 2), and GleSAM's generative latent enhancement "
                     "of its image embedding for low-quality images: points and boxes -> object masks.") {
  CLI::App& a = *app_;
  a.add_option("inputs", j_.inputs, "images, directories (searched recursively) or - for stdin")->type_name("INPUT");
  a.add_option("-o,--output", j_.output, "mask PNG or - (one input): object labels, --fill where no object is")
      ->type_name("FILE");
  a.add_option("-O,--output-dir", j_.output_dir, "output directory (batch): DIR/<key>.png")->type_name("DIR");
  a.add_option("--manifest", j_.manifest, "read image paths from a manifest (JSON lines with \"image\", \"lq\" or \"path\"; or one path per line)")
      ->type_name("FILE");
  a.add_option("-m,--model", j_.model, "SAM or SAM 2 model folder (sam.json, sam.safetensors; GleSAM's also unet/, text_encoder/, tokenizer/, scheduler/)")
      ->type_name("DIR");
  a.add_option("--point", j_.points, "a point prompt X,Y (pixels of the input image) with an optional label L (1 foreground, the default; 0 background); repeatable; one object")
      ->type_name("X,Y[,L]");
  a.add_option("--box", j_.boxes, "a box prompt X0,Y0,X1,Y1 (pixels of the input image); one object")->type_name("X0,Y0,X1,Y1");
  a.add_option("--prompts-from", j_.prompts_from, "make the prompts from a label map: one object per label value (a file for one image, - for stdin; batch: a directory of <key>.png)")
      ->type_name("PATH");
  with_choices(a.add_option("--prompt-type", j_.prompt_type, "with --prompts-from: box (the tight box of each object), points (random pixels of it) or box+points"),
               {"box", "points", "box+points"})
      ->default_str("box");
  a.add_option("--points", j_.points_per_object, "with --prompts-from: foreground points drawn per object (distinct pixels; GleSAM's evaluation uses 3)")
      ->default_str("3")
      ->check(integer_range(1, 64));
  a.add_option("--skip", j_.skip, "with --prompts-from: label values that are no object, comma-separated, or none")->default_str("255");
  a.add_option("-s,--seed", seed_, "seed of the drawn points, 0..2^64-1; with the item key and label it fixes the draw")
      ->type_name("UINT")
      ->default_str("0");
  a.add_flag("--multimask", j_.multimask, "decode three masks per object and keep the one with the highest predicted IoU (default: SAM's single-mask output; SAM 2's own choice between its single mask, when stable, and the three)");
  a.add_flag("--everything", j_.everything, "segment everything: a grid of point prompts, three masks each, filtered by predicted IoU and stability, boxes suppressed (SAM's automatic mask generator); writes mask ids 1..N");
  a.add_option("--points-per-side", j_.points_per_side, "--everything: points per side of the grid")
      ->default_str("32")
      ->check(integer_range(1, 128));  // 3 x 128^2 masks stay under 65535 ids
  a.add_option("--points-per-batch", j_.points_per_batch, "--everything: point prompts per decoder call (memory; results differ only by float rounding)")
      ->default_str("64")
      ->check(integer_range(1, 1024));
  a.add_option("--pred-iou-thresh", j_.pred_iou_thresh, "--everything: keep masks whose predicted IoU is above this (0: no filter; default: the generator's, 0.88 for SAM, 0.8 for SAM 2)")
      ->default_str("0.88; SAM 2: 0.8");
  a.add_option("--stability-thresh", j_.stability_thresh, "--everything: keep masks whose stability score is at least this (0: no filter)")
      ->default_str("0.95");
  a.add_option("--nms-thresh", j_.nms_thresh, "--everything: box IoU above which the mask with the lower predicted IoU is dropped")
      ->default_str("0.7");
  a.add_option("--crop-layers", j_.crop_layers, "--everything: crop layers; layer i runs the generator again on (2^i)^2 overlapping crops of the image, each embedded on its own")
      ->default_str("0")
      ->check(integer_range(0, 4));
  a.add_option("--crop-nms-thresh", j_.crop_nms_thresh, "--everything with --crop-layers: box IoU above which the mask of the larger crop is dropped")
      ->default_str("0.7");
  a.add_option("--crop-overlap", j_.crop_overlap, "--everything with --crop-layers: the first layer's crops overlap by this fraction of the short side (later layers: less)")
      ->default_str("0.3413333333333333");  // 512 / 1500, to the last digit that matters
  a.add_option("--crop-points-downscale", j_.crop_points_downscale, "--everything with --crop-layers: layer i's points per side are --points-per-side / this^i")
      ->default_str("1")
      ->check(integer_range(1, 16));
  a.add_option("--min-region-area", j_.min_region_area, "--everything: fill holes and drop islands smaller than this many pixels in each mask, then suppress changed masks again (SAM 2: holes and islands of at most this many pixels of its low-resolution logits, before scoring; 0: off)")
      ->default_str("0")
      ->check(non_negative_integer(int64_t(1) << 40));
  a.add_flag("--m2m", j_.m2m, "--everything with SAM 2: decode each mask once more from its point and its own low-resolution logits as a mask prompt, before the filters (SAM2AutomaticMaskGenerator's use_m2m)");
  fill_opt_ = a.add_option("--fill", fill_, "label of pixels no object covers (default: 0 with --point/--box, whose object is 255; with --prompts-from the largest --skip value)")
                  ->check(integer_range(0, 65535));
  with_choices(a.add_option("--enhance", j_.enhance, "GleSAM's latent enhancement: auto (when the folder has an enhancer), on or off"),
               {"auto", "on", "off"})
      ->default_str("auto");
  with_choices(a.add_option("--robust", j_.robust, "RobustSAM's robust path (its robust output tokens and anti-degradation features): auto (when the folder is RobustSAM's), on or off (its SAM tokens)"),
               {"auto", "on", "off"})
      ->default_str("auto");
  with_choices(a.add_option("--hq", j_.hq, "HQ-SAM's HQ output token and features: auto (when the folder is HQ-SAM's), on or off (SAM's tokens alone)"),
               {"auto", "on", "off"})
      ->default_str("auto");
  a.add_flag("--hq-token-only", j_.hq_token_only, "HQ-SAM: the HQ token's mask alone, not added to SAM's (its hq_token_only)");
  add_device_option(j_.device);
  with_choices(a.add_option("--dtype", j_.dtype, "fp32, fp16 (CUDA) or bf16"), {"fp32", "fp16", "bf16"})->default_str("fp32");
  add_threads_option(j_.threads);
  a.add_flag("--resume", j_.resume, "batch: skip items whose masks exist and record the settings of this run (others are made again)");
  add_jobs_option();
  add_shard_option();
}

model::SamJob SamCli::job() const {
  model::SamJob j = j_;
  // Flags that only one way of prompting reads are refused elsewhere, not ignored.
  for (const char* f : {"--points-per-side", "--points-per-batch", "--pred-iou-thresh", "--stability-thresh",
                        "--nms-thresh", "--crop-layers", "--min-region-area", "--m2m"})
    if (!j.everything && given_on_command_line(f)) throw_usage(std::string(f) + " goes with --everything");
  for (const char* f : {"--crop-nms-thresh", "--crop-overlap", "--crop-points-downscale"})
    if ((!j.everything || j.crop_layers == 0) && given_on_command_line(f))
      throw_usage(std::string(f) + " goes with --everything --crop-layers N (N > 0)");
  for (const char* f : {"--prompt-type", "--points", "--skip", "--seed"})
    if (j.prompts_from.empty() && given_on_command_line(f))
      throw_usage(std::string(f) + " goes with --prompts-from (prompts made from a label map)");
  // The drawn points: --prompt-type box (the default) draws none. (--seed is
  // let be: scripts pass their seed whatever the prompt type.)
  if (!j.prompts_from.empty() && j.prompt_type == "box" && given_on_command_line("--points"))
    throw_usage("--points sets the points drawn for --prompt-type points or box+points; the type is box");
  j.seed = parse_seed(seed_);
  if (fill_opt_->count()) j.fill = fill_;
  j.jobs = common.jobs > 0 ? common.jobs : 1;
  j.shard = common.shard.empty() ? shard_from_env() : parse_shard(common.shard);
  j.json = common.json;
  j.quiet = common.quiet;
  return j;
}

}  // namespace rass::cli
