#include "rass/model/seg_init.hpp"

#include <filesystem>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/version.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/config.hpp"
#include "rass/model/lora_surgery.hpp"
#include "rass/model/segment_model.hpp"
#include "rass/model/torch_error.hpp"
#include "rass/nn/lora.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace rass::model {

bool is_seg_preset(const std::string& preset) { return preset == "tiny-seg" || preset == "sd21-base-seg"; }
std::string sd_preset_of(const std::string& preset) {
  return preset == "tiny-seg" || preset == "tiny4" ? "tiny" : preset == "sd21-base-seg" ? "sd21-base" : preset;
}

json seg_unet_preset(const std::string& preset, const json& sd_unet) {
  if (preset == "sd21-base-seg" || preset == "sd21-base") return sd_unet;
  json u = sd_unet;  // tiny-seg, tiny4: four levels so the four up-block taps exist
  u["attention_head_dim"] = {2, 2, 2, 2};
  u["block_out_channels"] = {16, 16, 32, 32};
  u["norm_num_groups"] = 8;
  u["down_block_types"] = {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"};
  u["up_block_types"] = {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"};
  return u;
}

json ras_projection_json(const std::vector<int64_t>& vae_channels, const std::vector<int64_t>& unet_channels,
                         int64_t projection_dim, const std::vector<int>& in_strides, const std::string& vae_source,
                         const std::string& unet_source) {
  if (vae_channels.size() < 4) throw_bad_input(vae_source, "the VAE encoder needs 4 down blocks (RAS taps down_blocks[1] and [3])");
  if (unet_channels.empty()) throw_bad_input(unet_source, "the UNet has no blocks");
  const int64_t factor = int64_t(1) << (vae_channels.size() - 1);
  json fp = {{"feature_dims", {vae_channels[1], vae_channels[3]}}, {"feature_strides", {factor / 2, factor}},
             {"projection_dim", projection_dim}, {"out_features", {"res2", "res3", "res4", "res5"}}};
  const size_t n = unet_channels.size();
  for (size_t i = 0; i < n; ++i) {
    fp["feature_dims"].push_back(unet_channels[n - 1 - i]);  // up block i mirrors down block n-1-i
    fp["feature_strides"].push_back(i + 1 < n ? factor << (n - 2 - i) : factor);
  }
  // The strides the taps give (clamped to 4..32 and grouped as the projection does).
  nn::FeatureProjectionConfig pc;
  pc.feature_dims = fp["feature_dims"].get<std::vector<int64_t>>();
  pc.feature_strides = fp["feature_strides"].get<std::vector<int64_t>>();
  pc.projection_dim = projection_dim;
  pc.out_features = {"res2", "res3", "res4", "res5"};
  std::vector<int> got;
  for (const auto& lv : nn::projection_levels(pc)) got.push_back(int(lv.stride));
  if (got != in_strides) {
    auto str = [](const std::vector<int>& v) {
      std::string s;
      for (int x : v) s += (s.empty() ? "" : ", ") + std::to_string(x);
      return s;
    };
    std::vector<int> up(pc.feature_strides.begin() + 2, pc.feature_strides.end());
    throw_bad_input(unet_source, "a UNet of " + std::to_string(n) + " levels gives features at strides " + str(up) +
                                     " (with the VAE's " + str({int(factor / 2), int(factor)}) + ": levels at " + str(got) +
                                     "), but the head takes strides " + str(in_strides) +
                                     "; RAS needs a 4-level UNet as SD's (rass-model init --preset tiny4 writes a tiny one; "
                                     "rass-merge-lora init-seg --head none writes the folder without a head)");
  }
  return fp;
}

nn::MaskFormerHeadConfig tiny_head_config() {
  nn::MaskFormerHeadConfig h;
  h.num_queries = 8;
  h.hidden_dim = 32;
  h.nheads = 4;
  h.dim_feedforward = 64;
  h.dec_layers = 4;
  h.mask_dim = 32;
  h.conv_dim = 32;
  h.enc_layers = 1;
  h.enc_dim_feedforward = 64;
  h.enc_nheads = 4;
  h.in_channels = {128, 128, 128, 128};
  return h;
}

json segment_json(const json& fp, const nn::MaskFormerHeadConfig& head, const json& classes, int timestep,
                  const std::string& prompt_style, const std::string& source) {
  return {{"architecture", "rass"},
          {"feature_projection", fp},
          {"head", json::parse(nn::to_json(head).dump())},
          {"classes", classes},
          {"timestep", timestep},
          {"prompt_style", prompt_style},
          {"input", {{"min_size_test", 512}, {"max_size_test", 2048}, {"size_divisibility", 8}}},
          {"source", source}};
}

namespace {

void write_json_pretty(const std::string& path, const json& j) { write_file_atomic(path, json_file_text(j, path, 2) + "\n"); }

void save_params(torch::nn::Module& m, torch::ScalarType dtype, const std::string& path,
                 const std::map<std::string, std::string>& meta) {
  std::vector<torch::Tensor> keep;
  std::vector<TensorToWrite> out;
  for (const auto& p : m.named_parameters(true)) {
    torch::Tensor t = p.value().detach().to(dtype).contiguous();
    keep.push_back(t);
    out.push_back({p.key(), file_dtype(t.scalar_type()), std::vector<int64_t>(t.sizes().begin(), t.sizes().end()),
                   t.data_ptr(), size_t(t.nbytes())});
  }
  write_safetensors(path, out, meta);
}

// Random B for every layer of an adapter (PEFT's gaussian init leaves B = 0,
// which would make the adapter a no-op in a random test model).
void randomise_b(torch::nn::Module& unet, const std::string& adapter, double std) {
  torch::NoGradGuard ng;
  for (auto& p : unet.named_parameters(true)) {
    std::string a;
    if (nn::is_lora_parameter(p.key(), &a) && a == adapter && p.key().find(".lora_B.") != std::string::npos)
      p.value().normal_(0.0, std);
  }
}

}  // namespace

void write_seg_head(const std::string& path, const SegmentFolderConfig& cfg, uint64_t seed, torch::ScalarType dtype,
                    const std::map<std::string, std::string>& metadata) {
  torch::NoGradGuard ng;
  torch::manual_seed(seed);
  SegHeads heads(cfg.projection, cfg.head);
  save_params(*heads, dtype, path, metadata);
}

void write_seg_parts(const std::string& dir, const std::string& preset, uint64_t seed, const std::string& dtype_name) {
  const torch::ScalarType dtype =
      dtype_name == "fp16" ? torch::kHalf : dtype_name == "bf16" ? torch::kBFloat16 : torch::kFloat;
  const bool tiny = preset == "tiny-seg";
  torch::NoGradGuard ng;
  // unet/ -> unet_plain/, then unet/ = plain + a merged random "SCR" LoRA.
  fs::rename(dir + "/unet", dir + "/unet_plain");
  make_directories(dir + "/unet");
  write_file_atomic(dir + "/unet/config.json", read_file_bytes(dir + "/unet_plain/config.json"));
  const nn::UNetConfig ucfg = read_unet_config(dir + "/unet/config.json");
  nn::UNet2DCondition unet = for_config(dir + "/unet/config.json", [&] { return nn::UNet2DCondition(ucfg); });
  load_component(*unet, dir + "/unet_plain");
  unet->to(torch::kFloat);
  torch::manual_seed(seed + 10);
  const LoraTargetGroups scr = osediff_targets(*unet, true);
  std::map<std::string, nn::LoraLayer*> by_path;
  for (auto& [p, l] : nn::lora_layers(*unet)) by_path[p] = l;
  for (const auto* group : {&scr.encoder, &scr.decoder, &scr.others})
    for (const auto& p : *group) by_path.at(p)->add_adapter("scr", 4, 8.0, true);
  randomise_b(*unet, "scr", 0.02);
  nn::merge_and_unload_lora(*unet);
  save_params(*unet, dtype, dir + "/unet/diffusion_pytorch_model.safetensors",
              {{"format", "pt"}, {"rass", "random UNet + a random SCR-like LoRA merged (rass-model init " + preset + ")"}});

  // The Seg LoRA as RASS's unet_lora builds it (targets without conv_out), alpha 8 (PEFT's default).
  torch::manual_seed(seed + 11);
  const LoraTargetGroups g = osediff_targets(*unet, false);
  by_path.clear();
  for (auto& [p, l] : nn::lora_layers(*unet)) by_path[p] = l;
  const std::vector<std::pair<std::string, const std::vector<std::string>*>> groups = {
      {"default_encoder_s2", &g.encoder}, {"default_decoder_s2", &g.decoder}, {"default_others_s2", &g.others}};
  std::vector<std::string> names;
  for (const auto& [name, paths] : groups) {
    for (const auto& p : *paths) by_path.at(p)->add_adapter(name, 4, 8.0, true);
    randomise_b(*unet, name, 0.02);
    names.push_back(name);
  }
  save_named_adapters(*unet, names, dir + "/seg_lora.safetensors",
                      {{"format", "pt"}, {"lora_alpha", "8"}, {"rank", "4"},
                       {"adapters", "default_encoder_s2,default_decoder_s2,default_others_s2"}});

  // segment.json: the projection from the taps' channels, the head preset.
  const nn::VaeConfig vcfg = read_vae_config(dir + "/vae/config.json");
  nn::MaskFormerHeadConfig h = tiny ? tiny_head_config() : nn::MaskFormerHeadConfig{};  // else the released head
  const json fp = ras_projection_json(vcfg.block_out_channels, ucfg.block_out_channels, h.in_channels.front(),
                                      h.in_strides, dir + "/vae/config.json", dir + "/unet/config.json");
  write_json_pretty(dir + "/segment.json",
             segment_json(fp, h, "ade20k", 1, "rass",
                          "rass-model init --preset " + preset + " --seed " + std::to_string(seed) + " (random weights)"));
  const SegmentFolderConfig cfg = read_segment_config(dir);
  write_seg_head(dir + "/seg_head.safetensors", cfg, seed + 12, dtype, {{"format", "pt"}});
  write_json_pretty(dir + "/rass.json", {{"method", "scr"}, {"timestep", 1}, {"prompt_style", "rass"},
                                  {"tool", "rass-model init --preset " + preset}, {"version", rass::version()}});
}

}  // namespace rass::model
