// One-step restoration (OSEDiff; SCR, seed 000 section 3.2) as a library:
//   LQ (8-bit) -> sizes (restore_size.hpp) -> [-1, 1] -> VAE encode ->
//   latent_dist.sample() with a generator keyed by (seed, item key), or the
//   mean (vae_mode) -> x scaling_factor = z -> eps = UNet(z, t, prompt
//   embedding), optionally tiled (latent_tiles.hpp) -> x0 by
//     ddpm:     (z - sqrt(1 - a_t) eps) / sqrt(a_t)  (DDPMScheduler.step with
//               one inference step; alphas in float32 from the scheduler config;
//               clamped to +-clip_sample_range when the config's clip_sample is
//               true, as diffusers does)
//     residual: z - eps  (seed 000's equation)
//   -> VAE decode(x0 / scaling_factor).clamp(-1, 1) -> x*0.5+0.5 -> 8-bit as
//   torchvision's ToPILImage does (x*255 truncated: .byte()) -> colour fix on
//   that 8-bit image / 255 against the prepared input (color_fix.hpp) ->
//   8-bit again by truncation.
//
// A loaded RestoreModel is read-only after construction: restore() keeps all
// state per call, so one model serves several threads at once.
//
// The model folder's own form: an optional `rass.json` at the folder root,
// written by the tools that train or assemble models (rass-merge-lora
// init-seg, training), e.g.
//   {"method": "scr", "timestep": 1, "formula": "residual", "prompt_style": "rass"}
// Fields (all optional):
//   method        "osediff" | "scr"        the preset it was trained for
//   timestep      integer in [0, num_train_timesteps)   the UNet timestep
//                 (out of that range: bad input naming rass.json)
//   formula       "ddpm" | "residual"      how x0 follows from eps
//   prompt_style  "osediff" | "rass"       how tags and prompt are joined
// Its values are the defaults of rass-restore; explicit flags win (with a
// note on stderr). Unknown fields are ignored; a field of the wrong type or
// value is bad input naming the file.
#pragma once
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "rass/core/image.hpp"
#include "rass/model/color_fix.hpp"
#include "rass/model/model_tool.hpp"
#include "rass/model/cuda_graphs.hpp"
#include "rass/model/prompt.hpp"
#include "rass/model/prompt_cache.hpp"
#include "rass/model/restore_size.hpp"
#include "rass/model/stage_times.hpp"
#include "rass/model/tiled_vae.hpp"
#include "rass/nn/clip_text.hpp"
#include "rass/nn/ddpm.hpp"
#include "rass/nn/unet.hpp"
#include "rass/nn/vae.hpp"
#include "rass/text/clip_tokenizer.hpp"

namespace rass::model {

enum class Formula { ddpm, residual };

// rass.json (see above); unset fields are nullopt.
struct RecordedForm {
  std::string path;  // "" when the folder has no rass.json
  std::optional<std::string> method, formula, prompt_style;
  std::optional<int> timestep;
  std::optional<int> process_size;  // the training crop (rass-train scr): the small-image rule's size
};
RecordedForm read_recorded_form(const std::string& model_dir);

struct RestoreModelOptions {
  std::string dir;                // diffusers SD 2.x folder
  std::vector<LoraSpec> loras;    // applied to the UNet in order
  bool merge = true;              // merge the adapters into the weights at load
  std::string device = "cpu";     // cpu, cuda, cuda:N
  std::string dtype = "fp32";     // fp32, fp16 (CUDA only), bf16
  bool channels_last = false;     // UNet and VAE convolution weights in NHWC (device.hpp)
  bool cudnn_benchmark = false;   // cuDNN autotuning (process-wide; device.hpp)
  bool cuda_graphs = false;       // replay recorded CUDA graphs for fixed shapes (cuda_graphs.hpp)
  bool timings = false;           // time each stage (stage_times.hpp)
  bool quiet = false;
  std::string prog = "rass-restore";  // prefix of stderr notes
};

class RestoreModel {
 public:
  // Loads every component (strict, name-checked), the LoRA files, and
  // checks the scheduler config. Errors: Error(bad_input) naming the file
  // (missing or malformed files, LoRA tensors that fit no layer, a
  // scheduler this pipeline cannot follow), Error(usage) for --device/--dtype.
  explicit RestoreModel(const RestoreModelOptions& opt);

