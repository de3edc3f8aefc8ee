#include "rass/cli/model_cli.hpp"

#include "rass/core/error.hpp"

namespace rass::cli {

ModelCli::ModelCli()
    : ToolCli("model", "Look inside Stable Diffusion checkpoints (diffusers folders, safetensors), run one component on "
                       ".npy inputs, convert dtypes and layouts.") {
  CLI::App& app = *app_;
  app.require_subcommand(1);
  info_ = app.add_subcommand("info", "components, configs, parameter counts, dtypes and LoRA adapters of a checkpoint");
  info_->add_option("path", a_.path, "diffusers folder or .safetensors file")->required();

  run_ = app.add_subcommand("run", "run one component on .npy inputs and write its output as .npy");
  run_->add_option("path", a_.path, "diffusers folder (unet/, vae/, text_encoder/, tokenizer/)")->required();
  with_choices(run_->add_option("-c,--component", a_.component, "unet, vae-encode, vae-decode, text-encoder or tokenize"),
               {"unet", "vae-encode", "vae-decode", "text-encoder", "tokenize"})
      ->required();
  run_->add_option("--sample", a_.sample, "input .npy: latent [B,4,h,w] (unet, vae-decode) or image in [-1,1] [B,3,H,W] (vae-encode)")
      ->type_name("FILE");
  run_->add_option("--timestep", a_.timestep, "UNet timestep")->default_str("999");
  run_->add_option("--context", a_.context, "UNet cross-attention context .npy [B,L,D]")->type_name("FILE");
  run_->add_option("--input-ids", a_.input_ids, "token ids .npy [B,L] for the text encoder")->type_name("FILE");
  run_->add_option("--prompt", a_.prompt, "prompt text for tokenize / text-encoder");
  run_->add_option("-o,--output", a_.output, "output .npy (- for stdout)")->type_name("FILE")->required();
  run_->add_option("--lora", a_.loras, "LoRA safetensors to apply, FILE[:SCALE] (repeatable)")->type_name("FILE");
  run_->add_option("--device", a_.device, "cpu or cuda[:N]")->default_str("cpu");
  with_choices(run_->add_option("--dtype", a_.dtype, "fp32, fp16 or bf16"), {"fp32", "fp16", "bf16"})->default_str("fp32");
  run_->add_option("--threads", a_.threads, "intra-op threads (0 = all cores)")->default_str("0");
  run_->add_option("--seed", a_.seed, "seed of vae-encode --sample-latent")->default_str("0");
  run_->add_flag("--sample-latent", a_.sample_latent, "vae-encode: draw latent_dist.sample() (OSEDiff/RASS) instead of the mean");

  convert_ = app.add_subcommand("convert", "rewrite dtypes, drop EMA weights, merge a folder into one file or split it back");
  convert_->add_option("path", a_.path, "input .safetensors file or diffusers folder")->required();
  convert_->add_option("-o,--output", a_.output, "output file or folder")->type_name("PATH")->required();
  with_choices(convert_->add_option("--to-dtype", a_.to_dtype, "convert floating tensors to fp32, fp16 or bf16"),
               {"fp32", "fp16", "bf16"});
  convert_->add_flag("--drop-ema", a_.drop_ema, "drop EMA copies of the weights (keys with an 'ema' component)");
  convert_->add_flag("--merge", a_.merge, "merge a diffusers folder into one file with unet./vae./text_encoder. prefixes");
  convert_->add_flag("--split", a_.split, "split a merged file back into a diffusers folder (weights only)");
}

ModelArgs ModelCli::args() const {
  ModelArgs a = a_;
  if (info_->parsed()) a.command = "info";
  else if (run_->parsed()) a.command = "run";
  else a.command = "convert";
  if (a.merge && a.split) throw_usage("--merge and --split exclude each other");
  return a;
}

}  // namespace rass::cli
