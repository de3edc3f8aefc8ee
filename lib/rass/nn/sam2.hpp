// Segment Anything 2 and 2.1 (facebookresearch/sam2) as its image predictor
// runs it (SAM2ImagePredictor): the Hiera trunk (modeling/backbones/
// hieradet.py), the FPN neck (image_encoder.py), SAM's prompt encoder and a
// mask decoder with high-resolution features, an object-score token and the
// dynamic choice of mask by stability (sam/mask_decoder.py). GleSAM (seed 001)
// reports SAM 2 and its GleSAM2 beside SAM. Module names equal the released
// checkpoints' keys (image_encoder.trunk.*, image_encoder.neck.*,
// sam_prompt_encoder.*, sam_mask_decoder.*, no_mem_embed); the video-memory
// modules are not built (scripts/convert_sam.py drops their tensors).
//
// Details easy to miss, all as the reference computes them:
// - the trunk's window sizes lag a block behind its stages: the first block
//   of a stage attends in the previous stage's windows and pools its
//   queries 2x2 inside them;
// - maps that are no multiple of their window (64x64 in windows of 14,
//   32x32 in windows of 7) are padded with zeros after norm1 (to 70, 35),
//   with no mask;
// - the position embedding is pos_embed resized bicubically to the map plus
//   pos_embed_window tiled over it;
// - the neck sums a nearest-upsampled top-down path into level 2 only
//   (fpn_top_down_levels [2, 3]) and drops the coarsest level (scalp 1);
//   levels 0 and 1 go through the decoder's conv_s0 / conv_s1 at once;
// - no_mem_embed is added to the image embedding (directly_add_no_mem_embed);
// - a box is two points labelled 2 and 3, placed before the clicks, and a
//   padding point is always appended;
// - the IoU head ends in a sigmoid; without multimask output the decoder
//   keeps token 0's mask when its stability (#logit > 0.05 / #logit > -0.05)
//   is at least 0.98, else the best of tokens 1..3 by predicted IoU.
#pragma once
#include <array>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>

#include "rass/nn/linear.hpp"
#include "rass/nn/sam.hpp"

