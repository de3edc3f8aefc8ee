// Text-to-image sampling with DDIM (rass-model sample), as diffusers 0.25.1's
// StableDiffusionPipeline with a DDIMScheduler runs it:
//   prompt and negative prompt ("" when none) -> 77 token ids -> text encoder
//   (last hidden state); latents N(0, 1) [1, 4, H/8, W/8] (init_noise_sigma 1)
//   from a generator keyed by (seed, image index); for each timestep of
//   set_timesteps: with guidance > 1 the UNet on the batch [latents, latents]
//   with context [negative, prompt] and eps = u + g (c - u) (classifier-free
//   guidance), else the UNet on the prompt alone; DDIMScheduler.step (eta
//   noise from the same generator); then VAE decode(latents / scaling_factor),
//   (x / 2 + 0.5).clamp(0, 1), 8-bit as numpy_to_pil: (x * 255).round().
// Each image is sampled on its own (batch 1, or 2 with guidance), so image i
// is the same whatever -n is.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "rass/core/image.hpp"
#include "rass/nn/clip_text.hpp"
#include "rass/nn/ddim.hpp"
#include "rass/nn/unet.hpp"
#include "rass/nn/vae.hpp"
#include "rass/text/clip_tokenizer.hpp"

namespace rass::model {

struct SampleModel {
  nn::UNet2DCondition unet{nullptr};
  nn::AutoencoderKL vae{nullptr};
  nn::ClipTextModel text_encoder{nullptr};
  std::shared_ptr<text::ClipTokenizer> tokenizer;
  nn::DdimConfig scheduler;
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat;      // UNet
  torch::ScalarType vae_dtype = torch::kFloat;  // fp32 when dtype is fp16 (SD's VAE overflows in fp16)
  int64_t vae_factor = 8;
  int64_t default_size = 0;  // unet config sample_size * vae_factor (0 when the config has none)
  int64_t max_tokens = 77;
  std::string dir;
};

// Loads a diffusers folder (unet/, vae/, text_encoder/, tokenizer/,
// scheduler/). Error(bad_input) naming the file for what is missing or does
// not fit; Error(usage) for --device/--dtype.
SampleModel load_sample_model(const std::string& dir, const std::string& device, const std::string& dtype);

struct SampleParams {
  std::string prompt, negative_prompt;
  int64_t steps = 20;
  double guidance = 7.5;
  double eta = 0.0;
  int64_t width = 512, height = 512;
  uint64_t seed = 0;
  // Test hooks: when defined, they replace the keyed generator's draws: the
  // initial latents [1, 4, h, w] and each step's eta noise (one per step).
  torch::Tensor initial_latents;
  std::vector<torch::Tensor> step_noise;
  // Called after each step with the step index and the latents (float32).
  std::function<void(int64_t, const torch::Tensor&)> on_step;
};

struct SampleResult {
  Image image;             // 8-bit RGB width x height
  torch::Tensor latents;   // final latents [1, 4, h, w] float32 (CPU)
  torch::Tensor decoded;   // (x / 2 + 0.5).clamp(0, 1) [3, H, W] float32 (CPU)
};

// The prompt embeddings [1, L, D] of a prompt (float32, on the model's device).
torch::Tensor encode_prompt(const SampleModel& m, const std::string& prompt);

// Draws image `index` (its generator is keyed by seed and index). Usage
// errors for sizes that are not multiples of the VAE factor, steps outside
// the schedule; a runtime error for a non-finite result.
SampleResult sample_image(const SampleModel& m, const SampleParams& p, int64_t index);

// n images tiled in rows of `cols` (the last row may be short; empty cells black).
Image tile_grid(const std::vector<Image>& images, int cols);

}  // namespace rass::model
