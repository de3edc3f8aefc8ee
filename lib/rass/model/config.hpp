// diffusers config.json files (one per component folder) -> model configs.
#pragma once
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "rass/nn/clip_text.hpp"
#include "rass/nn/unet.hpp"
#include "rass/nn/vae.hpp"

namespace rass::model {

// Reads a diffusers AutoencoderKL config.json. Throws Error(bad_input) naming
// the file for a missing or malformed field, or unsupported block types.
nn::VaeConfig read_vae_config(const std::string& path);
// Reads a diffusers UNet2DConditionModel config.json (SD 2.x family: the block
// types nn::UNetConfig supports; attention_head_dim as heads when
// num_attention_heads is null, ints broadcast to every block).
nn::UNetConfig read_unet_config(const std::string& path);
// Reads a transformers CLIPTextModel config.json (text_encoder/config.json).
nn::ClipTextConfig read_clip_text_config(const std::string& path);
// The same from a file's JSON already read (a FIFO the user names is read
// once); `path` names it in messages.
nn::VaeConfig read_vae_config(const nlohmann::json& j, const std::string& path);
nn::UNetConfig read_unet_config(const nlohmann::json& j, const std::string& path);
nn::ClipTextConfig read_clip_text_config(const nlohmann::json& j, const std::string& path);

}  // namespace rass::model
