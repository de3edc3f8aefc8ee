// rass-model as a library call (info, run, convert, init, sample). The CLI
// (cli/model_cli.cpp) parses flags into a ModelJob; this layer knows nothing
// of the command line.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rass/model/model_init.hpp"

namespace rass::model {

// A LoRA file to apply and its strength (--lora FILE[:SCALE]).
struct LoraSpec {
  std::string path;
  double scale = 1.0;
};

struct ModelJob {
  enum class Command { info, run, convert, init, sample };
  Command command = Command::info;
  std::string path;  // diffusers folder or .safetensors file
  // run
  std::string component;  // unet, vae-encode, vae-decode, text-encoder, tokenize
  std::string sample, context, input_ids, output;
  std::string prompt;
  bool has_prompt = false;  // --prompt was given (an empty prompt is the unconditional one)
  double timestep = 999;
  std::vector<LoraSpec> loras;
  std::string device = "cpu", dtype = "fp32";  // dtype: fp32, fp16, bf16
  int threads = 0;                              // 0 = all cores
  uint64_t seed = 0;
  bool sample_latent = false;  // vae-encode: latent_dist.sample() instead of the mean
  std::string variant;         // weight file variant ("fp16": diffusion_pytorch_model.fp16.safetensors)
  // convert
  std::string to_dtype;        // "", fp32, fp16, bf16
  bool allow_overflow = false; // --to-dtype fp16: write values beyond the fp16 range as inf
  bool drop_ema = false, merge = false, split = false;
  // init
  InitJob init;
  // sample (also: path, prompt, output, seed, device, dtype, threads)
  std::string negative_prompt, out_dir;
  int64_t steps = 20;
  double guidance = 7.5, eta = 0.0;
  int n = 1;
  int64_t width = 0, height = 0;  // 0 = the UNet config's sample_size x the VAE factor
  int grid = 0;                   // columns of a grid image; 0 = none
  bool json = false, quiet = false;
};

// Returns the exit code; errors throw rass::Error with the code of DESIGN.md.
int run_model_tool(const ModelJob& job);

// Refuses (Error(usage), exit 2) an output of run, convert or sample that is
// an input (model folder or file, .npy inputs, LoRA files) or lies inside an
// input folder, by device and inode: before any work.
void guard_model_outputs(const ModelJob& job);

}  // namespace rass::model
