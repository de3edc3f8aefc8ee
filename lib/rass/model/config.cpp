#include "rass/model/config.hpp"

#include <cmath>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/core/found_file.hpp"
#include "rass/core/json_fields.hpp"
#include "rass/core/json_file.hpp"

namespace rass::model {

// The ordered reader is shared; plain json is what the parsers below index.
static nlohmann::json read_json(const std::string& path) { return nlohmann::json(read_found_json(path)); }

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

nn::VaeConfig read_vae_config(const nlohmann::json& j, const std::string& path) {
  nn::VaeConfig c;
  const JsonFields f(j, path);
  c.in_channels = f.integer("in_channels", c.in_channels);
  c.out_channels = f.integer("out_channels", c.out_channels);
  c.latent_channels = f.integer("latent_channels", c.latent_channels);
  c.block_out_channels = f.integers("block_out_channels", c.block_out_channels);
  c.layers_per_block = f.integer("layers_per_block", c.layers_per_block);
  c.norm_num_groups = f.integer("norm_num_groups", c.norm_num_groups);
  c.scaling_factor = f.number("scaling_factor", c.scaling_factor);
  c.mid_block_add_attention = f.flag("mid_block_add_attention", true);
  for (const char* key : {"down_block_types", "up_block_types"})
    if (j.contains(key)) {
      const auto types = f.texts(key, {});
      for (const std::string& s : types)
        if (s != "DownEncoderBlock2D" && s != "UpDecoderBlock2D")
          throw_bad_input(path, std::string(key) + " has '" + s + "'; only DownEncoderBlock2D/UpDecoderBlock2D are supported");
      // diffusers builds one block per type, with block_out_channels[i] channels.
      if (types.size() != c.block_out_channels.size())
        throw_bad_input(path, std::string(key) + " has " + std::to_string(types.size()) +
                                  " entries but block_out_channels " + std::to_string(c.block_out_channels.size()));
    }
  if (f.text("act_fn", "silu") != "silu") throw_bad_input(path, "act_fn must be silu");
  if (f.text("norm_type", "group") != "group") throw_bad_input(path, "norm_type must be group");
  if (f.has("_class_name") && f.text("_class_name", "") != "AutoencoderKL")
    throw_bad_input(path, "_class_name " + json_excerpt(j["_class_name"]) + " is not supported (AutoencoderKL)");
  for (const char* key : {"use_quant_conv", "use_post_quant_conv"})  // SD's VAE has both 1x1 convolutions
    if (!f.flag(key, true)) throw_bad_input(path, std::string(key) + " false is not supported");
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

// An int or a per-block list (key's value is present and not null).
static std::vector<int64_t> per_block(const JsonFields& f, const nlohmann::json& j, const std::string& key, size_t n,
                                      const std::string& path) {
  if (j[key].is_number()) return std::vector<int64_t>(n, f.integer(key, 0));
  std::vector<int64_t> list = f.integers(key, {});
  if (list.size() != n) throw_bad_input(path, key + " needs " + std::to_string(n) + " values");
  return list;
}

nn::UNetConfig read_unet_config(const nlohmann::json& j, const std::string& path) {
  nn::UNetConfig c;
  const JsonFields f(j, path);
  try {
    c.in_channels = f.integer("in_channels", c.in_channels);
    c.out_channels = f.integer("out_channels", c.out_channels);
    c.down_block_types = f.texts("down_block_types", c.down_block_types);
    c.up_block_types = f.texts("up_block_types", c.up_block_types);
    c.block_out_channels = f.integers("block_out_channels", c.block_out_channels);
    const size_t n = c.block_out_channels.size();
    if (n == 0) throw_bad_input(path, "block_out_channels is empty");
    c.layers_per_block = f.integer("layers_per_block", c.layers_per_block);
    c.norm_num_groups = f.integer("norm_num_groups", c.norm_num_groups);
    c.norm_eps = f.number("norm_eps", c.norm_eps);
    c.cross_attention_dim = f.integer("cross_attention_dim", c.cross_attention_dim);
    // diffusers: num_attention_heads = num_attention_heads or attention_head_dim (legacy naming).
    const char* heads = f.has("num_attention_heads") ? "num_attention_heads" : "attention_head_dim";
    c.num_attention_heads = f.has(heads) ? per_block(f, j, heads, n, path) : std::vector<int64_t>(n, 8);
    c.transformer_layers_per_block = f.has("transformer_layers_per_block")
                                         ? per_block(f, j, "transformer_layers_per_block", n, path)
                                         : std::vector<int64_t>(n, 1);
    c.use_linear_projection = f.flag("use_linear_projection", false);
    c.upcast_attention = f.flag("upcast_attention", false);
    c.flip_sin_to_cos = f.flag("flip_sin_to_cos", true);
    c.freq_shift = f.number("freq_shift", 0.0);
    c.mid_block_scale_factor = f.number("mid_block_scale_factor", 1.0);
    c.downsample_padding = f.integer("downsample_padding", int64_t(1));
    auto unsupported = [&](const char* key, const nlohmann::json& expect) {
      if (j.contains(key) && !j[key].is_null() && j[key] != expect)
        throw_bad_input(path, std::string(key) + " = " + json_excerpt(j[key]) + " is not supported (expected " + expect.dump() + ")");
    };
    unsupported("mid_block_type", "UNetMidBlock2DCrossAttn");
    unsupported("act_fn", "silu");
    unsupported("resnet_time_scale_shift", "default");
    unsupported("only_cross_attention", false);
    unsupported("dual_cross_attention", false);
    unsupported("center_input_sample", false);
    // Keys that change the network's shape or arithmetic: accepted with any
    // value they were built a UNet the weights or the results did not fit.
    unsupported("_class_name", "UNet2DConditionModel");
    unsupported("conv_in_kernel", 3);
    unsupported("conv_out_kernel", 3);
    unsupported("time_embedding_type", "positional");
    unsupported("attention_type", "default");
    unsupported("class_embeddings_concat", false);
    unsupported("resnet_skip_time_act", false);
    unsupported("resnet_out_scale_factor", 1.0);
    if (j.contains("mid_block_type") && j["mid_block_type"].is_null())
      throw_bad_input(path, "mid_block_type null (a UNet without a mid block) is not supported");
    for (const char* key : {"class_embed_type", "addition_embed_type", "encoder_hid_dim", "time_cond_proj_dim",
                            "num_class_embeds", "encoder_hid_dim_type", "time_embedding_dim", "time_embedding_act_fn",
                            "timestep_post_act", "projection_class_embeddings_input_dim", "addition_time_embed_dim",
                            "cross_attention_norm", "reverse_transformer_layers_per_block"})
      if (j.contains(key) && !j[key].is_null())
        throw_bad_input(path, std::string(key) + " = " + json_excerpt(j[key]) + " is not supported (SD 2.x has none)");
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

nn::ClipTextConfig read_clip_text_config(const nlohmann::json& j, const std::string& path) {
  nn::ClipTextConfig c;
  const JsonFields f(j, path);
  try {
    c.vocab_size = f.integer("vocab_size", c.vocab_size);
    c.hidden_size = f.integer("hidden_size", c.hidden_size);
    c.intermediate_size = f.integer("intermediate_size", c.intermediate_size);
    c.num_hidden_layers = f.integer("num_hidden_layers", c.num_hidden_layers);
    c.num_attention_heads = f.integer("num_attention_heads", c.num_attention_heads);
    c.max_position_embeddings = f.integer("max_position_embeddings", c.max_position_embeddings);
    c.hidden_act = f.text("hidden_act", c.hidden_act);
    c.layer_norm_eps = f.number("layer_norm_eps", c.layer_norm_eps);
    c.eos_token_id = f.integer("eos_token_id", c.eos_token_id);
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

nn::VaeConfig read_vae_config(const std::string& path) { return read_vae_config(read_json(path), path); }
nn::UNetConfig read_unet_config(const std::string& path) { return read_unet_config(read_json(path), path); }
nn::ClipTextConfig read_clip_text_config(const std::string& path) { return read_clip_text_config(read_json(path), path); }

}  // namespace rass::model
