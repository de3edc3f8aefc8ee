// Segment Anything v1 (facebookresearch/segment-anything, modeling/
// image_encoder.py, prompt_encoder.py, mask_decoder.py, transformer.py,
// common.py), the model GleSAM (seed 001) enhances. Module names equal the
// released sam_vit_{b,l,h}.pth keys (image_encoder.*, prompt_encoder.*,
// mask_decoder.*), so a converted checkpoint loads with no renaming table.
//
// Details easy to miss, all as the reference computes them:
// - the ViT's LayerNorms and LayerNorm2d use eps 1e-6, the mask decoder's
//   nn.LayerNorm 1e-5;
// - window attention pads the 64x64 grid to a multiple of the window (64 ->
//   70 for 14) with zeros and no mask;
// - the decomposed relative-position terms use the unscaled q;
// - decoder layer 0's self-attention replaces the queries (no residual, no
//   position encoding);
// - points are shifted to pixel centres (+0.5); without a box a padding
//   point (label -1, not_a_point_embed) is appended.
#pragma once
#include <array>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>

#include "rass/nn/linear.hpp"
#include "rass/nn/robust_sam.hpp"

namespace rass::nn {

struct SamConfig {
  // Image encoder (ImageEncoderViT as build_sam.py builds it).
  int64_t image_size = 1024, patch_size = 16;
  int64_t embed_dim = 768, depth = 12, num_heads = 12;
  double mlp_ratio = 4.0;
  int64_t window_size = 14;
  std::vector<int64_t> global_attn_indexes{2, 5, 8, 11};
  bool use_rel_pos = true;
  // Prompt encoder and mask decoder.
  int64_t prompt_embed_dim = 256;  // also the encoder's out_chans
  int64_t mask_in_chans = 16;
  int64_t decoder_depth = 2, decoder_heads = 8, decoder_mlp_dim = 2048, attention_downsample_rate = 2;
  int64_t num_multimask_outputs = 3, iou_head_depth = 3, iou_head_hidden_dim = 256;
  std::array<double, 3> pixel_mean{123.675, 116.28, 103.53}, pixel_std{58.395, 57.12, 57.375};
  // RobustSAM: the mask decoder also holds its robust tokens and feature
  // blocks (rass/nn/robust_sam.hpp).
  bool robust = false;
  // HQ-SAM (SysCV/sam-hq, MaskDecoderHQ): the decoder also holds the HQ
  // output token, its MLP and the HQ feature layers.
  bool hq = false;
  int64_t embedding_size() const { return image_size / patch_size; }  // 64
};
// The released variants: "vit_b", "vit_l", "vit_h". Error(usage) otherwise.
SamConfig sam_preset(const std::string& name);

// common.py LayerNorm2d: over channels of [B, C, H, W].
struct LayerNorm2dImpl : torch::nn::Module {
  LayerNorm2dImpl(int64_t channels, double eps = 1e-6);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
  double eps;
};
TORCH_MODULE(LayerNorm2d);

// common.py MLPBlock: lin2(act(lin1 x)); GELU in the ViT, ReLU in the decoder.
struct SamMlpBlockImpl : torch::nn::Module {
  SamMlpBlockImpl(int64_t dim, int64_t hidden, bool relu);
  torch::Tensor forward(const torch::Tensor& x);
  Linear lin1{nullptr}, lin2{nullptr};
  bool relu;
};
TORCH_MODULE(SamMlpBlock);

// image_encoder.py Attention: [B, H, W, C] tokens, optional decomposed
// relative positions of an (H, W) grid.
struct SamVitAttentionImpl : torch::nn::Module {
  SamVitAttentionImpl(int64_t dim, int64_t heads, bool use_rel_pos, int64_t grid);
  torch::Tensor forward(const torch::Tensor& x);
  Linear qkv{nullptr}, proj{nullptr};
  torch::Tensor rel_pos_h, rel_pos_w;
  int64_t heads;
  bool use_rel_pos;
};
TORCH_MODULE(SamVitAttention);

struct SamVitBlockImpl : torch::nn::Module {
  SamVitBlockImpl(const SamConfig& c, int64_t window_size);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  SamVitAttention attn{nullptr};
  SamMlpBlock mlp{nullptr};
  int64_t window_size;  // 0: global attention
};
TORCH_MODULE(SamVitBlock);

struct SamPatchEmbedImpl : torch::nn::Module {
  SamPatchEmbedImpl(int64_t patch, int64_t dim);
  torch::nn::Conv2d proj{nullptr};
};
TORCH_MODULE(SamPatchEmbed);

struct SamImageEncoderImpl : torch::nn::Module {
  explicit SamImageEncoderImpl(const SamConfig& c);
  // x: [B, 3, image_size, image_size], normalised and padded. Returns the
  // image embedding [B, prompt_embed_dim, 64, 64].
  torch::Tensor forward(const torch::Tensor& x);
  // The embedding and RobustSAM's early features: the output of the first
  // global-attention block, [B, 64, 64, embed_dim].
  std::pair<torch::Tensor, torch::Tensor> forward_with_early(const torch::Tensor& x);
  SamPatchEmbed patch_embed{nullptr};
  torch::Tensor pos_embed;  // [1, 64, 64, embed_dim]
  torch::nn::ModuleList blocks;
  torch::nn::Sequential neck;  // 0 conv1x1, 1 LayerNorm2d, 2 conv3x3, 3 LayerNorm2d
};
TORCH_MODULE(SamImageEncoder);

// prompt_encoder.py PositionEmbeddingRandom.
struct SamPositionEmbeddingImpl : torch::nn::Module {
  explicit SamPositionEmbeddingImpl(int64_t num_pos_feats);
  // Points [B, N, 2] already divided by the input size (x / W, y / H).
  torch::Tensor encode(const torch::Tensor& unit_coords) const;
  // [C, h, w] for the grid of pixel centres.
  torch::Tensor dense(int64_t h, int64_t w) const;
  torch::Tensor positional_encoding_gaussian_matrix;  // [2, num_pos_feats] (a buffer)
};
TORCH_MODULE(SamPositionEmbedding);

// Prompts of B objects on one image, in the encoder's input frame (the
// resized image, before padding): any of points, boxes, masks.
struct SamPrompts {
  torch::Tensor point_coords;  // [B, N, 2] float (x, y), or undefined
  torch::Tensor point_labels;  // [B, N]: 1 foreground, 0 background, -1 padding; 2, 3 box corners (SAM 2)
  torch::Tensor boxes;         // [B, 4] (x0, y0, x1, y1), or undefined
  torch::Tensor masks;         // [B, 1, 256, 256] low-resolution logits, or undefined
  int64_t count() const;       // B (1 with none given)
};

struct SamPromptEncoderImpl : torch::nn::Module {
  explicit SamPromptEncoderImpl(const SamConfig& c);
  // (sparse [B, tokens, D], dense [B, D, 64, 64]).
  std::pair<torch::Tensor, torch::Tensor> forward(const SamPrompts& p);
  torch::Tensor dense_pe() const;  // [1, D, 64, 64]
  SamPositionEmbedding pe_layer{nullptr};
  torch::nn::ModuleList point_embeddings;  // 4 x Embedding(1, D): negative, positive, box corner 0, 1
  torch::nn::Embedding not_a_point_embed{nullptr}, no_mask_embed{nullptr};
  torch::nn::Sequential mask_downscaling;  // 0 conv, 1 LN2d, 2 GELU, 3 conv, 4 LN2d, 5 GELU, 6 conv1x1
  int64_t embed_dim, grid, image_size;
};
TORCH_MODULE(SamPromptEncoder);

// The mask decoder's output_upscaling (SAM's and SAM 2's): 0 convT 2x2 to
// D / 4, 1 LayerNorm2d, 2 GELU, 3 convT 2x2 to D / 8, 4 GELU.
torch::nn::Sequential sam_output_upscaling(int64_t d);

// mask_decoder.py MLP: ReLU between layers (no sigmoid in SAM v1). SAM 2's
// sam2_utils.MLP is the same module with its activation (GELU in Hiera's
// blocks) and an optional sigmoid at the end (its IoU head).
struct SamMlpImpl : torch::nn::Module {
  SamMlpImpl(int64_t in, int64_t hidden, int64_t out, int64_t layers, bool gelu = false, bool sigmoid = false);
  torch::Tensor forward(torch::Tensor x);
  torch::nn::ModuleList layers;
  bool gelu, sigmoid;
};
TORCH_MODULE(SamMlp);

// transformer.py Attention (with downsample_rate).
struct SamDecoderAttentionImpl : torch::nn::Module {
  SamDecoderAttentionImpl(int64_t dim, int64_t heads, int64_t downsample_rate);
  torch::Tensor forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
  int64_t heads;
};
TORCH_MODULE(SamDecoderAttention);

struct SamTwoWayBlockImpl : torch::nn::Module {
  // `mlp_layers`: SAM 2's names (mlp.layers.0/1, sam2_utils.MLP) for the
  // same MLP as SAM's mlp.lin1/lin2.
  SamTwoWayBlockImpl(const SamConfig& c, bool skip_first_layer_pe, bool mlp_layers = false);
  // (queries, keys).
  std::pair<torch::Tensor, torch::Tensor> forward(torch::Tensor queries, torch::Tensor keys, const torch::Tensor& query_pe,
                                                  const torch::Tensor& key_pe);
  SamDecoderAttention self_attn{nullptr}, cross_attn_token_to_image{nullptr}, cross_attn_image_to_token{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr}, norm4{nullptr};
  SamMlpBlock mlp{nullptr};
  SamMlp mlp_layers{nullptr};  // registered as "mlp" in its place with SAM 2's names
  bool skip_first_layer_pe;
};
TORCH_MODULE(SamTwoWayBlock);

struct SamTwoWayTransformerImpl : torch::nn::Module {
  explicit SamTwoWayTransformerImpl(const SamConfig& c, bool mlp_layers = false);
  // image [B, C, h, w], pe [B, C, h, w], tokens [B, T, C] -> (queries, keys).
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& image, const torch::Tensor& image_pe,
                                                  const torch::Tensor& tokens);
  torch::nn::ModuleList layers;
  SamDecoderAttention final_attn_token_to_image{nullptr};
  torch::nn::LayerNorm norm_final_attn{nullptr};
};
TORCH_MODULE(SamTwoWayTransformer);


