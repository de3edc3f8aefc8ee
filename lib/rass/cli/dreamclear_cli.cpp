#include "rass/cli/dreamclear_cli.hpp"

#include <tuple>

#include "rass/core/error.hpp"

namespace rass::cli {

DreamClearCli::DreamClearCli()
    : ToolCli("dreamclear", "real-world restoration by DreamClear (seed 003): a DiT with ControlFormer and the mixture "
                            "of adaptive modulators, guided by a caption's T5 features.") {
  CLI::App& a = *app_;
  a.add_option("inputs", j_.inputs, "low-quality images, directories (searched recursively) or - for stdin")->type_name("INPUT");
  a.add_option("-o,--output", j_.output, "output image or - (one input); PNG carries the run's settings")->type_name("FILE");
  a.add_option("-O,--output-dir", j_.output_dir, "output directory (batch): DIR/<key>.png")->type_name("DIR");
  a.add_option("--manifest", j_.manifest, "read image paths from a manifest (JSON lines with \"image\", \"lq\" or \"path\"; or one path per line)")
      ->type_name("FILE");
  a.add_option("-m,--model", j_.model, "model folder (dreamclear.json, dit.safetensors, swinir.safetensors, vae/)")->type_name("DIR");
  a.add_option("--caption", j_.caption, "T5 features of the image's caption: one .npz for every image, or a folder of <key>.npz "
                                         "(caption_feature, attention_mask: DreamClear's tools/extract_t5_features.py format; rass-t5 writes them)")
      ->type_name("PATH");
  a.add_flag("--null-caption", j_.null_caption, "no caption: the model's null caption on both sides of the guidance (unconditional)");
  a.add_option("--steps", j_.steps, "sampling steps (IDDPM respaced from the 1000 of training; the reference's 50)")
      ->default_str("50")
      ->check(integer_range(1, 1000));
  a.add_option("--cfg", j_.cfg_scale, "classifier-free guidance scale")->default_str("4.5")->check(number_range(0.0, 100.0));
  a.add_option("--upscale", j_.upscale, "output size = input size x this")->default_str("4")->check(integer_range(1, 16));
  a.add_option("--min-size", j_.min_size, "the image is worked on at a shorter side of at least this (the reference's 1024), then resized back")
      ->default_str("1024")
      ->check(integer_range(64, 8192));
  a.add_option("--tile", j_.tile, "latent tile of the denoiser for latents other than the model's size (latent pixels, 8 image pixels each; 0: the whole latent at once)")
      ->default_str("128")
      ->check(integer_range(0, 4096));
  a.add_option("--tile-overlap", j_.tile_overlap, "overlap of the latent tiles")->default_str("32")->check(integer_range(0, 4095));
  CLI::Option* vae_tile = a.add_option("--vae-tile", vae_tile_, "the VAE over tiles with global GroupNorm statistics (rass-restore's) where a side of the "
                                        "working image passes ENC + 64 image px (encoder) or of its latent DEC + 22 latent px "
                                        "(decoder), for working sizes whose whole-image VAE would not fit; "
                                        "default: the whole image, as the reference (e.g. 1024,224)")
      ->type_name("ENC,DEC");
  with_choices(a.add_option("--vae-offload", j_.vae_offload, "with --vae-tile: tiles waiting for the others' GroupNorm statistics "
                                                             "keep their activations in host memory (on), on the device (off), or "
                                                             "in host memory only where a CUDA device lacks room (auto); the same "
                                                             "output bits either way"),
               {"auto", "on", "off"})
      ->default_str("auto")
      ->needs(vae_tile);
  with_choices(a.add_option("--color-fix", j_.color_fix, "wavelet (the reference's: low frequencies from the SwinIR image) or none"),
               {"wavelet", "none"})
      ->default_str("wavelet");
  a.add_option("--lre-start", j_.lre_start, "start from the SwinIR latent noised to this training step instead of pure noise "
                                           "(test.py's --lre --start_point; the chain still runs every step from 999); -1: off")
      ->default_str("-1")
      ->check(integer_range(-1, 99999));
  a.add_option("-s,--seed", seed_, "seed of the noise, 0..2^64-1; with the item key it fixes the draw")->type_name("UINT")->default_str("0");
  add_device_option(j_.device);
  with_choices(a.add_option("--dtype", j_.dtype, "the DiT's dtype: fp32, fp16 (CUDA) or bf16 (SwinIR and the VAE run fp32)"),
               {"fp32", "fp16", "bf16"})
      ->default_str("fp32");
  add_threads_option(j_.threads);
  a.add_flag("--resume", j_.resume, "batch: skip items whose outputs exist and record the settings of this run (others are made again)");
  add_jobs_option();
  add_shard_option();
}

model::DreamClearJob DreamClearCli::job() const {
  model::DreamClearJob j = j_;
  j.seed = parse_seed(seed_);
  // Flags that would change nothing are refused, as elsewhere.
  if (j.null_caption && app_->get_option("--cfg")->count() > 0)
    throw_usage("--cfg weighs the caption against the null caption; with --null-caption both sides of the guidance "
                "are the null caption, so it would change nothing");
  if (j.tile == 0 && app_->get_option("--tile-overlap")->count() > 0)
    throw_usage("--tile-overlap needs tiles: --tile 0 denoises the latent whole");
  if (app_->get_option("--vae-tile")->count() > 0) std::tie(j.vae_encoder_tile, j.vae_decoder_tile) = parse_vae_tile(vae_tile_);
  j.jobs = common.jobs > 0 ? common.jobs : 1;
  j.shard = common.shard.empty() ? shard_from_env() : parse_shard(common.shard);
  j.json = common.json;
  j.quiet = common.quiet;
  return j;
}

}  // namespace rass::cli
