#include "rass/model/model_init.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/config.hpp"
#include "rass/model/device.hpp"
#include "rass/model/model_folder.hpp"
#include "rass/model/seg_init.hpp"
#include "rass/model/torch_error.hpp"
#include "rass/nn/clip_text.hpp"
#include "rass/nn/unet.hpp"
#include "rass/nn/vae.hpp"
#include "rass/scenes/generate.hpp"
#include "rass/text/bpe_vocab.hpp"
#include "rass/text/clip_tokenizer.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace rass::model {

namespace {

// The versions whose file formats the folder follows (and that loaded it in
// the check the README reports).
constexpr const char* kDiffusersVersion = "0.25.1";
constexpr const char* kTransformersVersion = "4.36.2";

json unet_preset(const std::string& preset) {
  if (preset == "sd21-base")  // stabilityai/stable-diffusion-2-1-base unet/config.json
    return {{"_class_name", "UNet2DConditionModel"},
            {"_diffusers_version", kDiffusersVersion},
            {"act_fn", "silu"},
            {"attention_head_dim", {5, 10, 20, 20}},
            {"block_out_channels", {320, 640, 1280, 1280}},
            {"center_input_sample", false},
            {"cross_attention_dim", 1024},
            {"down_block_types", {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"}},
            {"downsample_padding", 1},
            {"dual_cross_attention", false},
            {"flip_sin_to_cos", true},
            {"freq_shift", 0},
            {"in_channels", 4},
            {"layers_per_block", 2},
            {"mid_block_scale_factor", 1},
            {"norm_eps", 1e-05},
            {"norm_num_groups", 32},
            {"num_class_embeds", nullptr},
            {"only_cross_attention", false},
            {"out_channels", 4},
            {"sample_size", 64},
            {"up_block_types", {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"}},
            {"use_linear_projection", true}};
  // mini: the mini world's backbone (make mini-model pretrains it on
  // rass-scenes): SD's four levels and block types (RAS taps four up blocks),
  // 16x16 latents of 128x128 scenes, heads of 16 channels.
  if (preset == "mini")
    return {{"_class_name", "UNet2DConditionModel"},
            {"_diffusers_version", kDiffusersVersion},
            {"act_fn", "silu"},
            {"attention_head_dim", {2, 4, 4, 4}},
            {"block_out_channels", {32, 64, 64, 64}},
            {"cross_attention_dim", 64},
            {"down_block_types", {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"}},
            {"in_channels", 4},
            {"layers_per_block", 1},
            {"norm_num_groups", 8},
            {"out_channels", 4},
            {"sample_size", 16},
            {"up_block_types", {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"}},
            {"use_linear_projection", true}};
  // tiny: the SD 2.x block structure (cross-attention down, plain down, plain
  // up, cross-attention up, linear projections) at a size that runs in
  // milliseconds; cross_attention_dim = the tiny text encoder's width.
  return {{"_class_name", "UNet2DConditionModel"},
          {"_diffusers_version", kDiffusersVersion},
          {"act_fn", "silu"},
          {"attention_head_dim", {2, 4}},
          {"block_out_channels", {32, 64}},
          {"cross_attention_dim", 32},
          {"down_block_types", {"CrossAttnDownBlock2D", "DownBlock2D"}},
          {"in_channels", 4},
          {"layers_per_block", 1},
          {"norm_num_groups", 8},
          {"out_channels", 4},
          {"sample_size", 8},
          {"up_block_types", {"UpBlock2D", "CrossAttnUpBlock2D"}},
          {"use_linear_projection", true}};
}

json vae_preset(const std::string& preset) {
  const bool sd = preset == "sd21-base", mini = preset == "mini";
  // Four blocks in every preset, so the latent is 1/8 of the image as in SD.
  const json channels = sd ? json{128, 256, 512, 512} : mini ? json{16, 32, 64, 64} : json{8, 16, 16, 16};
  return {{"_class_name", "AutoencoderKL"},
          {"_diffusers_version", kDiffusersVersion},
          {"act_fn", "silu"},
          {"block_out_channels", channels},
          {"down_block_types", {"DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"}},
          {"in_channels", 3},
          {"latent_channels", 4},
          {"layers_per_block", sd ? 2 : 1},
          {"norm_num_groups", sd ? 32 : mini ? 8 : 4},
          {"out_channels", 3},
          {"sample_size", sd ? 512 : mini ? 128 : 64},
          {"scaling_factor", 0.18215},
          {"up_block_types", {"UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"}}};
}

// transformers CLIPTextConfig. vocab_size and the special ids follow the
// tokenizer written beside it.
json text_encoder_preset(const std::string& preset, int64_t vocab_size, int bos, int eos, int pad) {
  const bool sd = preset == "sd21-base";
  const int64_t width = sd ? 1024 : preset == "mini" ? 64 : 32;
  return {{"architectures", {"CLIPTextModel"}},
          {"attention_dropout", 0.0},
          {"bos_token_id", bos},
          {"dropout", 0.0},
          {"eos_token_id", eos},
          {"hidden_act", "gelu"},
          {"hidden_size", width},
          {"initializer_factor", 1.0},
          {"initializer_range", 0.02},
          {"intermediate_size", sd ? 4096 : width * 2},
          {"layer_norm_eps", 1e-05},
          {"max_position_embeddings", 77},
          {"model_type", "clip_text_model"},
          {"num_attention_heads", sd ? 16 : 4},
          {"num_hidden_layers", sd ? 23 : 2},
          {"pad_token_id", pad},
          {"projection_dim", sd ? 512 : width},
          {"torch_dtype", "float32"},
          {"transformers_version", kTransformersVersion},
          {"vocab_size", vocab_size}};
}

// SD 2.1-base's noise schedule in DDPMScheduler form (what OSEDiff loads
// from scheduler/), clip_sample false: DDPMScheduler's own default (true)
// would clamp the one-step x0 to [-1, 1].
json scheduler_config() {
  return {{"_class_name", "DDPMScheduler"},
          {"_diffusers_version", kDiffusersVersion},
          {"beta_end", 0.012},
          {"beta_schedule", "scaled_linear"},
          {"beta_start", 0.00085},
          {"clip_sample", false},
          {"clip_sample_range", 1.0},
          {"dynamic_thresholding_ratio", 0.995},
          {"num_train_timesteps", 1000},
          {"prediction_type", "epsilon"},
          {"sample_max_value", 1.0},
          {"steps_offset", 1},
          {"thresholding", false},
          {"timestep_spacing", "leading"},
          {"trained_betas", nullptr},
          {"variance_type", "fixed_small"}};
}

json model_index() {
  return {{"_class_name", "StableDiffusionPipeline"},
          {"_diffusers_version", kDiffusersVersion},
          {"feature_extractor", {nullptr, nullptr}},
          {"requires_safety_checker", false},
          {"safety_checker", {nullptr, nullptr}},
          {"scheduler", {"diffusers", "DDPMScheduler"}},
          {"text_encoder", {"transformers", "CLIPTextModel"}},
          {"tokenizer", {"transformers", "CLIPTokenizer"}},
          {"unet", {"diffusers", "UNet2DConditionModel"}},
          {"vae", {"diffusers", "AutoencoderKL"}}};
}

void write_json(const std::string& path, const json& j) { write_file_atomic(path, json_file_text(j, path, 2) + "\n"); }

// The tokenizer of the tiny presets: CLIP's byte-level layout with no merges
// (every character a token; real text still tokenizes, into more tokens than
// with SD's 49k-entry vocabulary, which cannot be downloaded here: pass
// --tokenizer to copy it in). The mini preset's: merges learned so that every
// word of rass-scenes' tags and captions is one token.
void write_preset_tokenizer(const std::string& preset, const std::string& dir) {
  if (preset == "mini") text::write_clip_tokenizer(text::learn_word_bpe(scenes::scene_words()), dir, "rass-mini-words");
  else text::write_clip_tokenizer(text::learn_word_bpe({}), dir, "rass-byte-level");
}

void copy_tokenizer(const std::string& from, const std::string& dir) {
  for (const char* f : {"vocab.json", "merges.txt"})
    if (!file_exists(from + "/" + f)) throw_bad_input(from, std::string("--tokenizer: no ") + f + " in this folder");
  for (const char* f : {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"})
    if (file_exists(from + "/" + f))  // text: /dev/zero refused at once, not copied until the disk is full
      write_file_atomic(dir + "/" + f, read_text_file_bytes(from + "/" + f, kMaxJsonFileBytes));
}

// Highest token id + 1 of a vocab.json (the text encoder's minimum vocab_size).
int64_t vocab_extent(const std::string& vocab_path) {
  const json v = read_json_file(vocab_path);
  int64_t hi = -1;
  for (const auto& [k, id] : v.items())
    if (id.is_number_integer()) hi = std::max<int64_t>(hi, id.get<int64_t>());
  return hi + 1;
}

// Every floating parameter of `m` (already initialised), in `dtype`, written
// under the module's own names: they are the diffusers/transformers keys.
void save_module(torch::nn::Module& m, torch::ScalarType dtype, const std::string& path) {
  m.to(dtype);
  std::vector<torch::Tensor> keep;
  std::vector<TensorToWrite> out;
  for (const auto& p : m.named_parameters(true)) {
    torch::Tensor t = p.value().detach().contiguous();
    keep.push_back(t);
    out.push_back({p.key(), file_dtype(t.scalar_type()), std::vector<int64_t>(t.sizes().begin(), t.sizes().end()),
                   t.data_ptr(), size_t(t.nbytes())});
  }
  write_safetensors(path, out, {{"format", "pt"}});
}

// transformers' CLIPPreTrainedModel._init_weights for the text tower.
void init_clip(nn::ClipTextModelImpl& clip, const nn::ClipTextConfig& c, double factor) {
  torch::NoGradGuard no_grad;
  const double d = double(c.hidden_size), layers = double(c.num_hidden_layers);
  const double in_proj_std = std::pow(d, -0.5) * std::pow(2 * layers, -0.5) * factor;
  const double out_proj_std = std::pow(d, -0.5) * factor;
  const double fc_std = std::pow(2 * d, -0.5) * factor;
  for (auto& p : clip.named_parameters(true)) {
    const std::string& k = p.key();
    torch::Tensor t = p.value();
    auto ends = [&](const std::string& s) { return k.size() >= s.size() && k.compare(k.size() - s.size(), s.size(), s) == 0; };
    if (ends("token_embedding.weight") || ends("position_embedding.weight")) t.normal_(0.0, 0.02 * factor);
    else if (ends("q_proj.weight") || ends("k_proj.weight") || ends("v_proj.weight")) t.normal_(0.0, in_proj_std);
    else if (ends("out_proj.weight")) t.normal_(0.0, out_proj_std);
    else if (ends("fc1.weight")) t.normal_(0.0, fc_std);
    else if (ends("fc2.weight")) t.normal_(0.0, in_proj_std);
    else if (ends(".bias")) t.zero_();  // Linear and LayerNorm biases
    else if (k.find("layer_norm") != std::string::npos && ends(".weight")) t.fill_(1.0);
  }
}

void build(const InitJob& a, const std::string& dir) {
  const torch::ScalarType dtype = parse_dtype(a.dtype);
  auto note = [&](const std::string& s) {
    if (!a.quiet) std::fprintf(stderr, "rass-model: %s\n", printable_message(s).c_str());
  };

  // Tokenizer first: the text encoder's vocabulary and special ids follow it.
  make_directories(dir + "/tokenizer");
  if (a.tokenizer.empty()) write_preset_tokenizer(sd_preset_of(a.preset), dir + "/tokenizer");
  else copy_tokenizer(a.tokenizer, dir + "/tokenizer");
  const text::ClipTokenizer tok = text::ClipTokenizer::load(dir + "/tokenizer");
  const int64_t vocab = vocab_extent(dir + "/tokenizer/vocab.json");

  // Configs: the preset's, or the files given (validated by this project's
  // readers, copied verbatim so diffusers/transformers read what the user wrote).
  // A given file is read once: `--unet-config <(...)` is a pipe.
  struct Placed {
    nlohmann::json j;
    std::string name;  // the file as messages name it
  };
  make_directories(dir + "/unet");
  make_directories(dir + "/vae");
  make_directories(dir + "/text_encoder");
  make_directories(dir + "/scheduler");
  auto place = [&](const std::string& given, const json& preset, const std::string& to) -> Placed {
    if (given.empty()) {
      write_json(to, preset);
      return {nlohmann::json(preset), to};
    }
    const std::vector<uint8_t> bytes = read_text_file_bytes(given, kMaxJsonFileBytes);  // /dev/zero: refused at once
    Placed p{nlohmann::json(parse_json_file_text(bytes, given)), given};
    write_file_atomic(to, bytes);
    return p;
  };
  const std::string sd = sd_preset_of(a.preset);  // segmentation presets: the SD preset under them
  // tiny4: the tiny SD folder with tiny-seg's 4-level UNet, where the SCR ->
  // init-seg -> RAS chain starts (RAS taps four up blocks).
  const bool four_levels = is_seg_preset(a.preset) || a.preset == "tiny4";
  const Placed unet_cfg = place(a.unet_config, four_levels ? seg_unet_preset(a.preset, unet_preset(sd)) : unet_preset(sd),
        dir + "/unet/config.json");
  const Placed vae_cfg = place(a.vae_config, vae_preset(sd), dir + "/vae/config.json");
  const int64_t te_vocab = sd == "sd21-base" ? std::max<int64_t>(49408, vocab) : vocab;
  const Placed te_cfg = place(a.text_encoder_config, text_encoder_preset(sd, te_vocab, tok.bos(), tok.eos(), tok.pad()),
        dir + "/text_encoder/config.json");
  write_json(dir + "/scheduler/scheduler_config.json", scheduler_config());
  write_json(dir + "/model_index.json", model_index());

  const nn::UNetConfig ucfg = read_unet_config(unet_cfg.j, unet_cfg.name);
  const nn::VaeConfig vcfg = read_vae_config(vae_cfg.j, vae_cfg.name);
  const nn::ClipTextConfig ccfg = read_clip_text_config(te_cfg.j, te_cfg.name);
  if (ccfg.vocab_size < vocab)
    throw_bad_input(te_cfg.name, "vocab_size " + std::to_string(ccfg.vocab_size) + " is smaller than the tokenizer's " +
                                    std::to_string(vocab) + " tokens");
  if (ccfg.max_position_embeddings < 77)
    throw_bad_input(te_cfg.name, "max_position_embeddings " + std::to_string(ccfg.max_position_embeddings) +
                                    " is under the 77 tokens of a Stable Diffusion prompt");
  if (ucfg.cross_attention_dim != ccfg.hidden_size)
    throw_bad_input(a.unet_config.empty() ? te_cfg.name : a.unet_config,
                    "the UNet's cross_attention_dim " + std::to_string(ucfg.cross_attention_dim) +
                        " differs from the text encoder's hidden_size " + std::to_string(ccfg.hidden_size));
  if (ucfg.in_channels != vcfg.latent_channels || ucfg.out_channels != vcfg.latent_channels)
    throw_bad_input(a.unet_config.empty() ? a.vae_config : a.unet_config,
                    "the UNet's in/out channels do not match the VAE's latent_channels " +
                        std::to_string(vcfg.latent_channels));

  // One component at a time, so the peak memory is the largest one (the
  // SD 2.1-base UNet: 3.5 GB in fp32).
  {
    torch::manual_seed(a.seed);
    nn::UNet2DCondition unet = for_config(unet_cfg.name, [&] { return nn::UNet2DCondition(ucfg); });
    save_module(*unet, dtype, dir + "/unet/diffusion_pytorch_model.safetensors");
    note("unet: " + std::to_string(ucfg.block_out_channels.size()) + " blocks, written");
  }
  {
    torch::manual_seed(a.seed + 1);
    nn::AutoencoderKL vae = for_config(vae_cfg.name, [&] { return nn::AutoencoderKL(vcfg); });
    save_module(*vae, dtype, dir + "/vae/diffusion_pytorch_model.safetensors");
    note("vae written");
  }
  {
    torch::manual_seed(a.seed + 2);
    nn::ClipTextModel clip = for_config(te_cfg.name, [&] { return nn::ClipTextModel(ccfg); });
    init_clip(*clip, ccfg, te_cfg.j.value("initializer_factor", 1.0));  // an object: read_clip_text_config checked
    save_module(*clip, dtype, dir + "/text_encoder/model.safetensors");
    note("text_encoder written");
  }
  if (is_seg_preset(a.preset)) {
    write_seg_parts(dir, a.preset, a.seed, a.dtype);
    note("segmentation parts written (unet with a random SCR merged, unet_plain, seg_lora, seg_head, segment.json)");
  }
}

}  // namespace

void init_model_folder(const InitJob& a) {
  if (a.preset != "tiny" && a.preset != "tiny4" && a.preset != "mini" && a.preset != "sd21-base" && !is_seg_preset(a.preset))
    throw_usage("--preset " + a.preset + ": expected tiny, tiny4, mini, sd21-base, tiny-seg or sd21-base-seg");
  parse_dtype(a.dtype);
  if (a.output.empty()) throw_usage("init needs the folder to create");
  // Built under a temporary name in the same parent, then renamed: a failed
  // or interrupted init leaves no half-written model behind. An empty folder
  // (a script's mkdir -p) is taken over, if it is still empty then.
  FolderWriter w(a.output, FolderWriter::Existing::empty_only);
  build(a, w.tmp());
  w.commit();
}

}  // namespace rass::model
