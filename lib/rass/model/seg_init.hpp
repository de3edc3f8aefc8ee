// rass-model init --preset tiny-seg / sd21-base-seg: the segmentation parts of
// a RAS model folder (segment_model.hpp) added to a freshly written SD folder.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

#include "rass/nn/mask_former_head.hpp"

namespace rass::model {

struct SegmentFolderConfig;

// Whether the preset is a segmentation one, and the SD preset under it
// (tiny4, the tiny SD folder with a 4-level UNet, is "tiny" with seg_unet_preset's UNet).
bool is_seg_preset(const std::string& preset);
std::string sd_preset_of(const std::string& preset);
// The UNet config of a segmentation preset or tiny4: four levels, as RAS taps
// up_blocks[0..3] (tiny-seg, tiny4: a 4-level tiny UNet; sd21-base-seg: SD 2.1-base's).
nlohmann::ordered_json seg_unet_preset(const std::string& preset, const nlohmann::ordered_json& sd_unet);

// segment.json's "feature_projection" for a VAE and a UNet (their
// block_out_channels): taps VAE down_blocks[1] (stride vae_factor / 2) and
// [3] (stride vae_factor), then every UNet up block, first to last, at the
// stride its output has (up block i of n: vae_factor * 2^(n-2-i), the last
// one vae_factor, as diffusers puts an upsampler on all up blocks but the
// last; SD 2.1-base: 32, 16, 8, 8, the released FEATURE_STRIDES).
// `in_strides` are the head's inputs: taps of equal stride are summed, and the
// strides present must be exactly these (res2..res5 for the released head),
// else Error(bad_input) naming `unet_source` and what the UNet gives (a VAE
// of fewer than 4 blocks: naming `vae_source`).
nlohmann::ordered_json ras_projection_json(const std::vector<int64_t>& vae_channels,
                                           const std::vector<int64_t>& unet_channels, int64_t projection_dim,
                                           const std::vector<int>& in_strides, const std::string& vae_source,
                                           const std::string& unet_source);

// The small head of the tiny-seg preset (8 queries, hidden 32, 4 decoder
// predictions, one encoder layer; res2..res5 of 128 channels).
nn::MaskFormerHeadConfig tiny_head_config();

// segment.json's whole object.
nlohmann::ordered_json segment_json(const nlohmann::ordered_json& feature_projection,
                                    const nn::MaskFormerHeadConfig& head, const nlohmann::ordered_json& classes,
                                    int timestep, const std::string& prompt_style, const std::string& source);

// seg_head.safetensors for the folder's segment.json: the projection and the
// head as the released training starts them (the module constructors carry
// the reference initialisations: c2_msra_fill in the projection's
// BottleneckBlocks, c2_xavier_fill in detectron2 convs, MSDeformAttn's
// _reset_parameters, xavier_uniform_ on every matrix of the transformers,
// N(0,1) level_embed and nn.Embedding, torch's nn.Linear default, GroupNorm
// and LayerNorm 1/0), drawn from torch's global generator seeded with `seed`.
void write_seg_head(const std::string& path, const SegmentFolderConfig& cfg, uint64_t seed, torch::ScalarType dtype,
                    const std::map<std::string, std::string>& metadata);

// In `dir`, which holds the SD folder with a random UNet in unet/: moves that
// UNet to unet_plain/ (the "SD" UNet of --backbone plain), writes unet/ as it
// plus a random rank-4 "SCR" LoRA merged (so the two backbones differ), a
// random Seg LoRA (seg_lora.safetensors: gaussian A, B ~ N(0, 0.02^2) so that
// it changes the result), random projection and head weights
// (seg_head.safetensors), segment.json (ADE20K's 150 classes) and rass.json.
// Draws from generators seeded with seed + 10.. in a fixed order.
void write_seg_parts(const std::string& dir, const std::string& preset, uint64_t seed, const std::string& dtype);

}  // namespace rass::model