struct SamMaskDecoderImpl : torch::nn::Module {
  explicit SamMaskDecoderImpl(const SamConfig& c);
  // (low-resolution mask logits [B, 1 or 3, 256, 256], predicted IoU [B, 1 or 3]):
  // mask token 0 alone, or tokens 1..3 with `multimask`.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& image_embedding, const torch::Tensor& image_pe,
                                                  const torch::Tensor& sparse, const torch::Tensor& dense,
                                                  bool multimask);
  // The step every decoding path shares: `output_tokens` [T, D] (IoU token
  // first) before each object's sparse prompt, the two-way transformer over
  // the embedding (plus the dense prompt), the upscaled image features.
  struct Decoded {
    torch::Tensor hs;  // [B, tokens, D]: the transformer's token outputs
    torch::Tensor up;  // [B, D / 8, 4h, 4w]: output_upscaling's
  };
  Decoded decode_tokens(const torch::Tensor& output_tokens, const torch::Tensor& image_embedding,
                        const torch::Tensor& image_pe, const torch::Tensor& sparse, const torch::Tensor& dense);
  SamTwoWayTransformer transformer{nullptr};
  torch::nn::Embedding iou_token{nullptr}, mask_tokens{nullptr};
  torch::nn::Sequential output_upscaling;  // 0 convT, 1 LN2d, 2 GELU, 3 convT, 4 GELU
  torch::nn::ModuleList output_hypernetworks_mlps;
  SamMlp iou_prediction_head{nullptr};
  int64_t num_mask_tokens;

  // RobustSAM (config.robust), its eval path (clear = False):
  // The image's robust features [1, D / 8, 256, 256] (AMFG of the early
  // features plus AMFG of the embedding); they do not depend on the prompts.
  torch::Tensor robust_features(const torch::Tensor& image_embedding, const torch::Tensor& early_features);
  // As forward, with the robust output tokens through the token block and
  // robust_mlp, and the mask features through AMFG plus `robust` features.
  // Each object is decoded as the reference decodes one prompt.
  std::pair<torch::Tensor, torch::Tensor> forward_robust(const torch::Tensor& image_embedding,
                                                         const torch::Tensor& image_pe, const torch::Tensor& sparse,
                                                         const torch::Tensor& dense, const torch::Tensor& robust,
                                                         bool multimask);
  torch::nn::Embedding custom_robust_token{nullptr};

  // HQ-SAM (config.hq): the image's HQ features [1, D / 8, 256, 256]
  // (embedding_encoder of the embedding plus compress_vit_feat of the early
  // features); they do not depend on the prompts.
  torch::Tensor hq_features(const torch::Tensor& image_embedding, const torch::Tensor& early_features);
  // MaskDecoderHQ.forward: SAM's mask plus the HQ token's mask over the HQ
  // features (or the HQ mask alone with hq_token_only). With `multimask`:
  // SAM's tokens 1..3 each plus the HQ mask, with their IoU predictions (the
  // reference keeps the one with the highest; so does the caller).
  std::pair<torch::Tensor, torch::Tensor> forward_hq(const torch::Tensor& image_embedding,
                                                     const torch::Tensor& image_pe, const torch::Tensor& sparse,
                                                     const torch::Tensor& dense, const torch::Tensor& hq,
                                                     bool multimask);
  bool hq_token_only = false;
  torch::nn::Embedding hf_token{nullptr};
  SamMlp hf_mlp{nullptr};
  torch::nn::Sequential compress_vit_feat, embedding_encoder, embedding_maskfeature;
  SamMlp robust_mlp{nullptr};
  RobustFeatureBlock fourier_mask_features{nullptr}, fourier_first_layer_features{nullptr},
      fourier_last_layer_features{nullptr};
  RobustTokenBlock custom_token_block{nullptr};
};
TORCH_MODULE(SamMaskDecoder);

struct SamImpl : torch::nn::Module {
  explicit SamImpl(const SamConfig& c);
  // One image's embedding [1, D, 64, 64] and B objects' prompts -> (logits, iou).
  // `decoder_features`: RobustSAM's robust features or HQ-SAM's HQ features
  // (as config says), which select its decoding path; undefined: SAM's own
  // tokens (RobustSAM's clear path; HQ-SAM without its HQ token).
  std::pair<torch::Tensor, torch::Tensor> decode(const torch::Tensor& image_embedding, const SamPrompts& p,
                                                 bool multimask, const torch::Tensor& decoder_features = {}) const;
  SamConfig config;
  SamImageEncoder image_encoder{nullptr};
  SamPromptEncoder prompt_encoder{nullptr};
  SamMaskDecoder mask_decoder{nullptr};
};
TORCH_MODULE(Sam);

}  // namespace rass::nn
