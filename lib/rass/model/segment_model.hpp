// The RAS segmentation model (seed 000 section 3.3; Ka1Guan/RASS as released,
// REFERENCE.md section 4) loaded from a segmentation model folder:
//
//   segment.json            what this folder is (see SegmentFolderConfig)
//   unet/                   the UNet with the SCR LoRA merged (diffusers layout)
//   unet_plain/             optional: the SD UNet without SCR (--backbone plain)
//   seg_lora.safetensors    the Seg LoRA (PEFT names, adapters default_*_s2,
//                           lora_alpha in the metadata), merged at load
//   seg_head.safetensors    feature_projections.* and sem_seg_head.* under the
//                           released checkpoint's own names
//   vae/ text_encoder/ tokenizer/   SD 2.1-base's (scheduler/ is not used:
//                           RAS runs the UNet once at a fixed timestep and
//                           takes features, no scheduler step)
//   rass.json               optional, as restore folders: timestep, prompt_style
//
// Why the Seg LoRA stays a LoRA file: the same adapter is put on either
// backbone (unet/ or unet_plain/), training continues it, and unet/ stays a
// plain diffusers UNet; merging it at load costs a fraction of a second and
// the forward is then the same as a merged folder's.
//
// A loaded SegmentModel is read-only: forward calls keep their state per call,
// so one model serves several threads.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "rass/model/cuda_graphs.hpp"
#include "rass/model/prompt_cache.hpp"
#include "rass/model/stage_times.hpp"
#include "rass/model/prompt.hpp"
#include "rass/nn/clip_text.hpp"
#include "rass/nn/feature_projection.hpp"
#include "rass/nn/mask_former_head.hpp"
#include "rass/nn/unet.hpp"
#include "rass/nn/vae.hpp"
#include "rass/text/clip_tokenizer.hpp"

namespace rass::model {

// segment.json. Example (the released model):
//   {"architecture": "rass",
//    "feature_projection": {"feature_dims": [256,512,1280,1280,640,320],
//                           "feature_strides": [4,8,32,16,8,8], "projection_dim": 512},
//    "head": {... MaskFormerHeadConfig fields ...},
//    "classes": "ade20k"  (or a list of names),
//    "timestep": 1, "prompt_style": "rass",
//    "input": {"min_size_test": 512, "max_size_test": 2048, "size_divisibility": 8}}
struct SegmentFolderConfig {
  std::string path;  // segment.json
  nn::FeatureProjectionConfig projection;
  nn::MaskFormerHeadConfig head;
  std::vector<std::string> classes;  // empty: none recorded
  int timestep = 1;
  std::string prompt_style = "rass";
  int min_size_test = 512, max_size_test = 2048, size_divisibility = 8;
  // The largest stride of the projection's output levels (32 as released).
  int coarsest_stride() const;
};
// Throws Error(bad_input) naming the file for a missing file, another
// architecture, or malformed fields.
SegmentFolderConfig read_segment_config(const std::string& model_dir);

struct SegmentModelOptions {
  std::string dir;
  std::string backbone = "ras";  // ras: unet/; plain: unet_plain/
  std::string device = "cpu", dtype = "fp32";
  bool channels_last = false;     // UNet, VAE, projection and head convolution weights in NHWC (device.hpp)
  bool cudnn_benchmark = false;   // cuDNN autotuning (process-wide; device.hpp)
  bool cuda_graphs = false;       // replay recorded CUDA graphs for fixed shapes (cuda_graphs.hpp)
  bool timings = false;           // time each stage (stage_times.hpp)
  bool quiet = false;
  std::string prog = "rass-segment";
  // false: the Seg LoRA stays unmerged (rass-train ras trains it); its
  // adapters are listed in SegmentModel::seg_lora_adapters either way.
  bool merge_seg_lora = true;
};

// The projection and the head under one root, so their weights load from one
// file by the released names.
struct SegHeadsImpl : torch::nn::Module {
  SegHeadsImpl(const nn::FeatureProjectionConfig& p, const nn::MaskFormerHeadConfig& h);
  nn::FeatureProjection projection{nullptr};
  nn::MaskFormerHead sem_seg_head{nullptr};
};
TORCH_MODULE(SegHeads);

class SegmentModel {
 public:
  explicit SegmentModel(const SegmentModelOptions& opt);

  // The prompt embedding [1, 77, D] of a prompt text (fp32 text encoder, as released).
  torch::Tensor encode_prompt(const std::string& prompt, std::vector<int>* ids = nullptr, size_t* tokens = nullptr) const;
  // Backbone + projection for one crop x [1, 3, h, w] in [-1, 1] (h, w
  // multiples of the VAE factor): the VAE encoder's taps, z = the latent (a
  // given `latent` [1, 4, h/8, w/8] replaces mean + std * noise; `noise`
  // undefined means the mean), the UNet at the model's timestep with
  // `context`, its up-block taps, then the projection to res2..res5 at the
  // crop's size. Returns one [1, C, h/s, w/s] float tensor per level.
  std::vector<torch::Tensor> crop_features(const torch::Tensor& x, const torch::Tensor& context, const torch::Tensor& noise,
                                           const torch::Tensor& latent) const;
  // The head on whole-image features (res2..res5).
  nn::MaskFormerOutput head(const std::vector<torch::Tensor>& features) const;

  SegmentFolderConfig config;
  std::string backbone;
  nn::UNet2DCondition unet{nullptr};
  nn::AutoencoderKL vae{nullptr};
  nn::ClipTextModel text_encoder{nullptr};
  std::shared_ptr<text::ClipTokenizer> tokenizer;
  SegHeads heads{nullptr};
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat;      // UNet
  // Projection and head: dtype, but fp32 for bf16 on the CPU (LibTorch's CPU
  // grid_sample, which the deformable attention uses, has no bf16 kernel).
  torch::ScalarType head_dtype = torch::kFloat;
  torch::ScalarType vae_dtype = torch::kFloat;  // fp32 when dtype is fp16
  int64_t vae_factor = 8;
  int64_t max_tokens = 77;
  std::string dir;
  std::vector<size_t> vae_taps{1, 3};  // VAE down_blocks tapped (RASS: [1] and [3])
  // --cuda-graphs: the windows' backbone and the head, recorded per shape (shared by copies of the model).
  std::shared_ptr<GraphCache> graphs = std::make_shared<GraphCache>(false);
  // --timings: seconds per stage (shared by copies of the model).
  std::shared_ptr<StageTimes> times = std::make_shared<StageTimes>();
  // Prompt embeddings computed so far (shared by copies of the model).
  std::shared_ptr<PromptCache> prompt_cache = std::make_shared<PromptCache>();
  std::vector<std::string> seg_lora_adapters;  // the adapters seg_lora.safetensors added
};

}  // namespace rass::model
