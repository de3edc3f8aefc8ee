#include "rass/cli/restore_cli.hpp"

#include <cerrno>
#include <cstdlib>
#include <tuple>
#include <stdexcept>

#include "rass/cli/model_cli.hpp"
#include "rass/core/default_model.hpp"
#include "rass/core/error.hpp"

namespace rass::cli {

RestoreCli::RestoreCli()
    : ToolCli("restore", "One-step restoration of low-quality images with Stable Diffusion 2.x + LoRA (OSEDiff, SCR): "
                         "image in, restored image (and latent, attention maps) out.") {
  CLI::App& a = *app_;
  a.add_option("inputs", j_.inputs, "LQ images, directories (searched recursively) or - for stdin")->type_name("INPUT");
  a.add_option("-o,--output", j_.output, "restored image file or - for stdout (one input)")->type_name("FILE");
  a.add_option("-O,--output-dir", j_.output_dir, "output directory (batch): DIR/<key>.png")->type_name("DIR");
  a.add_option("--manifest", j_.manifest, "read LQ paths from a manifest (JSON lines with \"lq\", \"image\" or \"path\"; or one path per line)")
      ->type_name("FILE");
  a.add_option("-m,--model", j_.model, "diffusers SD 2.x folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/); default: the embedded mini model's restore/")
      ->type_name("DIR");  // checked in job(): the flag tests parse every tool without operands
  // One value per --lora (run_main: every option), so `--lora F image.png` leaves the image to the inputs.
  a.add_option("--lora", loras_, "UNet LoRA safetensors, FILE[:SCALE] (repeatable; PEFT or diffusers names)")
      ->type_name("FILE");
  a.add_flag("--no-merge", j_.no_merge, "keep LoRA adapters unmerged (slower; for checking a merge)");
  method_opt_ = with_choices(a.add_option("--method", method_, "osediff (t 999, ddpm) or scr (t 1, the model's formula, else ddpm); default: the model's rass.json, else osediff"),
                             {"osediff", "scr"});
  timestep_opt_ = a.add_option("--timestep", timestep_, "UNet timestep (overrides --method)")->type_name("T");
  formula_opt_ = with_choices(a.add_option("--formula", formula_, "x0 from eps: ddpm (z - sqrt(1-a_t) eps)/sqrt(a_t) or residual z - eps"),
                              {"ddpm", "residual"});
  a.add_option("--prompt", j_.prompt, "user prompt (appended to the tags by --prompt-style)");
  a.add_option("--prompt-file", j_.prompt_file, "read the user prompt from a file")->type_name("FILE");
  a.add_option("--tags", j_.tags, "tag lines (RAM/DAPE output, comma separated), one per input in input order, or KEY<TAB>tags lines; - for stdin")
      ->type_name("FILE");
  style_opt_ = with_choices(a.add_option("--prompt-style", prompt_style_, "osediff: \"TAGS, PROMPT,\"; rass: tags and prompt without commas"),
                            {"osediff", "rass"});
  with_choices(a.add_option("--color-fix", j_.color_fix, "colour correction against the input: adain, wavelet or none"),
               {"adain", "wavelet", "none"})
      ->default_str("adain");
  with_choices(a.add_option("--upscale", j_.upscale, "upscale factor 1, 2 or 4 (PIL bicubic first)")->default_str("1"), {"1", "2", "4"});
  with_choices(a.add_option("--size-policy", j_.size_policy, "osediff (small-image rule, LANCZOS down to a multiple of 8) or pad (replicate-pad to a multiple of 8, crop back)"),
               {"osediff", "pad"})
      ->default_str("osediff");
  process_size_opt_ = a.add_option("--process-size", j_.process_size, "osediff size policy: images with a side under SIZE/upscale are first scaled up (default: the model's rass.json, else 512)")
      ->default_str("512");
  CLI::Option* tile = a.add_flag("--tile", tile_, "tile large images (the default but with --attn-out), as OSEDiff: the UNet over latent tiles (Gaussian blending) when the latent has over --tile-size^2 pixels, the VAE over tiles with global GroupNorm statistics when a side passes its tile + 2 pad");
  a.add_flag("--no-tile", no_tile_, "one pass over the whole image, whatever its size (memory grows with the square of the pixels in the VAE's attention)")
      ->excludes(tile);
  a.add_option("--vae-tile", vae_tile_, "VAE encoder tile (image px) and decoder tile (latent px)")
      ->type_name("ENC,DEC")
      ->default_str("1024,224");
  with_choices(a.add_option("--vae-offload", j_.vae_offload, "with VAE tiles: tiles waiting for the others' GroupNorm statistics keep their activations in host memory (on, as OSEDiff's vaehook: the device then holds one tile's activations, not the whole image's, for two copies per waiting tile and GroupNorm), on the device (off), or in host memory only where a CUDA device lacks room for them (auto; off on the CPU); the same output bits either way (on with --device cpu: no saving, but --timings' tensor peak shows a device's)"),
               {"auto", "on", "off"})
      ->default_str("auto");
  a.add_option("--tile-size", j_.tile_size, "latent tile size (latent pixels)")->default_str("96");
  a.add_option("--tile-overlap", j_.tile_overlap, "latent tile overlap (latent pixels)")->default_str("32");
  a.add_flag("--vae-mode", j_.vae_mode, "use the latent mean instead of a sample (deterministic)");
  a.add_option("-s,--seed", seed_, "seed of the latent sample, 0..2^64-1; with the item key it fixes the draw")
      ->type_name("UINT")
      ->default_str("0");
  add_device_option(j_.device);
  with_choices(a.add_option("--dtype", j_.dtype, "fp32, fp16 (CUDA; the VAE stays fp32) or bf16"), {"fp32", "fp16", "bf16"})
      ->default_str("fp32");
  add_threads_option(j_.threads);
  add_speed_options(j_.channels_last, j_.cudnn_benchmark, j_.cuda_graphs);
  add_timings_option(j_.timings);
  a.add_option("--latent-out", j_.latent_out, "write the restored latent x0 [4,h,w] as .npy (one input: a file or -; batch: a directory)")
      ->type_name("PATH");
  a.add_option("--attn-out", j_.attn_out, "write the cross-attention maps per token [77,h,w] as .npy (one input: a file or -; batch: a directory)")
      ->type_name("PATH");
  a.add_option("--batch", j_.batch, "images per network call: up to N consecutive items of one processed size run together (a tiled image alone, its latent tiles N per UNet call); results as one at a time")
      ->default_str("1")
      ->check(positive_integer(4096));
  a.add_flag("--resume", j_.resume, "batch: skip items whose outputs exist and record the settings of this run (others are made again)");
  add_jobs_option();
  add_shard_option();
}

model::RestoreJob RestoreCli::job() const {
  model::RestoreJob j = j_;
  for (const std::string& s : loras_) j.loras.push_back(parse_lora_spec(s));
  if (method_opt_->count()) j.method = method_;
  if (timestep_opt_->count()) j.timestep = timestep_;
  j.process_size_given = process_size_opt_->count() > 0;
  if (formula_opt_->count()) j.formula = formula_;
  if (style_opt_->count()) j.prompt_style = prompt_style_;
  j.seed = parse_seed(seed_);
  if (tile_) j.tile = true;
  if (no_tile_) j.tile = false;
  if (app_->get_option("--vae-tile")->count() > 0) std::tie(j.vae_encoder_tile, j.vae_decoder_tile) = parse_vae_tile(vae_tile_);
  j.jobs = common.jobs > 0 ? common.jobs : 1;  // the model is large: one item in flight unless asked
  j.shard = common.shard.empty() ? shard_from_env() : parse_shard(common.shard);
  j.json = common.json;
  j.quiet = common.quiet;
  // No --model: the embedded mini model's restoration folder (SCR merged).
  if (j.model.empty()) j.model = default_model_part("restore", "restore", j.quiet);
  return j;
}

}  // namespace rass::cli
