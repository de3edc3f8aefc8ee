// rass-model init --preset tiny-seg / sd21-base-seg: the segmentation parts of
// a RAS model folder (segment_model.hpp) added to a freshly written SD folder.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace rass::model {

// Whether the preset is a segmentation one, and the SD preset under it.
bool is_seg_preset(const std::string& preset);
std::string sd_preset_of(const std::string& preset);
// The UNet config of a segmentation preset: four levels, as RAS taps
// up_blocks[0..3] (tiny-seg: a 4-level tiny UNet; sd21-base-seg: SD 2.1-base's).
nlohmann::ordered_json seg_unet_preset(const std::string& preset, const nlohmann::ordered_json& sd_unet);

// In `dir`, which holds the SD folder with a random UNet in unet/: moves that
// UNet to unet_plain/ (the "SD" UNet of --backbone plain), writes unet/ as it
// plus a random rank-4 "SCR" LoRA merged (so the two backbones differ), a
// random Seg LoRA (seg_lora.safetensors: gaussian A, B ~ N(0, 0.02^2) so that
// it changes the result), random projection and head weights
// (seg_head.safetensors), segment.json (ADE20K's 150 classes) and rass.json.
// Draws from generators seeded with seed + 10.. in a fixed order.
void write_seg_parts(const std::string& dir, const std::string& preset, uint64_t seed, const std::string& dtype);

}  // namespace rass::model
