#include "rass/cli/merge_lora_cli.hpp"

#include <cmath>

#include "rass/cli/model_cli.hpp"  // parse_lora_spec
#include "rass/core/error.hpp"

namespace rass::cli {

MergeLoraCli::MergeLoraCli()
    : ToolCli("merge-lora", "LoRA surgery on diffusers weights: merge adapters into base weights, list a LoRA file, "
                            "extract a LoRA from two checkpoints, start the RASS Seg LoRA, replicate UNet channels.") {
  CLI::App& app = *app_;
  app.require_subcommand(1);
  auto base_options = [&](CLI::App* sub, const char* flag, const char* help) {
    CLI::Option* base = sub->add_option(flag, a_.model, help)->type_name("PATH");
    with_choices(sub->add_option("--component", a_.component, "component folder of a model folder: unet, vae or text_encoder"),
                 {"unet", "vae", "text_encoder"})
        ->default_str("unet");
    sub->add_option("--config", a_.config, "config.json of a lone .safetensors base (default: the one beside it)")
        ->type_name("FILE");
    return base;
  };
  auto device_options = [&](CLI::App* sub) {
    add_device_option(a_.device, "", sub);
    add_threads_option(a_.threads, "", sub);
  };
  auto dtype_option = [&](CLI::App* sub) {
    with_choices(sub->add_option("--dtype", a_.dtype, "floating dtype written: fp32, fp16 or bf16 (default: the base's)"),
                 {"fp32", "fp16", "bf16"});
  };

  // list first: the read-only command (and the one shared CLI tests parse with an operand).
  list_ = app.add_subcommand("list", "adapters, ranks, alphas, targets and parameter counts of a LoRA file");
  list_->add_option("lora", a_.lora_file, "LoRA .safetensors file")->required()->type_name("FILE");
  base_options(list_, "--model", "also match the targets against this model's layers");

  merge_ = app.add_subcommand("merge", "merge LoRA files (with scales) into base weights");
  base_options(merge_, "--model", "base: diffusers folder, component folder or .safetensors file")->required();
  merge_->add_option("--lora", loras_, "LoRA safetensors to merge, FILE[:SCALE] (repeatable, applied in order)")
      ->type_name("FILE")
      ->required();
  merge_->add_option("-o,--output", a_.output, "merged component weights (.safetensors)")->type_name("FILE");
  merge_->add_option("-O,--output-dir", a_.output_dir, "a new model folder: the base folder with the merged component")
      ->type_name("DIR");
  dtype_option(merge_);
  device_options(merge_);

  extract_ = app.add_subcommand("extract", "the difference of two checkpoints as a rank-r LoRA (truncated SVD)");
  base_options(extract_, "--base", "base checkpoint: diffusers folder, component folder or .safetensors file")->required();
  extract_->add_option("--tuned", a_.tuned, "fine-tuned checkpoint of the same architecture")->type_name("PATH")->required();
  extract_->add_option("--rank", a_.rank, "LoRA rank r (alpha = r, so scale 1; at most the full rank of every layer)")->default_str("4")->check(positive_integer());
  extract_->add_option("--targets", a_.targets, "only layers matching these module names (PEFT matching; repeatable or comma-separated)")
      ->delimiter(',')
      ->type_name("NAME");
  extract_->add_flag("--full-weights", a_.full_weights, "also write differing non-LoRA tensors (norms, biases, embeddings) as full weights");
  extract_->add_option("-o,--output", a_.output, "LoRA .safetensors to write (PEFT names)")->type_name("FILE")->required();
  device_options(extract_);

  init_seg_ = app.add_subcommand("init-seg", "RASS stage-2 start: SCR merged into the UNet, a fresh Seg LoRA, projection and head "
                                             "(a segmentation folder rass-train ras and rass-segment load)");
  init_seg_->add_option("--model", a_.model, "base diffusers folder (SD 2.1-base layout)")->type_name("DIR")->required();
  auto* scr = init_seg_->add_option("--lora", loras_, "the SCR LoRA, FILE[:SCALE] (repeatable)")->type_name("FILE");
  init_seg_->add_flag("--no-scr", a_.no_scr, "no SCR LoRA: unet/ is the plain backbone (FT-none and DT of seed 000's ablation)")->excludes(scr);
  init_seg_->add_option("--rank", a_.rank, "Seg LoRA rank")->default_str("4")->check(positive_integer());
  init_seg_->add_option("--alpha", a_.alpha, "Seg LoRA alpha (RASS leaves PEFT's default, 8)")->default_str("8")->check(positive_number());
  init_seg_->add_option("--seed", a_.seed, "seed of the gaussian init of lora_A (the projection and head draw from seed + 1)")->default_str("0")->check(non_negative_integer(999999999999999999LL));
  timestep_ = init_seg_->add_option("--timestep", a_.timestep, "SCR timestep, recorded in rass.json");
  with_choices(init_seg_->add_option("--formula", a_.formula, "SCR one-step formula recorded in rass.json: ddpm or residual"),
               {"ddpm", "residual"});
  with_choices(init_seg_->add_option("--prompt-style", a_.prompt_style, "prompt style recorded in rass.json: osediff or rass"),
               {"osediff", "rass"});
  init_seg_->add_option("--head", a_.head, "Mask2Former head: released (RASS's), tiny (rass-model init's tiny-seg head), none (no "
                                           "segment.json nor seg_head: the LoRA surgery only) or a head-config JSON file")
      ->type_name("FILE")
      ->default_str("released");
  classes_ = init_seg_->add_option("--classes", a_.classes, "classes of the head: ade20k, cityscapes, voc or a file with one name per line")
      ->type_name("FILE")
      ->default_str("ade20k");
  init_seg_->add_option("-O,--output-dir", a_.output_dir, "the new model folder")->type_name("DIR")->required();
  dtype_option(init_seg_);
  device_options(init_seg_);

  expand_ = app.add_subcommand("expand-channels", "GleSAM channel replication of conv_in / conv_out by N");
  expand_->add_option("factor", a_.factor, "replication factor N (GleSAM: 64)")->required()->check(positive_integer());
  base_options(expand_, "--model", "UNet: diffusers folder, component folder or .safetensors file")->required();
  expand_->add_option("-O,--output-dir", a_.output_dir, "the new folder (a model folder for a model folder, else a UNet folder)")
      ->type_name("DIR")
      ->required();
  // --json / --quiet after the subcommand.
  for (CLI::App* sub : {merge_, list_, extract_, init_seg_, expand_}) sub->fallthrough();
}

model::MergeLoraJob MergeLoraCli::job() const {
  model::MergeLoraJob a = a_;
  using C = model::MergeLoraJob::Command;
  if (merge_->parsed()) a.command = C::merge;
  else if (list_->parsed()) a.command = C::list;
  else if (extract_->parsed()) a.command = C::extract;
  else if (init_seg_->parsed()) a.command = C::init_seg;
  else a.command = C::expand_channels;
  for (const std::string& s : loras_) a.loras.push_back(parse_lora_spec(s));
  a.has_timestep = timestep_->count() > 0;
  if (a.has_timestep && !std::isfinite(a.timestep)) throw_usage("--timestep must be a finite number");
  a.json = common.json;
  a.quiet = common.quiet;
  if (!a.config.empty() && a.command == C::init_seg) throw_usage("init-seg reads the folder's unet/config.json; --config does not apply");
  // Silently unused, a --classes file would never be read, so a wrong one
  // (empty, misspelt) would pass unnoticed until a later init-seg with a head.
  if (a.command == C::init_seg && a.head == "none" && classes_->count() > 0)
    throw_usage("init-seg: --classes applies to a head; --head none writes none (leave --classes out)");
  return a;
}

}  // namespace rass::cli