  nn::UNet2DCondition unet{nullptr};
  nn::AutoencoderKL vae{nullptr};
  nn::ClipTextModel text_encoder{nullptr};
  std::shared_ptr<text::ClipTokenizer> tokenizer;
  nn::DdpmSchedule schedule;
  bool clip_sample = false;
  double clip_sample_range = 1.0;
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat;      // UNet
  torch::ScalarType vae_dtype = torch::kFloat;  // fp32 when dtype is fp16 (SD's VAE overflows in fp16)
  int64_t vae_factor = 8;                       // image pixels per latent pixel
  int64_t max_tokens = 77;
  RecordedForm recorded;
  std::string dir;
  std::vector<LoraSpec> loras;  // as given (for messages)
  // --cuda-graphs: the chunks' device work, recorded per shape (shared by copies of the model).
  std::shared_ptr<GraphCache> graphs = std::make_shared<GraphCache>(false);
  // --timings: seconds per stage (shared by copies of the model).
  std::shared_ptr<StageTimes> times = std::make_shared<StageTimes>();
  // Prompt embeddings computed so far (shared by copies of the model).
  std::shared_ptr<PromptCache> prompt_cache = std::make_shared<PromptCache>();
};

struct RestoreParams {
  int timestep = 999;
  Formula formula = Formula::ddpm;
  ColorFix color = ColorFix::adain;
  int upscale = 1;
  SizePolicy size_policy = SizePolicy::osediff;
  int process_size = 512;
  bool vae_mode = false;     // the latent mean instead of a sample
  uint64_t seed = 0;
  std::string key;           // item key: with seed, keys the sample's generator
  bool tile = false;         // latent tiling (UNet)
  int64_t tile_size = 96, tile_overlap = 32;  // latent pixels
  int64_t tile_batch = 1;    // latent tiles per UNet call (rass-restore: --batch)
  bool vae_tile = false;     // tiled VAE encode/decode with global GroupNorm statistics
  VaeTiling vae_tiling;
  bool attention = false;    // also return the aggregated cross-attention maps
  // Test hook: the N(0, 1) draw of latent_dist.sample(), [4, h, w]; when
  // defined it replaces the keyed generator's draw.
  torch::Tensor noise;
};

struct RestoreResult {
  Image image;               // 8-bit RGB, out_width x out_height
  torch::Tensor latent;      // x0 [4, h, w] float32 (CPU)
  torch::Tensor decoded;     // the VAE output * 0.5 + 0.5, cropped, before 8-bit [3, H, W] float32 (CPU)
  torch::Tensor attention;   // [tokens, h, w] float32 (CPU), when asked
  std::vector<int> ids;      // the prompt's token ids (max_tokens, padded)
  size_t prompt_tokens = 0;  // BPE tokens of the prompt, before truncation
  bool truncated = false;    // the prompt was longer than max_tokens - 2
  int in_width = 0, in_height = 0, proc_width = 0, proc_height = 0;
  // restore_many(..., defer_image): `image` is still to be made from
  // `decoded` by finish_image (8-bit, colour fix against `color_reference`).
  bool image_pending = false;
  ColorFix color = ColorFix::none;
  Image color_reference;
};

// Makes r.image of a result restore_many left pending (nothing otherwise):
// the 8-bit image and the colour fix, on the host. Thread-safe for distinct
// results: the network tools run it on their writing threads, beside the
// device's next batch.
void finish_image(RestoreResult& r);

// Which tilings would change the pixels of an image processed at w x h:
// OSEDiff's thresholds (latent h*w > tile^2; a VAE half when its longer side
// passes tile + 2 pad). Below them the tiled path is one whole pass. All true
// for an unknown size (w or h <= 0).
struct TilesAt {
  bool latent = true, vae_encoder = true, vae_decoder = true;
  bool vae() const { return vae_encoder || vae_decoder; }
};
TilesAt tiles_at(const RestoreModel& m, const RestoreParams& p, int w, int h);

// Restores one 8-bit image (gray, RGB, with or without alpha). `name` is used
// in messages. Throws Error(bad_input) for images that are too small or not
// 8-bit, Error(runtime) when the networks give a non-finite result.
RestoreResult restore(const RestoreModel& model, const Image& lq, const std::string& prompt, const RestoreParams& p,
                      const std::string& name);

struct PreparedRestore;

// One image of a batched call.
struct RestoreInput {
  const Image* lq = nullptr;
  std::string prompt;
  RestoreParams params;  // its own key and seed (its own noise draw)
  std::string name;      // names it in errors
  // Made beforehand by prepare_restore (rass-restore: on its reading
  // threads, beside the device's work); restore_many takes it over. Null:
  // restore_many makes it.
  std::shared_ptr<PreparedRestore> prepared = nullptr;
};

// An input sized (upscale, size policy), tokenized and made the network's
// input: the host work before the batched stages.
struct PreparedRestore {
  PreparedInput in;
  RestoreResult r;  // sizes and prompt fields filled; the rest by the chunk
  at::Tensor x;     // the VAE encoder's input [1, 3, H, W] in [-1, 1], float32 (CPU)
  // Asked for (RestoreParams) and applying at this size: an image under the
  // thresholds runs as untiled (the same pixels), so it batches and may be
  // recorded as a CUDA graph.
  bool tile = false, vae_tile = false;
};
// Throws as restore_many's per-image errors (bad sizes, a bad --timestep).
PreparedRestore prepare_restore(const RestoreModel& model, const RestoreInput& input);

// Restores several images, running the text encoder, VAE and UNet on up to
// `batch` images at a time: images whose processed sizes and parameters agree
// go together (in input order); tiled images run one at a time. Each result is
// what restore() gives for that image alone (the same noise draw; batched
// kernels may round differently). An image that fails gets its exception in
// errors[i] and an empty result; the others go on (a batch that fails runs
// again image by image). restore() is this with one image. `defer_image`:
// each result's 8-bit image and colour fix are left to finish_image.
std::vector<RestoreResult> restore_many(const RestoreModel& model, const std::vector<RestoreInput>& inputs, int batch,
                                        std::vector<std::exception_ptr>& errors, bool defer_image = false);

// Cross-attention maps of one UNet call aggregated as seed 000's Figure 8:
// each captured attn2 probability [heads, h_l*w_l, tokens] is averaged over
// heads, resized (bilinear) to the largest map's h x w, and the layers are
// averaged: [tokens, h, w]. `latent_h`, `latent_w` give the level sizes
// (each level halves, rounding up).
torch::Tensor aggregate_cross_attention(const std::vector<nn::CapturedAttention>& maps, int64_t latent_h,
                                        int64_t latent_w);

// Float [1, 3, H, W] in [0, 1] of an 8-bit RGB image (ToTensor) and back by
// truncation (ToPILImage's mul(255).byte()).
torch::Tensor image_to_tensor(const Image& rgb);
Image tensor_to_image(const torch::Tensor& x01);

}  // namespace rass::model
