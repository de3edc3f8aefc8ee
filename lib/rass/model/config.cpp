#include "rass/model/config.hpp"

#include <cmath>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/core/json_file.hpp"

namespace rass::model {

// The ordered reader is shared; plain json is what the parsers below index.
static nlohmann::json read_json(const std::string& path) { return nlohmann::json(read_json_file(path)); }

// Values the modules cannot be built from are the file's fault (exit 3 naming
// it), not a raw LibTorch error at construction.
// The upper bounds are far past any released model (SD 2.1: 1280 channels,
// 2 layers a block, 23 text layers, a vocabulary of 49408) and keep a typo
// ("layers_per_block": 100000000) from building until the memory runs out.
constexpr int64_t kMaxWidth = 65536, kMaxLayers = 256, kMaxVocab = int64_t(1) << 24;
static void require_positive(const std::string& path, const std::string& key, int64_t v, int64_t max = kMaxWidth) {
  if (v < 1) throw_bad_input(path, key + " = " + std::to_string(v) + " (must be at least 1)");
  if (v > max)
    throw_bad_input(path, key + " = " + std::to_string(v) + " (at most " + std::to_string(max) +
                              " here: far past any released model; a typo?)");
}
static void require_groups(const std::string& path, int64_t groups, const std::vector<int64_t>& channels) {
  require_positive(path, "norm_num_groups", groups);
  for (size_t i = 0; i < channels.size(); ++i) {
    require_positive(path, "block_out_channels[" + std::to_string(i) + "]", channels[i]);
    if (channels[i] % groups != 0)
      throw_bad_input(path, "norm_num_groups " + std::to_string(groups) + " does not divide block_out_channels[" +
                                std::to_string(i) + "] = " + std::to_string(channels[i]) + " (GroupNorm needs it to)");
  }
}

nn::VaeConfig read_vae_config(const std::string& path) {
  const nlohmann::json j = read_json(path);
  nn::VaeConfig c;
  try {
    c.in_channels = j.value("in_channels", c.in_channels);
    c.out_channels = j.value("out_channels", c.out_channels);
    c.latent_channels = j.value("latent_channels", c.latent_channels);
    if (j.contains("block_out_channels")) c.block_out_channels = j["block_out_channels"].get<std::vector<int64_t>>();
    c.layers_per_block = j.value("layers_per_block", c.layers_per_block);
    c.norm_num_groups = j.value("norm_num_groups", c.norm_num_groups);
    c.scaling_factor = j.value("scaling_factor", c.scaling_factor);
    c.mid_block_add_attention = j.value("mid_block_add_attention", true);
    for (const char* key : {"down_block_types", "up_block_types"})
      if (j.contains(key)) {
        const auto types = j[key].get<std::vector<std::string>>();
        for (const std::string& s : types)
          if (s != "DownEncoderBlock2D" && s != "UpDecoderBlock2D")
            throw_bad_input(path, std::string(key) + " has '" + s + "'; only DownEncoderBlock2D/UpDecoderBlock2D are supported");
        // diffusers builds one block per type, with block_out_channels[i] channels.
        if (types.size() != c.block_out_channels.size())
          throw_bad_input(path, std::string(key) + " has " + std::to_string(types.size()) +
                                    " entries but block_out_channels " + std::to_string(c.block_out_channels.size()));
      }
    if (j.value("act_fn", std::string("silu")) != "silu") throw_bad_input(path, "act_fn must be silu");
    if (j.value("norm_type", std::string("group")) != "group") throw_bad_input(path, "norm_type must be group");
  } catch (const nlohmann::json::exception& e) {
    throw_bad_input(path, std::string("bad field: ") + e.what());
  }
  if (c.block_out_channels.empty()) throw_bad_input(path, "block_out_channels is empty");
  require_positive(path, "in_channels", c.in_channels);
  require_positive(path, "out_channels", c.out_channels);
  require_positive(path, "latent_channels", c.latent_channels);
  require_positive(path, "layers_per_block", c.layers_per_block, kMaxLayers);
  require_groups(path, c.norm_num_groups, c.block_out_channels);
  if (c.block_out_channels.size() > 8) throw_bad_input(path, "block_out_channels has more than 8 levels");
  if (!(c.scaling_factor > 0) || !std::isfinite(c.scaling_factor))
    throw_bad_input(path, "scaling_factor must be a positive number (the latents are divided by it)");
  return c;
}

// An int or a per-block list.
static std::vector<int64_t> per_block(const nlohmann::json& v, size_t n, const std::string& path, const char* key) {
  if (v.is_number_integer()) return std::vector<int64_t>(n, v.get<int64_t>());
  auto list = v.get<std::vector<int64_t>>();
  if (list.size() != n) throw_bad_input(path, std::string(key) + " needs " + std::to_string(n) + " values");
  return list;
}

nn::UNetConfig read_unet_config(const std::string& path) {
  const nlohmann::json j = read_json(path);
  nn::UNetConfig c;
  try {
    c.in_channels = j.value("in_channels", c.in_channels);
    c.out_channels = j.value("out_channels", c.out_channels);
    if (j.contains("down_block_types")) c.down_block_types = j["down_block_types"].get<std::vector<std::string>>();
    if (j.contains("up_block_types")) c.up_block_types = j["up_block_types"].get<std::vector<std::string>>();
    if (j.contains("block_out_channels")) c.block_out_channels = j["block_out_channels"].get<std::vector<int64_t>>();
    const size_t n = c.block_out_channels.size();
    if (n == 0) throw_bad_input(path, "block_out_channels is empty");
    c.layers_per_block = j.value("layers_per_block", c.layers_per_block);
    c.norm_num_groups = j.value("norm_num_groups", c.norm_num_groups);
    c.norm_eps = j.value("norm_eps", c.norm_eps);
    c.cross_attention_dim = j.value("cross_attention_dim", c.cross_attention_dim);
    // diffusers: num_attention_heads = num_attention_heads or attention_head_dim (legacy naming).
    const nlohmann::json heads = j.contains("num_attention_heads") && !j["num_attention_heads"].is_null()
                                     ? j["num_attention_heads"]
                                     : j.value("attention_head_dim", nlohmann::json(8));
    c.num_attention_heads = per_block(heads, n, path, "attention_head_dim");
    c.transformer_layers_per_block = per_block(j.value("transformer_layers_per_block", nlohmann::json(1)), n, path,
                                               "transformer_layers_per_block");
    c.use_linear_projection = j.value("use_linear_projection", false);
    c.upcast_attention = j.value("upcast_attention", false);
    c.flip_sin_to_cos = j.value("flip_sin_to_cos", true);
    c.freq_shift = j.value("freq_shift", 0.0);
    c.mid_block_scale_factor = j.value("mid_block_scale_factor", 1.0);
    c.downsample_padding = j.value("downsample_padding", int64_t(1));
    auto unsupported = [&](const char* key, const nlohmann::json& expect) {
      if (j.contains(key) && !j[key].is_null() && j[key] != expect)
        throw_bad_input(path, std::string(key) + " = " + j[key].dump() + " is not supported (expected " + expect.dump() + ")");
    };
    unsupported("mid_block_type", "UNetMidBlock2DCrossAttn");
    unsupported("act_fn", "silu");
    unsupported("resnet_time_scale_shift", "default");
    unsupported("only_cross_attention", false);
    unsupported("dual_cross_attention", false);
    unsupported("center_input_sample", false);
    for (const char* key : {"class_embed_type", "addition_embed_type", "encoder_hid_dim", "time_cond_proj_dim"})
      if (j.contains(key) && !j[key].is_null()) throw_bad_input(path, std::string(key) + " is not supported");
  } catch (const nlohmann::json::exception& e) {
    throw_bad_input(path, std::string("bad field: ") + e.what());
  }
  const size_t n = c.block_out_channels.size();
  if (n == 0) throw_bad_input(path, "block_out_channels is empty");
  for (const auto& [key, list] : {std::pair<const char*, size_t>{"down_block_types", c.down_block_types.size()},
                                  {"up_block_types", c.up_block_types.size()}})
    if (list != n)
      throw_bad_input(path, std::string(key) + " has " + std::to_string(list) + " entries but block_out_channels " +
                                std::to_string(n));
  for (const std::string& t : c.down_block_types)
    if (t != "CrossAttnDownBlock2D" && t != "DownBlock2D")
      throw_bad_input(path, "down_block_types has '" + t + "' (CrossAttnDownBlock2D, DownBlock2D are supported)");
  for (const std::string& t : c.up_block_types)
    if (t != "CrossAttnUpBlock2D" && t != "UpBlock2D")
      throw_bad_input(path, "up_block_types has '" + t + "' (CrossAttnUpBlock2D, UpBlock2D are supported)");
  require_positive(path, "in_channels", c.in_channels);
  require_positive(path, "out_channels", c.out_channels);
  require_positive(path, "layers_per_block", c.layers_per_block, kMaxLayers);
  require_positive(path, "cross_attention_dim", c.cross_attention_dim);
  require_groups(path, c.norm_num_groups, c.block_out_channels);
  for (size_t i = 0; i < n; ++i)
    require_positive(path, "transformer_layers_per_block[" + std::to_string(i) + "]", c.transformer_layers_per_block[i],
                     kMaxLayers);
  if (c.block_out_channels[0] % 2 != 0)
    throw_bad_input(path, "block_out_channels[0] must be even (the sinusoidal timestep embedding has that width; odd widths are not supported)");
  for (size_t i = 0; i < c.num_attention_heads.size(); ++i)
    if (c.num_attention_heads[i] < 1 || c.block_out_channels[i] % c.num_attention_heads[i] != 0)
      throw_bad_input(path, "block_out_channels[" + std::to_string(i) + "] is not divisible by its head count");
  if (!(c.norm_eps >= 0)) throw_bad_input(path, "norm_eps must not be negative");
  return c;
}

nn::ClipTextConfig read_clip_text_config(const std::string& path) {
  const nlohmann::json j = read_json(path);
  nn::ClipTextConfig c;
  try {
    c.vocab_size = j.value("vocab_size", c.vocab_size);
    c.hidden_size = j.value("hidden_size", c.hidden_size);
    c.intermediate_size = j.value("intermediate_size", c.intermediate_size);
    c.num_hidden_layers = j.value("num_hidden_layers", c.num_hidden_layers);
    c.num_attention_heads = j.value("num_attention_heads", c.num_attention_heads);
    c.max_position_embeddings = j.value("max_position_embeddings", c.max_position_embeddings);
    c.hidden_act = j.value("hidden_act", c.hidden_act);
    c.layer_norm_eps = j.value("layer_norm_eps", c.layer_norm_eps);
    c.eos_token_id = j.value("eos_token_id", c.eos_token_id);
  } catch (const nlohmann::json::exception& e) {
    throw_bad_input(path, std::string("bad field: ") + e.what());
  }
  if (c.hidden_act != "gelu" && c.hidden_act != "quick_gelu")
    throw_bad_input(path, "hidden_act '" + c.hidden_act + "' is not supported (gelu, quick_gelu)");
  require_positive(path, "vocab_size", c.vocab_size, kMaxVocab);
  require_positive(path, "hidden_size", c.hidden_size);
  require_positive(path, "intermediate_size", c.intermediate_size);
  require_positive(path, "num_hidden_layers", c.num_hidden_layers, kMaxLayers);
  require_positive(path, "num_attention_heads", c.num_attention_heads);
  require_positive(path, "max_position_embeddings", c.max_position_embeddings);
  if (c.hidden_size % c.num_attention_heads != 0)
    throw_bad_input(path, "hidden_size " + std::to_string(c.hidden_size) + " is not divisible by num_attention_heads " +
                              std::to_string(c.num_attention_heads));
  if (!(c.layer_norm_eps >= 0)) throw_bad_input(path, "layer_norm_eps must not be negative");
  return c;
}

}  // namespace rass::model
