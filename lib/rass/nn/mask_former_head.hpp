// The Mask2Former segmentation head as RASS released it (Ka1Guan/RASS, whose
// head code is facebookresearch/Mask2Former's): MSDeformAttnPixelDecoder +
// MultiScaleMaskedTransformerDecoder, wrapped as mask_former_head.py's
// MaskFormerHead with transformer_in_feature "multi_scale_pixel_decoder".
//
// Children are "pixel_decoder" and "predictor", and every parameter name below
// them equals the official state dict's key under "sem_seg_head." (e.g.
// pixel_decoder.input_proj.0.0.weight,
// pixel_decoder.transformer.encoder.layers.0.self_attn.sampling_offsets.weight,
// predictor.transformer_cross_attention_layers.0.multihead_attn.in_proj_weight),
// so a converted checkpoint loads with the name-checked loader and no
// renaming table.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

namespace rass::nn {

class MSDeformAttnPixelDecoderImpl;
class MultiScaleMaskedTransformerDecoderImpl;

// Every field defaults to the released configuration (REFERENCE.md section 4;
// Mask2Former's ADE20K semantic config with RASS's 512-channel res2..res5).
struct MaskFormerHeadConfig {
  int num_classes = 150, num_queries = 100, hidden_dim = 256, nheads = 8, dim_feedforward = 2048;
  int dec_layers = 10;  // detectron2's DEC_LAYERS: builds dec_layers-1 transformer layers
  bool pre_norm = false, enforce_input_project = false;
  int mask_dim = 256, conv_dim = 256, norm_groups = 32, common_stride = 4;
  // The deformable encoder. The released code takes its heads from
  // MASK_FORMER.NHEADS (8), its FFN width is hard-coded 1024 and its points
  // are MSDeformAttn's default 4; they are separate fields here so a smaller
  // head can be described.
  int enc_layers = 6, enc_dim_feedforward = 1024, enc_nheads = 8, enc_n_points = 4;
  std::vector<int> in_channels = {512, 512, 512, 512};  // res2..res5
  std::vector<int> in_strides = {4, 8, 16, 32};
  int deformable_levels = 3;  // the last deformable_levels inputs (res3..res5) enter the encoder
};

// Reads a config object (keys are the field names above; missing keys keep
// their defaults). Unknown keys, wrong types and values the modules cannot be
// built from throw rass::Error(bad_input) "<source>: <key> ...".
MaskFormerHeadConfig read_mask_former_head_config(const nlohmann::json& j,
                                                  const std::string& source = "head config");
nlohmann::json to_json(const MaskFormerHeadConfig& c);

struct MaskFormerOutput {
  torch::Tensor pred_logits;  // [B, Q, num_classes + 1] (the last class is "no object")
  torch::Tensor pred_masks;   // [B, Q, H2, W2]: the mask features' size, res2's (stride common_stride)
  // The earlier predictions, first (the learnable queries before any layer) to
  // last but one: dec_layers - 1 pairs (logits, masks), for deep supervision.
  std::vector<std::pair<torch::Tensor, torch::Tensor>> aux;
};

class MaskFormerHeadImpl : public torch::nn::Module {
 public:
  explicit MaskFormerHeadImpl(const MaskFormerHeadConfig& config);
  // features: res2..res5 (one per in_channels entry), [B, C_i, H/s_i, W/s_i].
  MaskFormerOutput forward(const std::vector<torch::Tensor>& features);

  const MaskFormerHeadConfig& config() const { return config_; }
  std::shared_ptr<MSDeformAttnPixelDecoderImpl> pixel_decoder;
  std::shared_ptr<MultiScaleMaskedTransformerDecoderImpl> predictor;

 private:
  MaskFormerHeadConfig config_;
};
TORCH_MODULE(MaskFormerHead);

// Mask2Former's semantic_inference (maskformer_model.py), batched: softmax over
// the classes with the no-object class dropped, times the sigmoid masks,
// summed over the queries. pred_logits [B, Q, K+1], pred_masks [B, Q, H, W]
// -> [B, K, H, W] (argmax over dim 1 gives the labels).
torch::Tensor semantic_inference(const torch::Tensor& pred_logits, const torch::Tensor& pred_masks);

}  // namespace rass::nn
