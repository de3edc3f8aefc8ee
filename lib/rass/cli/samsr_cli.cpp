#include "rass/cli/samsr_cli.hpp"

namespace rass::cli {

SamsrCli::SamsrCli()
    : ToolCli("samsr", "x4 super-resolution by a one-step diffusion model in a VQ latent: SAMSR (SAM-guided noise and "
                       "per-pixel schedule), SinSR, or ResShift's chain.") {
  CLI::App& a = *app_;
  a.add_option("inputs", j_.inputs, "low-resolution images, directories (searched recursively) or - for stdin")->type_name("INPUT");
  a.add_option("-o,--output", j_.output, "output image or - (one input); PNG carries the run's settings")->type_name("FILE");
  a.add_option("-O,--output-dir", j_.output_dir, "output directory (batch): DIR/<key>.png")->type_name("DIR");
  a.add_option("--manifest", j_.manifest, "read image paths from a manifest (JSON lines with \"image\", \"lq\" or \"path\"; or one path per line)")
      ->type_name("FILE");
  a.add_option("-m,--model", j_.model, "model folder (samsr.json, unet.safetensors, autoencoder.safetensors; SAMSR's also sam/)")
      ->type_name("DIR");
  a.add_option("--sam", j_.sam, "SAM folder for SAMSR's masks (rass-sam's ViT-B; default: the model folder's sam/)")->type_name("DIR");
  with_choices(a.add_option("--noise", j_.noise, "auto (the model's method), sam (SAMSR's mask-weighted noise and schedule) or gaussian (SinSR, ResShift)"),
               {"auto", "sam", "gaussian"})
      ->default_str("auto");
  a.add_option("--steps", j_.steps, "diffusion steps (0 = the method's: 1 for SAMSR and SinSR, the chain's length for ResShift; more than 1 respaces ResShift's chain)")
      ->default_str("0")
      ->check(integer_range(0, 10000));
  a.add_option("-s,--seed", seed_, "seed of the noise, 0..2^64-1; with the item key it fixes the draw")->type_name("UINT")->default_str("0");
  a.add_option("--chop-size", j_.chop_size, "inputs larger than this (low-resolution pixels) are restored in overlapping tiles of this size, averaged (0: whole)")
      ->default_str("512")
      ->check(integer_range(0, 65536));
  a.add_option("--chop-stride", j_.chop_stride, "stride of the tiles (0: 7/8 of --chop-size, the reference's 448 for 512)")
      ->default_str("0")
      ->check(integer_range(0, 65536));
  add_device_option(j_.device);
  with_choices(a.add_option("--dtype", j_.dtype, "fp32, fp16 (CUDA) or bf16"), {"fp32", "fp16", "bf16"})->default_str("fp32");
  add_threads_option(j_.threads);
  a.add_flag("--resume", j_.resume, "batch: skip items whose outputs exist and record the settings of this run (others are made again)");
  add_jobs_option();
  add_shard_option();
}

model::SamsrJob SamsrCli::job() const {
  model::SamsrJob j = j_;
  j.seed = parse_seed(seed_);
  j.jobs = common.jobs > 0 ? common.jobs : 1;
  j.shard = common.shard.empty() ? shard_from_env() : parse_shard(common.shard);
  j.json = common.json;
  j.quiet = common.quiet;
  return j;
}

}  // namespace rass::cli
