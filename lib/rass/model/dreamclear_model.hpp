// DreamClear (seed 003): real-world restoration by a DiT with ControlFormer
// and the Mixture of Adaptive Modulators. The pipeline of the released
// test.py (log_validation), in order:
//   1. the LQ image upscaled (PIL bicubic) by --upscale, and to a shorter
//      side of at least --min-size, both sides rounded to multiples of 64
//      (np.round: halves to even); the output size is the upscale alone;
//   2. SwinIR pre-restoration, clamped to [0, 1];
//   3. both images encoded by the VAE (the mode) times scale_factor;
//   4. IDDPM's ancestral sampling (--steps of 1000, learned variance, no
//      clipping) from N(0, 1), classifier-free guidance against the model's
//      null caption on the first three latent channels (the reference's
//      forward_with_cfg, written for 3 eps channels, is kept);
//      latents other than image_size/8 square are denoised in tiles
//      (forward_with_cfg_tile: Gaussian weights, x centred at (W-1)/2, y at
//      H/2, the last tile flush with the edge);
//   5. VAE decode, (x + 1) / 2, wavelet colour fix against the SwinIR image,
//      clamp, bicubic resize (torch) to the output size, x * 255 truncated.
// The caption is the T5-XXL encoding of an image description (the paper's
// LLaVA caption); it comes from a file (DreamClear's
// tools/extract_t5_features.py .npz), or the null caption is used.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include "rass/core/image.hpp"
#include "rass/model/tiled_vae.hpp"
#include "rass/nn/iddpm.hpp"
#include "rass/nn/pixart.hpp"
#include "rass/nn/swinir.hpp"
#include "rass/nn/vae.hpp"

namespace rass::model {

struct DreamClearFolderConfig {
  std::string path;            // dreamclear.json
  int64_t image_size = 1024;   // the training size: latents of image_size/8 square run untiled
  double scale_factor = 0.18215;
  int64_t train_steps = 1000;
  std::string beta_schedule = "linear";
  nn::PixArtConfig dit;
  nn::SwinIRConfig swinir;
};
DreamClearFolderConfig read_dreamclear_config(const std::string& dir);

// A caption's T5 features [1, L, C] (float) and its token mask [1, L].
struct DreamClearCaption {
  torch::Tensor features, mask;
};
// DreamClear's extract_t5_features.py file: caption_feature [1, L, C] (or
// [L, C]) and attention_mask [1, L] (or [L]). Throws Error(bad_input) naming
// the file for a missing array, another shape, or no kept token.
// The mask must hold 0 and 1 only. The file is read with a size limit and
// refused at once when it does not start as a ZIP archive (/dev/zero).
DreamClearCaption read_dreamclear_caption(const std::string& npz_path, int64_t tokens, int64_t channels);
std::vector<uint8_t> read_dreamclear_caption_bytes(const std::string& npz_path);
DreamClearCaption parse_dreamclear_caption(const std::vector<uint8_t>& bytes, const std::string& npz_path,
                                           int64_t tokens, int64_t channels);

struct DreamClearRun {
  int steps = 50;
  double cfg_scale = 4.5;
  int upscale = 4;
  int min_size = 1024;
  int64_t tile = 128, tile_overlap = 32;  // latent pixels; tile 0: the whole latent in one call
  bool color_fix = true;                  // wavelet
  // test.py's --lre --start_point T: start from the pre-restored latent
  // noised to training step T (q_sample) instead of N(0, 1); -1: off. The
  // chain still runs all its steps from step 999, as the reference's does.
  int lre_start = -1;
  // The VAE over tiles (tiled_vae.hpp) where a side passes its tile + 2 pad;
  // off: the whole image, as the reference (which has no tiled VAE).
  bool vae_tile = false;
  VaeTiling vae_tiling;
};

// Sizes of step 1 for a w x h input: the working size (multiples of 64) and the output size.
struct DreamClearSizes {
  int work_w = 0, work_h = 0, out_w = 0, out_h = 0;
};
DreamClearSizes dreamclear_sizes(int w, int h, int upscale, int min_size);

// Tile origins along one latent axis of `size` for tiles of `tile` overlapping
// by `overlap` (the reference's loop: k (tile - overlap), the last at size - tile).
std::vector<int64_t> dreamclear_tile_starts(int64_t size, int64_t tile, int64_t overlap);
// _gaussian_weights of a tile (float64 [h, w]).
torch::Tensor dreamclear_tile_weights(int64_t h, int64_t w);

// What the tests compare, step by step.
struct DreamClearTrace {
  torch::Tensor img_lq, img_pre, latent_lq, latent_pre, samples, decoded, hq;
};
// Given draws (tests): the start latent and each step's noise.
struct DreamClearInjected {
  torch::Tensor z0;
  std::vector<torch::Tensor> noise;
};

struct DreamClearModelOptions {
  // dtype: the DiT's compute (CUDA: autocast over float32 weights; CPU bf16:
  // cast weights); SwinIR and the VAE run float32.
  std::string dir, device = "cpu", dtype = "fp32";
};

class DreamClearModel {
 public:
  explicit DreamClearModel(const DreamClearModelOptions& opt);
  // The null caption (the model's y_embedding, all tokens kept).
  DreamClearCaption null_caption() const;
  Image restore(const Image& rgb, const DreamClearCaption& caption, const DreamClearRun& run, at::Generator& gen,
                DreamClearTrace* trace = nullptr, const DreamClearInjected* injected = nullptr) const;
  // The guided model output [1, 8, h, w] for latent z [1, 4, h, w] at original step t (tiled when needed).
  torch::Tensor guided_output(const torch::Tensor& z, int64_t t, const torch::Tensor& c_lq, const torch::Tensor& c_pre,
                              const DreamClearCaption& caption, const DreamClearRun& run) const;
  // The chain's start [1, 4, h, w]: N(0, 1), or with run.lre_start the
  // pre-restored latent noised to that step, sqrt(a_T) z_pre + sqrt(1 - a_T) n.
  torch::Tensor start_latent(const torch::Tensor& latent_pre, const DreamClearRun& run, at::Generator& gen) const;
  // The sampling loop from the start latent; noise from `gen` unless injected.
  torch::Tensor sample(const torch::Tensor& c_lq, const torch::Tensor& c_pre, const DreamClearCaption& caption,
                       const DreamClearRun& run, at::Generator& gen, const DreamClearInjected* injected = nullptr) const;

  DreamClearFolderConfig config;
  nn::DreamClearDiT dit{nullptr};
  nn::SwinIR swinir{nullptr};
  nn::AutoencoderKL vae{nullptr};
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat;
  bool dit_autocast = false;  // CUDA fp16/bf16: float32 weights under autocast (the reference's)
};

}  // namespace rass::model
