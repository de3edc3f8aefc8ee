#include "rass/cli/model_cli.hpp"

#include <cmath>
#include <cstdlib>
#include <sys/stat.h>

#include "rass/core/default_model.hpp"
#include "rass/core/decimal.hpp"
#include "rass/core/error.hpp"

namespace rass::cli {

namespace {
constexpr double kMaxLoraScale = 1000;
}  // namespace

model::LoraSpec parse_lora_spec(const std::string& spec) {
  if (spec.empty()) throw_usage("--lora: empty value (expected FILE[:SCALE])");
  model::LoraSpec out{spec, 1.0};
  const size_t colon = spec.rfind(':');
  if (colon == std::string::npos) return out;
  const std::string file = spec.substr(0, colon), num = spec.substr(colon + 1);
  struct stat st;
  const bool names_file = ::stat(file.c_str(), &st) == 0 ||
                          (file.size() >= 12 && file.compare(file.size() - 12, 12, ".safetensors") == 0);
  if (!names_file) return out;  // a ':' inside the file name
  double v = 0;
  if (!parse_decimal(num, &v))
    throw_usage("--lora " + spec + ": the scale '" + num + "' is not a number (expected FILE[:SCALE], e.g. " + file +
                ":0.8)");
  // Scales are near 1 in practice (0.5-2); far past that the merged weights
  // overflow, found only after the whole model was computed (1e39 passed here).
  if (std::fabs(v) > kMaxLoraScale)
    throw_usage("--lora " + spec + ": the scale " + num + " is outside [-" + std::to_string(int(kMaxLoraScale)) + ", " +
                std::to_string(int(kMaxLoraScale)) + "] (LoRA scales are near 1)");
  out.path = file;
  out.scale = v;
  return out;
}

ModelCli::ModelCli()
    : ToolCli("model", "Look inside Stable Diffusion checkpoints (diffusers folders, safetensors), run one component on "
                       ".npy inputs, convert dtypes and layouts, create random-weight folders.") {
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
  prompt_ = run_->add_option("--prompt", a_.prompt, "prompt text for tokenize / text-encoder (\"\" = the unconditional prompt)");
  run_->add_option("-o,--output", a_.output, "output .npy (- for stdout)")->type_name("FILE")->required();
  run_->add_option("--lora", loras_, "LoRA safetensors to apply, FILE[:SCALE] (repeatable)")->type_name("FILE");
  run_->add_option("--variant", a_.variant, "weight file variant, e.g. fp16 for diffusion_pytorch_model.fp16.safetensors");
  add_device_option(a_.device, "", run_);
  with_choices(run_->add_option("--dtype", a_.dtype, "fp32, fp16 or bf16"), {"fp32", "fp16", "bf16"})->default_str("fp32");
  add_threads_option(a_.threads, "", run_);
  run_->add_option("--seed", run_seed_, "seed of vae-encode --sample-latent")->default_str("0");
  run_->add_flag("--sample-latent", a_.sample_latent, "vae-encode: draw latent_dist.sample() (OSEDiff/RASS) instead of the mean");

  convert_ = app.add_subcommand("convert", "rewrite dtypes, drop EMA weights, merge a folder into one file or split it back");
  convert_->add_option("path", a_.path, "input .safetensors file or diffusers folder")->required();
  convert_->add_option("-o,--output", a_.output, "output file or folder")->type_name("PATH")->required();
  with_choices(convert_->add_option("--to-dtype", a_.to_dtype, "convert floating tensors to fp32, fp16 or bf16"),
               {"fp32", "fp16", "bf16"});
  convert_->add_flag("--allow-overflow", a_.allow_overflow,
                     "--to-dtype fp16: write values beyond the fp16 range (|x| > 65504) as inf instead of refusing");
  convert_->add_flag("--drop-ema", a_.drop_ema, "drop EMA copies of the weights (keys with an 'ema' component)");
  convert_->add_flag("--merge", a_.merge, "merge a diffusers folder into one file with unet./vae./text_encoder. prefixes");
  convert_->add_flag("--split", a_.split, "split a merged file back into a diffusers folder (weights only)");
  convert_->add_option("--variant", a_.variant, "--merge: weight file variant to take, e.g. fp16");

  init_ = app.add_subcommand("init", "write a diffusers-layout Stable Diffusion folder with random weights");
  init_->add_option("folder", a_.init.output, "folder to create (absent or empty)")->required();
  with_choices(init_->add_option("--preset", a_.init.preset, "tiny (milliseconds per run), tiny4 (tiny with a 4-level UNet, where RAS training can start), mini (the mini world's backbone: make mini-model; a tokenizer with every rass-scenes word as one token) or sd21-base (SD 2.1-base sizes); tiny-seg, sd21-base-seg: a RAS segmentation folder (rass-segment)"),
               {"tiny", "tiny4", "mini", "sd21-base", "tiny-seg", "sd21-base-seg"})
      ->default_str("tiny");
  init_->add_option("--seed", init_seed_, "random seed of the weights")->default_str("0");
  with_choices(init_->add_option("--dtype", a_.init.dtype, "dtype of the written weights: fp32, fp16 or bf16"),
               {"fp32", "fp16", "bf16"})
      ->default_str("fp32");
  init_->add_option("--unet-config", a_.init.unet_config, "UNet2DConditionModel config.json to use instead of the preset's")
      ->type_name("FILE");
  init_->add_option("--vae-config", a_.init.vae_config, "AutoencoderKL config.json to use instead of the preset's")
      ->type_name("FILE");
  init_->add_option("--text-encoder-config", a_.init.text_encoder_config,
                    "CLIPTextModel config.json to use instead of the preset's")
      ->type_name("FILE");
  init_->add_option("--tokenizer", a_.init.tokenizer,
                    "CLIP tokenizer folder (vocab.json, merges.txt) to copy instead of the generated byte-level one")
      ->type_name("DIR");
  sample_ = app.add_subcommand("sample", "draw images from a prompt with a DDIM sampler (diffusers' DDIMScheduler, classifier-free guidance)");
  sample_->add_option("path", a_.path, "diffusers folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/); default: the embedded mini model's base/");
  sample_->add_option("--prompt", a_.prompt, "prompt text")->required();
  sample_->add_option("--negative-prompt", a_.negative_prompt, "prompt of the unconditional branch of guidance (default \"\")");
  sample_->add_option("--steps", a_.steps, "DDIM steps (timesteps as the scheduler config's timestep_spacing and steps_offset)")
      ->default_str("20")->check(integer_range(1, 1000000));
  sample_->add_option("--guidance", a_.guidance, "classifier-free guidance scale (<= 1: the prompt alone, no guidance)")
      ->default_str("7.5");
  sample_->add_option("--eta", a_.eta, "DDIM eta, 0..1 (0 = deterministic DDIM, 1 = DDPM-like noise; above 1 the step's variance passes 1 - alpha_prev and the noise becomes NaN)")->default_str("0")
      ->check(CLI::Range(0.0, 1.0));
  sample_->add_option("-n,--num-images", a_.n, "number of images")->default_str("1")->check(integer_range(1, 100000));
  auto* size = sample_->add_option("--size", size_, "width and height in pixels (a multiple of the VAE factor, 8; default: the UNet's sample_size x 8, 512 for SD 2.1-base)")
      ->check(integer_range(1, 1 << 20));
  sample_->add_option("--width", a_.width, "width in pixels (instead of --size)")->excludes(size)
      ->check(integer_range(1, 1 << 20));
  sample_->add_option("--height", a_.height, "height in pixels (instead of --size)")->excludes(size)
      ->check(integer_range(1, 1 << 20));
  sample_->add_option("--seed", sample_seed_, "seed: image i's noise comes from a generator keyed by (seed, i)")->default_str("0");
  sample_->add_option("-o,--output", a_.output, "output PNG (one image, or the grid with --grid; - for stdout)")->type_name("FILE");
  sample_->add_option("-O,--output-dir", a_.out_dir, "folder for sample-0000.png, sample-0001.png, ... (and grid.png with --grid)")
      ->type_name("DIR");
  sample_->add_option("--grid", a_.grid, "tile the images in rows of COLS into one PNG")->type_name("COLS")
      ->check(integer_range(1, 100000));
  add_device_option(a_.device, "", sample_);
  with_choices(sample_->add_option("--dtype", a_.dtype, "fp32, fp16 (CUDA) or bf16"), {"fp32", "fp16", "bf16"})->default_str("fp32");
  add_threads_option(a_.threads, "", sample_);
  // --json / --quiet after the subcommand (rass-model info FOLDER --json).
  for (CLI::App* sub : {info_, run_, convert_, init_, sample_}) sub->fallthrough();
}

model::ModelJob ModelCli::job() const {
  model::ModelJob a = a_;
  if (info_->parsed()) a.command = model::ModelJob::Command::info;
  else if (run_->parsed()) a.command = model::ModelJob::Command::run;
  else if (init_->parsed()) a.command = model::ModelJob::Command::init;
  else if (sample_->parsed()) a.command = model::ModelJob::Command::sample;
  else a.command = model::ModelJob::Command::convert;
  a.has_prompt = prompt_->count() > 0;
  a.seed = parse_seed(sample_->parsed() ? sample_seed_ : run_seed_);
  a.init.seed = parse_seed(init_seed_);
  if (size_ > 0) a.width = a.height = size_;
  if (sample_->parsed() && (a.width > 0) != (a.height > 0)) throw_usage("--width and --height go together (or use --size)");
  for (const std::string& s : loras_) a.loras.push_back(parse_lora_spec(s));
  a.json = common.json;
  a.quiet = common.quiet;
  if (a.command == model::ModelJob::Command::sample && a.path.empty()) a.path = default_model_part("base", "model", a.quiet);
  // run's only draw is vae-encode's latent sample: a seed or sample flag
  // elsewhere would do nothing, so it is refused rather than ignored.
  if (run_->parsed() && a.sample_latent && a.component != "vae-encode")
    throw_usage("run --sample-latent goes with --component vae-encode, not " + a.component);
  if (run_->parsed() && run_->get_option("--timestep")->count() > 0 && a.component != "unet")
    throw_usage("run --timestep is the UNet's input, not read by --component " + a.component);
  if (run_->parsed() && run_->get_option("--seed")->count() > 0 && !a.sample_latent)
    throw_usage("run --seed is the seed of --component vae-encode --sample-latent, run's only draw; without it nothing is drawn");
  // Only info and sample write a JSON report; elsewhere --json did nothing.
  if (a.json && (run_->parsed() || convert_->parsed() || init_->parsed()))
    throw_usage(std::string("--json: ") + (run_->parsed() ? "run" : convert_->parsed() ? "convert" : "init") +
                " writes no JSON report (info and sample do)");
  if (a.merge && a.split) throw_usage("--merge and --split exclude each other");
  if (a.allow_overflow && a.to_dtype != "fp16") throw_usage("--allow-overflow goes with --to-dtype fp16");
  if (!a.variant.empty() && a.command == model::ModelJob::Command::convert && !a.merge)
    throw_usage("convert --variant goes with --merge (a single file is converted as given)");
  if (!a.variant.empty() && (a.variant.find('/') != std::string::npos || a.variant.find('.') != std::string::npos))
    throw_usage("--variant " + a.variant + ": a variant is a name such as fp16 (no '/' or '.')");
  return a;
}

}  // namespace rass::cli