namespace rass::nn {

struct Sam2Config {
  // The prompt encoder's and mask decoder's sizes (SAM's: image_size 1024,
  // prompt_embed_dim 256, 8 heads, MLP 2048), patch_size the backbone's
  // stride (16).
  SamConfig heads;
  // Hiera; these defaults are hiera_b+'s (hieradet.py's own start at 96
  // channels and 1 head).
  int64_t embed_dim = 112, num_heads = 2;
  std::vector<int64_t> stages{2, 3, 16, 3};
  std::vector<int64_t> window_spec{8, 4, 14, 7};
  std::vector<int64_t> global_att_blocks{12, 16, 20};
  std::array<int64_t, 2> window_pos_embed_bkg_spatial_size{14, 14};
  int64_t q_pool = 3;  // stage changes that pool queries 2x2
  double dim_mul = 2.0, head_mul = 2.0, mlp_ratio = 4.0;
  // The decoder's dynamic multimask choice (build_sam's apply_postprocessing).
  double stability_delta = 0.05, stability_thresh = 0.98;
  std::array<double, 3> pixel_mean{0.485, 0.456, 0.406}, pixel_std{0.229, 0.224, 0.225};  // of [0, 1] pixels
  int64_t depth() const;
  // Each stage's last block index, shallow to deep.
  std::vector<int64_t> stage_ends() const;
  // Each stage's width (its last block's dim_out), shallow to deep.
  std::vector<int64_t> stage_dims() const;
  // Each block as Hiera.__init__ lays them out.
  struct Block {
    int64_t dim, dim_out, heads, window;  // window 0: global attention
    bool q_stride;                         // pools its queries 2x2 (a stage's first block)
  };
  std::vector<Block> blocks() const;
};
// "hiera_t", "hiera_s", "hiera_b+", "hiera_l" (SAM 2 and 2.1 alike). Error(usage) otherwise.
Sam2Config sam2_preset(const std::string& name);

struct Sam2PatchEmbedImpl : torch::nn::Module {
  explicit Sam2PatchEmbedImpl(int64_t dim);  // 7x7 convolution, stride 4, padding 3
  torch::nn::Conv2d proj{nullptr};
};
TORCH_MODULE(Sam2PatchEmbed);

// hieradet.py MultiScaleAttention: [B, H, W, C] tokens, queries max-pooled 2x2 with `q_pool`.
struct Sam2AttentionImpl : torch::nn::Module {
  Sam2AttentionImpl(int64_t dim, int64_t dim_out, int64_t heads, bool q_pool);
  torch::Tensor forward(const torch::Tensor& x);
  Linear qkv{nullptr}, proj{nullptr};
  int64_t heads;
  bool q_pool;
};
TORCH_MODULE(Sam2Attention);

// hieradet.py MultiScaleBlock.
struct Sam2BlockImpl : torch::nn::Module {
  Sam2BlockImpl(int64_t dim, int64_t dim_out, int64_t heads, double mlp_ratio, bool q_stride, int64_t window_size);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Sam2Attention attn{nullptr};
  SamMlp mlp{nullptr};
  Linear proj{nullptr};  // dim != dim_out only
  int64_t dim, dim_out, window_size;
  bool q_stride;
};
TORCH_MODULE(Sam2Block);

struct HieraImpl : torch::nn::Module {
  explicit HieraImpl(const Sam2Config& c);
  // Each stage's last output [B, C_s, H_s, W_s], shallow to deep.
  std::vector<torch::Tensor> forward(const torch::Tensor& x);
  Sam2PatchEmbed patch_embed{nullptr};
  torch::Tensor pos_embed, pos_embed_window;  // [1, C, bh, bw], [1, C, w0, w0]
  torch::nn::ModuleList blocks;
  std::vector<int64_t> stage_ends;
};
TORCH_MODULE(Hiera);

// image_encoder.py FpnNeck as every config sets it: 1x1 lateral convolutions
// (convs[0] on the deepest level), nearest top-down into levels 2 and 3, sum.
struct Sam2FpnNeckImpl : torch::nn::Module {
  Sam2FpnNeckImpl(const std::vector<int64_t>& backbone_channels, int64_t d_model);  // deep to shallow
  // Trunk levels (shallow to deep) -> neck levels (shallow to deep).
  std::vector<torch::Tensor> forward(const std::vector<torch::Tensor>& xs);
  torch::nn::ModuleList convs;  // each a Sequential holding "conv"
  std::vector<int64_t> top_down_levels{2, 3};
};
TORCH_MODULE(Sam2FpnNeck);

struct Sam2ImageEncoderImpl : torch::nn::Module {
  explicit Sam2ImageEncoderImpl(const Sam2Config& c);
  // The neck's levels without the coarsest (scalp 1): strides 4, 8, 16.
  std::vector<torch::Tensor> forward(const torch::Tensor& x);
  Hiera trunk{nullptr};
  Sam2FpnNeck neck{nullptr};
};
TORCH_MODULE(Sam2ImageEncoder);

// What the decoder needs of one image.
struct Sam2Features {
  torch::Tensor embedding;  // [1, D, g, g], no_mem_embed added
  torch::Tensor s0, s1;     // conv_s0 of level 0 [1, D / 8, 4g, 4g], conv_s1 of level 1 [1, D / 4, 2g, 2g]
};

struct Sam2Decoded {
  torch::Tensor masks;         // [B, 1 or 3, 4g, 4g] logits
  torch::Tensor iou;           // [B, 1 or 3]
  torch::Tensor tokens;        // [B, 1 or 3] long: the mask token of each output (0..3)
  torch::Tensor object_score;  // [B, 1] object-score logits (> 0: an object is there)
};

struct Sam2MaskDecoderImpl : torch::nn::Module {
  Sam2MaskDecoderImpl(const Sam2Config& c);
  // image_embedding [1, D, g, g] (shared by the B objects), pe [1, D, g, g],
  // sparse [B, T, D], dense [B, D, g, g].
  Sam2Decoded forward(const torch::Tensor& image_embedding, const torch::Tensor& image_pe, const torch::Tensor& sparse,
                      const torch::Tensor& dense, const torch::Tensor& s0, const torch::Tensor& s1, bool multimask);
  SamTwoWayTransformer transformer{nullptr};
  torch::nn::Embedding iou_token{nullptr}, mask_tokens{nullptr}, obj_score_token{nullptr};
  torch::nn::Sequential output_upscaling;  // 0 convT, 1 LN2d, 2 GELU, 3 convT, 4 GELU
  torch::nn::Conv2d conv_s0{nullptr}, conv_s1{nullptr};
  torch::nn::ModuleList output_hypernetworks_mlps;
  SamMlp iou_prediction_head{nullptr}, pred_obj_score_head{nullptr};
  int64_t num_mask_tokens;
  double stability_delta, stability_thresh;
};
TORCH_MODULE(Sam2MaskDecoder);

struct Sam2Impl : torch::nn::Module {
  explicit Sam2Impl(const Sam2Config& c);
  // x: [1, 3, S, S] resized and normalised -> the decoder's features.
  Sam2Features encode(const torch::Tensor& x);
  // B objects' prompts in the S x S frame (boxes become points 2 and 3).
  Sam2Decoded decode(const Sam2Features& f, const SamPrompts& p, bool multimask) const;
  Sam2Config config;
  Sam2ImageEncoder image_encoder{nullptr};
  SamPromptEncoder sam_prompt_encoder{nullptr};
  Sam2MaskDecoder sam_mask_decoder{nullptr};
  torch::Tensor no_mem_embed;  // [1, 1, D]
};
TORCH_MODULE(Sam2);

}  // namespace rass::nn
