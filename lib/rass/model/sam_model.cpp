#include "rass/model/sam_model.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>

#include <torch/nn/functional/upsampling.h>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/found_file.hpp"
#include "rass/core/json_fields.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/mask_regions.hpp"
#include "rass/core/sam_crops.hpp"
#include "rass/degrade/pil_resize.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/config.hpp"
#include "rass/model/device.hpp"
#include "rass/model/torch_error.hpp"
#include "rass/nn/clip_text.hpp"
#include "rass/nn/ddpm.hpp"
#include "rass/text/clip_tokenizer.hpp"

namespace F = torch::nn::functional;

namespace rass::model {

namespace {

// Huge or damaged weights (or a config value that passes its range check
// but overflows, such as a tiny enhancer feat_weight) give NaN logits, which
// compare false everywhere: an empty mask, exit 0, a record of nulls.
void require_finite(const torch::Tensor& t, const std::string& what) {
  if (t.defined() && t.numel() > 0 && !torch::isfinite(t).all().item<bool>())
    throw_runtime(what + " hold non-finite values (NaN or infinity): the model's weights or config overflow "
                         "(damaged weights? with --dtype fp16 or bf16 try fp32)");
}

}  // namespace

namespace {

// A sam.json's variant or its sizes: `preset` of the variant (or of
// `fallback` when every size field is given instead); "custom" when any
// size field overrides it. Error(bad_input) naming the file otherwise.
template <class Config>
Config read_sam_variant(const JsonFields& f, SamFolderConfig& c, const std::vector<const char*>& sizes,
                        const std::string& variants, const std::string& fallback,
                        Config (*preset)(const std::string&)) {
  bool overridden = false;
  std::string missing;
  for (const char* k : sizes) {
    overridden = overridden || f.has(k);
    if (!f.has(k)) missing += std::string(missing.empty() ? "" : ", ") + k;
  }
  if (!f.has("variant") && !missing.empty())
    throw_bad_input(c.path, "no variant (" + variants + ") and not every size: missing " + missing);
  c.variant = f.text("variant", "custom");
  Config out;
  try {
    out = preset(f.has("variant") ? c.variant : fallback);
  } catch (const Error&) {
    throw_bad_input(c.path, "variant '" + c.variant + "': expected " + variants);
  }
  if (overridden) c.variant = "custom";
  return out;
}

// A size field: a whole number in 1..65536, `v` when absent.
void read_sam_size(const JsonFields& f, const std::string& path, const char* key, int64_t& v) {
  v = f.integer(key, v);
  if (v <= 0 || v > 65536) throw_bad_input(path, std::string(key) + " = " + std::to_string(v) + " is out of range");
}

// sam.json of a SAM 2 folder: the variant, or every Hiera size field.
void read_sam2_fields(const nlohmann::json& j, const JsonFields& f, SamFolderConfig& c) {
  c.sam2 = read_sam_variant(f, c,
                            {"image_size", "embed_dim", "num_heads", "stages", "global_att_blocks", "window_spec",
                             "window_pos_embed_bkg_spatial_size", "prompt_embed_dim"},
                            "hiera_t, hiera_s, hiera_b+ or hiera_l", "hiera_b+", &nn::sam2_preset);
  nn::Sam2Config& s = c.sam2;
  auto positive = [&](const char* key, int64_t& v) { read_sam_size(f, c.path, key, v); };
  positive("image_size", s.heads.image_size);
  positive("embed_dim", s.embed_dim);
  positive("num_heads", s.num_heads);
  positive("prompt_embed_dim", s.heads.prompt_embed_dim);
  auto list = [&](const char* key, std::vector<int64_t>& v, size_t n, int64_t lo) {
    v = f.integers(key, v);
    if (n && v.size() != n)
      throw_bad_input(c.path, std::string(key) + " has " + std::to_string(v.size()) + " entries, SAM 2 has " +
                                  std::to_string(n));
    for (int64_t x : v)
      if (x < lo || x > 65536) throw_bad_input(c.path, std::string(key) + " holds " + std::to_string(x));
  };
  // Four stages: the neck drops the coarsest level and the decoder takes the other three.
  list("stages", s.stages, 4, 1);
  list("window_spec", s.window_spec, 4, 1);
  list("global_att_blocks", s.global_att_blocks, 0, 0);
  std::vector<int64_t> bkg{s.window_pos_embed_bkg_spatial_size[0], s.window_pos_embed_bkg_spatial_size[1]};
  list("window_pos_embed_bkg_spatial_size", bkg, 2, 1);
  s.window_pos_embed_bkg_spatial_size = {bkg[0], bkg[1]};
  for (int64_t i : s.global_att_blocks)
    if (i >= s.depth())
      throw_bad_input(c.path, "global_att_blocks names block " + std::to_string(i) + " of " + std::to_string(s.depth()));
  // The trunk halves the 4-pixel patch grid three times; the window
  // position embedding tiles the grid.
  if (s.heads.image_size % 32 != 0 || (s.heads.image_size / 4) % s.window_spec[0] != 0)
    throw_bad_input(c.path, "image_size " + std::to_string(s.heads.image_size) +
                                " is not a multiple of 32 whose quarter the first window (" +
                                std::to_string(s.window_spec[0]) + ") divides");
  // The released models run at 1024; beyond 2048 a global block's attention
  // alone outgrows most machines.
  if (s.heads.image_size > 2048)
    throw_bad_input(c.path, "image_size " + std::to_string(s.heads.image_size) +
                                ": rass-sam runs SAM 2 at up to 2048 (the released models use 1024)");
  // A window wider than its stage's map is padded with zeros (no released
  // config has one; a wide one only costs memory).
  for (size_t k = 0; k < s.window_spec.size(); ++k)
    if (s.window_spec[k] > (s.heads.image_size / 4) >> k)
      throw_bad_input(c.path, "window_spec[" + std::to_string(k) + "] = " + std::to_string(s.window_spec[k]) +
                                  " is wider than stage " + std::to_string(k + 1) + "'s " +
                                  std::to_string((s.heads.image_size / 4) >> k) + "-pixel map");
  for (const nn::Sam2Config::Block& b : s.blocks())
    if (b.dim_out % b.heads != 0)
      throw_bad_input(c.path, "a Hiera width of " + std::to_string(b.dim_out) + " is not a multiple of its " +
                                  std::to_string(b.heads) + " heads");
  if (s.heads.prompt_embed_dim % 16 != 0)
    throw_bad_input(c.path, "prompt_embed_dim is not a multiple of 16 (8 decoder heads at half width)");
  if (f.flag("robust", false) || f.flag("hq", false))
    throw_bad_input(c.path, "robust / hq: RobustSAM and HQ-SAM are built on SAM v1, not SAM 2");
  if (j.contains("enhancer") && !j["enhancer"].is_null())
    throw_bad_input(c.path, "enhancer: GleSAM's enhancement is built for SAM v1 here (its released code has no "
                            "SAM 2 path)");
  c.sam = s.heads;
}

}  // namespace

SamFolderConfig read_sam_config(const std::string& dir) {
  SamFolderConfig c;
  c.path = dir + "/sam.json";
  if (!path_entry_exists(c.path)) {
    std::error_code ec;
    const auto st = std::filesystem::status(dir, ec);  // a missing path or a link loop: say so
    if (ec || st.type() == std::filesystem::file_type::not_found)
      throw_bad_input(dir, std::string("cannot open the model folder: ") +
                               (ec ? ec.message() : std::string("No such file or directory")));
    if (st.type() != std::filesystem::file_type::directory)
      throw_bad_input(dir, "is not a folder (a SAM model folder holds sam.json and sam.safetensors)");
    throw_bad_input(dir, "is not a SAM model folder (no sam.json; scripts/convert_sam.py writes one)");
  }
  const nlohmann::json j(read_found_json(c.path, /*unique_keys=*/true));
  if (!j.is_object()) throw_bad_input(c.path, "is not a JSON object");
  const JsonFields f(j, c.path);
  c.architecture = f.text("architecture", "");
  if (c.architecture == "sam2") {
    read_sam2_fields(j, f, c);
    return c;
  }
  if (c.architecture != "sam")
    throw_bad_input(c.path, "architecture '" + c.architecture + "': rass-sam runs SAM (\"sam\") and SAM 2 (\"sam2\")");
  // A variant gives every size; fields beside it override them (then the
  // model is "custom"). Without a variant every size field must be given.
  c.sam = read_sam_variant(f, c,
                           {"image_size", "patch_size", "embed_dim", "depth", "num_heads", "window_size",
                            "prompt_embed_dim", "mask_in_chans", "decoder_depth", "decoder_heads", "decoder_mlp_dim",
                            "attention_downsample_rate", "num_multimask_outputs", "iou_head_depth",
                            "iou_head_hidden_dim", "mlp_ratio", "global_attn_indexes", "use_rel_pos"},
                           "vit_b, vit_l or vit_h", "vit_b", &nn::sam_preset);
  nn::SamConfig& s = c.sam;
  auto positive = [&](const char* key, int64_t& v) { read_sam_size(f, c.path, key, v); };
  positive("image_size", s.image_size);
  positive("patch_size", s.patch_size);
  positive("embed_dim", s.embed_dim);
  positive("depth", s.depth);
  positive("num_heads", s.num_heads);
  positive("window_size", s.window_size);
  positive("prompt_embed_dim", s.prompt_embed_dim);
  positive("mask_in_chans", s.mask_in_chans);
  positive("decoder_depth", s.decoder_depth);
  positive("decoder_heads", s.decoder_heads);
  positive("decoder_mlp_dim", s.decoder_mlp_dim);
  positive("attention_downsample_rate", s.attention_downsample_rate);
  positive("num_multimask_outputs", s.num_multimask_outputs);
  positive("iou_head_depth", s.iou_head_depth);
  positive("iou_head_hidden_dim", s.iou_head_hidden_dim);
  s.mlp_ratio = f.number("mlp_ratio", s.mlp_ratio);
  if (!(s.mlp_ratio > 0 && s.mlp_ratio <= 64)) throw_bad_input(c.path, "mlp_ratio is out of range");
  s.use_rel_pos = f.flag("use_rel_pos", s.use_rel_pos);
  s.global_attn_indexes = f.integers("global_attn_indexes", s.global_attn_indexes);
  if (s.image_size % s.patch_size != 0)
    throw_bad_input(c.path, "image_size " + std::to_string(s.image_size) + " is not a multiple of patch_size " +
                                std::to_string(s.patch_size));
  if (s.embed_dim % s.num_heads != 0 || s.prompt_embed_dim % 8 != 0 || s.mask_in_chans % 4 != 0 ||
      (s.prompt_embed_dim / s.attention_downsample_rate) % s.decoder_heads != 0 || s.prompt_embed_dim % 2 != 0)
    throw_bad_input(c.path, "the widths do not divide as SAM needs (embed_dim by num_heads, prompt_embed_dim by 8 and "
                            "by attention_downsample_rate x decoder_heads, mask_in_chans by 4)");
  for (int64_t i : s.global_attn_indexes)
    if (i < 0 || i >= s.depth)
      throw_bad_input(c.path, "global_attn_indexes names block " + std::to_string(i) + " of " + std::to_string(s.depth));
  s.robust = f.flag("robust", false);
  s.hq = f.flag("hq", false);
  if (s.robust && s.hq) throw_bad_input(c.path, "robust and hq: a decoder is RobustSAM's or HQ-SAM's, not both");
  if (s.hq && s.global_attn_indexes.empty())
    throw_bad_input(c.path, "hq: HQ-SAM takes its early features from the first global-attention block, and "
                            "global_attn_indexes is empty");
  if (s.robust && s.global_attn_indexes.empty())
    throw_bad_input(c.path, "robust: RobustSAM takes its early features from the first global-attention block, and "
                            "global_attn_indexes is empty");
  if (s.robust && s.prompt_embed_dim % (s.num_multimask_outputs + 1) != 0)
    throw_bad_input(c.path, "robust: RobustSAM's token block needs prompt_embed_dim a multiple of the mask tokens");
  if (j.contains("enhancer") && !j["enhancer"].is_null()) {
    if (!j["enhancer"].is_object()) throw_bad_input(c.path, "enhancer must be an object (or absent)");
    const JsonFields e(j["enhancer"], c.path + " (enhancer)");
    c.enhancer = true;
    c.feat_weight = e.number("feat_weight", c.feat_weight);
    if (!(c.feat_weight > 0 && c.feat_weight < 1e6)) throw_bad_input(c.path, "enhancer.feat_weight must be in (0, 1e6)");
    const int64_t t = e.integer("timestep", c.timestep);
    if (t < 0 || t > 1000000) throw_bad_input(c.path, "enhancer.timestep " + std::to_string(t) + " is out of range");
    c.timestep = int(t);
    c.prompt = e.text("prompt", "");
  }
  return c;
}

namespace {

// The weights hold `name` with the shape the config gives it; Error(bad_input)
// naming the file that lacks it, or both files when the shapes differ.
void expect_sam_tensor(const SamFolderConfig& c, const SafeTensorsFile& file, const std::string& model,
                       const std::string& name, const std::vector<int64_t>& shape) {
  const TensorView* v = file.find(name);
  if (!v) throw_bad_input(file.path(), "has no " + name + " (" + c.path + " describes a " + model + " that has one)");
  if (v->shape != shape)
    throw_bad_input(c.path, "does not fit " + file.path() + ": " + name + " is " + shape_str(v->shape) +
                                " there, the config makes it " + shape_str(shape));
}

void check_sam2_sizes(const SamFolderConfig& c, const SafeTensorsFile& file) {
  const nn::Sam2Config& s = c.sam2;
  const int64_t d = s.heads.prompt_embed_dim;
  auto expect = [&](const std::string& name, std::vector<int64_t> shape) {
    expect_sam_tensor(c, file, "SAM 2", name, shape);
  };
  const std::string t = "image_encoder.trunk.";
  expect(t + "patch_embed.proj.weight", {s.embed_dim, 3, 7, 7});
  expect(t + "pos_embed", {1, s.embed_dim, s.window_pos_embed_bkg_spatial_size[0], s.window_pos_embed_bkg_spatial_size[1]});
  expect(t + "pos_embed_window", {1, s.embed_dim, s.window_spec[0], s.window_spec[0]});
  const std::vector<nn::Sam2Config::Block> blocks = s.blocks();
  for (size_t i = 0; i < blocks.size(); ++i) {
    const std::string b = t + "blocks." + std::to_string(i) + ".";
    expect(b + "attn.qkv.weight", {3 * blocks[i].dim_out, blocks[i].dim});
    expect(b + "mlp.layers.0.weight", {int64_t(double(blocks[i].dim_out) * s.mlp_ratio), blocks[i].dim_out});
  }
  if (file.find(t + "blocks." + std::to_string(blocks.size()) + ".norm1.weight"))
    throw_bad_input(c.path, "stages make " + std::to_string(blocks.size()) + " blocks: " + file.path() + " has more");
  const std::vector<int64_t> dims = s.stage_dims();
  for (size_t k = 0; k < dims.size(); ++k)
    expect("image_encoder.neck.convs." + std::to_string(k) + ".conv.weight", {d, dims[dims.size() - 1 - k], 1, 1});
  expect("sam_prompt_encoder.mask_downscaling.3.weight", {s.heads.mask_in_chans, s.heads.mask_in_chans / 4, 2, 2});
  expect("sam_mask_decoder.mask_tokens.weight", {s.heads.num_multimask_outputs + 1, d});
  expect("sam_mask_decoder.obj_score_token.weight", {1, d});
  expect("sam_mask_decoder.conv_s0.weight", {d / 8, d, 1, 1});
  expect("sam_mask_decoder.conv_s1.weight", {d / 4, d, 1, 1});
  for (int64_t i = 0; i < s.heads.decoder_depth; ++i)
    expect("sam_mask_decoder.transformer.layers." + std::to_string(i) + ".mlp.layers.0.weight",
           {s.heads.decoder_mlp_dim, d});
  expect("sam_mask_decoder.pred_obj_score_head.layers.2.weight", {1, d});
  expect("no_mem_embed", {1, 1, d});
}

}  // namespace

void check_sam_sizes(const SamFolderConfig& c, const SafeTensorsFile& file) {
  if (c.architecture == "sam2") return check_sam2_sizes(c, file);
  const nn::SamConfig& s = c.sam;
  const int64_t g = s.embedding_size();
  auto expect = [&](const std::string& name, std::vector<int64_t> shape) {
    expect_sam_tensor(c, file, "SAM", name, shape);
  };
  const int64_t hidden = int64_t(double(s.embed_dim) * s.mlp_ratio);
  expect("image_encoder.pos_embed", {1, g, g, s.embed_dim});
  expect("image_encoder.patch_embed.proj.weight", {s.embed_dim, 3, s.patch_size, s.patch_size});
  expect("image_encoder.neck.0.weight", {s.prompt_embed_dim, s.embed_dim, 1, 1});
  for (int64_t i = 0; i < s.depth; ++i) {
    const std::string b = "image_encoder.blocks." + std::to_string(i) + ".";
    expect(b + "mlp.lin1.weight", {hidden, s.embed_dim});
    bool global = false;
    for (int64_t k : s.global_attn_indexes) global = global || k == i;
    if (s.use_rel_pos)
      expect(b + "attn.rel_pos_h", {2 * (global ? g : s.window_size) - 1, s.embed_dim / s.num_heads});
  }
  if (file.find("image_encoder.blocks." + std::to_string(s.depth) + ".norm1.weight"))
    throw_bad_input(c.path, "depth " + std::to_string(s.depth) + ": " + file.path() + " has more blocks");
  expect("prompt_encoder.mask_downscaling.3.weight", {s.mask_in_chans, s.mask_in_chans / 4, 2, 2});
  expect("mask_decoder.mask_tokens.weight", {s.num_multimask_outputs + 1, s.prompt_embed_dim});
  for (int64_t i = 0; i < s.decoder_depth; ++i)
    expect("mask_decoder.transformer.layers." + std::to_string(i) + ".mlp.lin1.weight",
           {s.decoder_mlp_dim, s.prompt_embed_dim});
  expect("mask_decoder.transformer.final_attn_token_to_image.q_proj.weight",
         {s.prompt_embed_dim / s.attention_downsample_rate, s.prompt_embed_dim});
  expect("mask_decoder.iou_prediction_head.layers." + std::to_string(s.iou_head_depth - 1) + ".weight",
         {s.num_multimask_outputs + 1, s.iou_head_depth > 1 ? s.iou_head_hidden_dim : s.prompt_embed_dim});
  if (s.robust) {
    expect("mask_decoder.custom_robust_token.weight", {s.num_multimask_outputs + 1, s.prompt_embed_dim});
    expect("mask_decoder.fourier_first_layer_features.conv_layer.weight", {s.embed_dim, 2 * s.embed_dim, 3, 3});
    expect("mask_decoder.fourier_mask_features.conv_layer.weight",
           {s.prompt_embed_dim / 8, s.prompt_embed_dim / 4, 3, 3});
  } else if (file.find("mask_decoder.custom_robust_token.weight")) {
    throw_bad_input(c.path, "has no \"robust\": true, but " + file.path() +
                                " holds RobustSAM's decoder (scripts/convert_sam.py writes the flag)");
  }
  if (s.hq) {
    expect("mask_decoder.hf_token.weight", {1, s.prompt_embed_dim});
    expect("mask_decoder.compress_vit_feat.0.weight", {s.embed_dim, s.prompt_embed_dim, 2, 2});
    expect("mask_decoder.embedding_maskfeature.3.weight", {s.prompt_embed_dim / 8, s.prompt_embed_dim / 4, 3, 3});
  } else if (file.find("mask_decoder.hf_token.weight")) {
    throw_bad_input(c.path, "has no \"hq\": true, but " + file.path() +
                                " holds HQ-SAM's decoder (scripts/convert_sam.py writes the flag)");
  }
}

SamModel::SamModel(const SamModelOptions& opt) {
  if (opt.enhance != "auto" && opt.enhance != "on" && opt.enhance != "off")
    throw_usage("--enhance " + opt.enhance + ": expected auto, on or off");
  device = parse_device(opt.device);
  dtype = parse_dtype(opt.dtype);
  if (dtype == torch::kHalf && !device.is_cuda())
    throw_usage("--dtype fp16 needs --device cuda: LibTorch's CPU kernels have no fp16 convolution or matmul; use bf16 on CPU");
  config = read_sam_config(opt.dir);
  if (opt.enhance == "on" && !config.enhancer)
    throw_usage("--enhance on: " + config.path + " has no enhancer (only GleSAM's folders have one)");
  enhancing = config.enhancer && opt.enhance != "off";
  if (opt.robust != "auto" && opt.robust != "on" && opt.robust != "off")
    throw_usage("--robust " + opt.robust + ": expected auto, on or off");
  if (config.architecture == "sam2" && (opt.robust == "on" || opt.hq == "on"))
    throw_usage(std::string(opt.robust == "on" ? "--robust on" : "--hq on") + ": " + config.path +
                " is a SAM 2 folder; RobustSAM's and HQ-SAM's decoders are built on SAM v1");
  if (opt.robust == "on" && !config.sam.robust)
    throw_usage("--robust on: " + config.path + " is not a RobustSAM folder (no \"robust\": true)");
  robust = config.sam.robust && opt.robust != "off";
  if (robust && enhancing)
    throw_usage(config.path + ": GleSAM's enhancement and RobustSAM's robust path do not combine (no paper runs "
                              "them together): pass --enhance off or --robust off");
  if (opt.hq != "auto" && opt.hq != "on" && opt.hq != "off") throw_usage("--hq " + opt.hq + ": expected auto, on or off");
  if (opt.hq == "on" && !config.sam.hq)
    throw_usage("--hq on: " + config.path + " is not an HQ-SAM folder (no \"hq\": true)");
  hq = config.sam.hq && opt.hq != "off";
  if (opt.hq_token_only && !hq) throw_usage("--hq-token-only needs HQ-SAM's HQ token (an HQ-SAM folder, --hq auto or on)");
  if (hq && enhancing)
    throw_usage(config.path + ": GleSAM's enhancement and HQ-SAM's HQ token do not combine (no paper runs them "
                              "together): pass --enhance off or --hq off");
  torch::NoGradGuard no_grad;  // plain tensors: the model may run outside inference mode
  const std::string weights = opt.dir + "/sam.safetensors";
  // A symlink loop or a dangling link is opened below, which names the reason.
  if (!path_entry_exists(weights))
    throw_bad_input(opt.dir, "has no sam.safetensors (scripts/convert_sam.py writes it)");
  {
    const auto file = SafeTensorsFile::open(weights);
    // The sizes against the file before the module is built: a sam.json that
    // does not fit its weights (embed_dim 1000000) would otherwise allocate
    // its own model first.
    check_sam_sizes(config, *file);
    if (config.architecture == "sam2") {
      sam2 = nn::Sam2(config.sam2);
      load_state_dict(*sam2, *file, true);
      check_finite_parameters(*sam2, file->path());
    } else {
      sam = nn::Sam(config.sam);
      load_state_dict(*sam, *file, true);
      check_finite_parameters(*sam, file->path());
    }
  }
  // LibTorch's CPU transposed convolution has no bf16 kernel: the prompt
  // encoder and mask decoder (a fraction of the work) stay fp32 there, cast
  // from the file's weights (not from bf16 copies).
  decoder_dtype = dtype == torch::kBFloat16 && device.is_cpu() ? torch::kFloat : dtype;
  if (sam2) {
    sam2->eval();
    const torch::Tensor gauss = sam2->sam_prompt_encoder->pe_layer->positional_encoding_gaussian_matrix.clone();
    sam2->image_encoder->to(device, dtype);
    sam2->sam_prompt_encoder->to(device, decoder_dtype);
    sam2->sam_mask_decoder->to(device, decoder_dtype);
    // float32 as the reference adds it (the neck's top-down sum makes the
    // embedding float32 whatever the trunk's dtype).
    sam2->no_mem_embed.set_data(sam2->no_mem_embed.to(device, torch::kFloat));
    sam2->sam_prompt_encoder->pe_layer->positional_encoding_gaussian_matrix.set_data(gauss.to(device, torch::kFloat));
    return;
  }
  sam->eval();
  sam->mask_decoder->hq_token_only = opt.hq_token_only;
  const torch::Tensor gauss = sam->prompt_encoder->pe_layer->positional_encoding_gaussian_matrix.clone();
  sam->image_encoder->to(device, dtype);
  sam->prompt_encoder->to(device, decoder_dtype);
  sam->mask_decoder->to(device, decoder_dtype);
  // The positional frequencies stay float32 (points are encoded in float32).
  sam->prompt_encoder->pe_layer->positional_encoding_gaussian_matrix.set_data(gauss.to(device, torch::kFloat));
  if (enhancing) {
    const nn::UNetConfig ucfg = read_unet_config(opt.dir + "/unet/config.json");
    const nn::ClipTextConfig ccfg = read_clip_text_config(opt.dir + "/text_encoder/config.json");
    if (ucfg.in_channels != config.sam.prompt_embed_dim || ucfg.out_channels != config.sam.prompt_embed_dim)
      throw_bad_input(opt.dir + "/unet/config.json",
                      "in_channels " + std::to_string(ucfg.in_channels) + " / out_channels " +
                          std::to_string(ucfg.out_channels) + ": GleSAM's UNet works on the " +
                          std::to_string(config.sam.prompt_embed_dim) +
                          "-channel image embedding (rass-merge-lora expand-channels 64 makes it from SD's)");
    if (ucfg.cross_attention_dim != ccfg.hidden_size)
      throw_bad_input(opt.dir + "/unet/config.json", "cross_attention_dim " + std::to_string(ucfg.cross_attention_dim) +
                                                         " differs from the text encoder's hidden_size " +
                                                         std::to_string(ccfg.hidden_size));
    const nn::DdpmSchedule sched = nn::read_ddpm_schedule(opt.dir + "/scheduler/scheduler_config.json");
    if (config.timestep < 0 || size_t(config.timestep) >= sched.alphas_cumprod.size())
      throw_bad_input(config.path, "enhancer.timestep " + std::to_string(config.timestep) + " is outside the schedule's " +
                                       std::to_string(sched.alphas_cumprod.size()) + " steps");
    alpha_bar = double(sched.alpha_bar(config.timestep));
    // The prompt's embedding, once: the text encoder is not kept.
    context = glesam_prompt_context(opt.dir, config.prompt).to(device, dtype);
    unet = for_config(opt.dir + "/unet/config.json", [&] { return nn::UNet2DCondition(ucfg); });
    load_component(*unet, opt.dir + "/unet");
    check_finite_parameters(*unet, opt.dir + "/unet");
    unet->eval();
    unet->to(device, dtype);
  }
}

torch::Tensor glesam_prompt_context(const std::string& dir, const std::string& prompt) {
  const nn::ClipTextConfig ccfg = read_clip_text_config(dir + "/text_encoder/config.json");
  const text::ClipTokenizer tok = text::ClipTokenizer::load(dir + "/tokenizer");
  nn::ClipTextModel te = for_config(dir + "/text_encoder/config.json", [&] { return nn::ClipTextModel(ccfg); });
  load_component(*te, dir + "/text_encoder", "", {"text_model.embeddings.position_ids"});
  check_finite_parameters(*te, dir + "/text_encoder");
  te->eval();
  torch::NoGradGuard ng;
  const int max_tokens = int(std::min<int64_t>(77, ccfg.max_position_embeddings));
  const std::vector<int> ids = tok.encode_padded(prompt, max_tokens);
  const std::vector<int64_t> wide(ids.begin(), ids.end());
  return te->forward(torch::tensor(wide, torch::kLong).view({1, int64_t(wide.size())})).last_hidden_state;
}

SamInput SamModel::frame(int width, int height) const {
  SamInput in;
  in.width = width, in.height = height;
  if (is_sam2()) {  // SAM2Transforms: a square resize, whatever the aspect
    in.resized_width = in.resized_height = int(config.sam.image_size);
    return in;
  }
  // ResizeLongestSide.get_preprocess_shape, in Python's float64.
  const double scale = double(config.sam.image_size) / double(std::max(width, height));
  in.resized_width = std::max(int(double(width) * scale + 0.5), 1);
  in.resized_height = std::max(int(double(height) * scale + 0.5), 1);
  return in;
}

namespace {
// An 8-bit RGB image as [1, 3, H, W] float32 (0..255).
torch::Tensor float_pixels(const Image& rgb) {
  return torch::from_blob(const_cast<uint8_t*>(rgb.u8()), {rgb.height, rgb.width, 3}, torch::kUInt8)
      .permute({2, 0, 1})
      .to(torch::kFloat)
      .unsqueeze(0);
}
}  // namespace

SamInput SamModel::prepare(const Image& rgb) const {
  const int64_t S = config.sam.image_size;
  SamInput in = frame(rgb.width, rgb.height);
  if (is_sam2()) {
    // ToTensor ([0, 1] floats), Resize((S, S)) (bilinear, antialiased, as
    // torchvision >= 0.17 resizes tensors), Normalize.
    torch::Tensor x = F::interpolate(float_pixels(rgb).div(255), F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{S, S})
                              .mode(torch::kBilinear)
                              .align_corners(false)
                              .antialias(true));
    const auto& m = config.sam2.pixel_mean;
    const auto& s = config.sam2.pixel_std;
    x = (x - torch::tensor({m[0], m[1], m[2]}, torch::kFloat).view({1, 3, 1, 1})) /
        torch::tensor({s[0], s[1], s[2]}, torch::kFloat).view({1, 3, 1, 1});
    in.pixels = host_to_device(x.contiguous(), device, dtype);
    return in;
  }
  const Image r = pil_resize(rgb, in.resized_width, in.resized_height, PilFilter::bilinear);
  in.pixels = normalised_padded(float_pixels(r));
  return in;
}

SamInput SamModel::prepare_float(const Image& rgb) const {
  if (is_sam2()) throw_runtime("prepare_float: GleSAM's encoder input is SAM v1's");
  SamInput in = frame(rgb.width, rgb.height);
  in.pixels = normalised_padded(F::interpolate(float_pixels(rgb), F::InterpolateFuncOptions()
                                                                     .size(std::vector<int64_t>{in.resized_height, in.resized_width})
                                                                     .mode(torch::kBilinear)
                                                                     .align_corners(false)
                                                                     .antialias(true)));
  return in;
}

torch::Tensor SamModel::normalised_padded(torch::Tensor x) const {
  const int64_t S = config.sam.image_size;
  const auto& m = config.sam.pixel_mean;
  const auto& s = config.sam.pixel_std;
  x = (x - torch::tensor({m[0], m[1], m[2]}, torch::kFloat).view({1, 3, 1, 1})) /
      torch::tensor({s[0], s[1], s[2]}, torch::kFloat).view({1, 3, 1, 1});
  x = F::pad(x, F::PadFuncOptions({0, S - x.size(3), 0, S - x.size(2)}));
  return host_to_device(x.contiguous(), device, dtype);
}

torch::Tensor glesam_x0(nn::UNet2DConditionImpl& unet, const torch::Tensor& x, const torch::Tensor& context, int timestep,
                        double alpha_bar) {
  const torch::Tensor t = torch::full({x.size(0)}, int64_t(timestep), torch::TensorOptions().dtype(torch::kLong).device(x.device()));
  const torch::Tensor eps = unet.forward(x.to(context.scalar_type()), t, context.expand({x.size(0), -1, -1}));
  return ((x.to(torch::kDouble) - std::sqrt(1.0 - alpha_bar) * eps.to(torch::kDouble)) / std::sqrt(alpha_bar))
      .to(torch::kFloat);
}

torch::Tensor SamModel::enhance(const torch::Tensor& z) const {
  if (!unet) throw_runtime("the GleSAM enhancer is not loaded");
  const double g = config.feat_weight;
  // x0 back in float32, then / g.
  return (glesam_x0(*unet.ptr(), z.to(torch::kFloat) * g, context, config.timestep, alpha_bar) / g).to(dtype);
}

torch::Tensor SamModel::embed(const SamInput& in, SamDecoderFeatures* decoder_features) const {
  if (is_sam2()) {
    const nn::Sam2Features f = sam2.ptr()->encode(in.pixels);
    require_finite(f.embedding, "SAM 2's image embedding");
    if (decoder_features) decoder_features->s0 = f.s0, decoder_features->s1 = f.s1;
    return f.embedding;
  }
  if ((robust || hq) && decoder_features) {
    auto [z, early] = sam->image_encoder.ptr()->forward_with_early(in.pixels);
    require_finite(z, "SAM's image embedding");
    auto& dec = *sam->mask_decoder.ptr();
    decoder_features->extra = robust ? dec.robust_features(z.to(decoder_dtype), early.to(decoder_dtype))
                                     : dec.hq_features(z.to(decoder_dtype), early.to(decoder_dtype));
    return z;
  }
  const torch::Tensor z = sam->image_encoder.ptr()->forward(in.pixels);
  require_finite(z, "SAM's image embedding");
  if (!enhancing) return z;
  const torch::Tensor e = enhance(z);
  require_finite(e, "GleSAM's enhanced embedding");
  return e;
}

nn::SamPrompts SamModel::prompt_tensors(const std::vector<SamObject>& objects, size_t a, size_t b,
                                       const SamInput& in) const {
  const double sx = double(in.resized_width) / in.width, sy = double(in.resized_height) / in.height;
  // SAM 2's transform_coords: x / w * S in float32.
  const float fw = float(in.width), fh = float(in.height), fs = float(config.sam.image_size);
  auto to_x = [&](double x) { return is_sam2() ? float(x) / fw * fs : float(x * sx); };
  auto to_y = [&](double y) { return is_sam2() ? float(y) / fh * fs : float(y * sy); };
  const int64_t n = int64_t(b - a);
  const size_t max_points = objects[a].points.size();
  nn::SamPrompts p;
  if (max_points > 0) {
    std::vector<float> c(size_t(n) * max_points * 2, 0.0f), l(size_t(n) * max_points, -1.0f);
    for (size_t i = a; i < b; ++i)
      for (size_t k = 0; k < objects[i].points.size(); ++k) {
        // apply_coords: float64 scaling, then float32 (torch.as_tensor(dtype=float)).
        c[((i - a) * max_points + k) * 2] = to_x(objects[i].points[k][0]);
        c[((i - a) * max_points + k) * 2 + 1] = to_y(objects[i].points[k][1]);
        l[(i - a) * max_points + k] = float(objects[i].point_labels[k]);
      }
    p.point_coords = torch::tensor(c).view({n, int64_t(max_points), 2}).to(device);
    p.point_labels = torch::tensor(l).view({n, int64_t(max_points)}).to(device);
  }
  if (objects[a].box.has_value()) {
    std::vector<float> bx;
    for (size_t i = a; i < b; ++i) {
      const auto& q = *objects[i].box;
      bx.insert(bx.end(), {to_x(q[0]), to_y(q[1]), to_x(q[2]), to_y(q[3])});
    }
    p.boxes = torch::tensor(bx).view({n, 4}).to(device);
  }
  return p;
}

SamPrediction SamModel::predict(const torch::Tensor& embedding, const std::vector<SamObject>& objects,
                                const SamInput& in, bool multimask, int fill, bool keep_low_res, int group,
                                const Image* gt, const SamDecoderFeatures& decoder_features) const {
  if (is_sam2() && !decoder_features.s0.defined())
    throw_runtime("SAM 2 decodes with the image's high-resolution features: pass embed()'s decoder_features");
  SamPrediction out;
  int max_label = fill;
  for (const SamObject& o : objects) max_label = std::max(max_label, o.label);
  out.labels = Image(in.width, in.height, 1, max_label > 255 ? 16 : 8);
  // Running maximum of the logits and the label holding it.
  torch::Tensor best = torch::full({in.height, in.width}, 0.0f);  // a pixel needs a logit > 0
  torch::Tensor label = torch::full({in.height, in.width}, int64_t(fill), torch::kInt);
  std::vector<torch::Tensor> low;
  torch::Tensor gt_t;  // the label map as int32 [H, W]
  if (gt) {
    if (gt->width != in.width || gt->height != in.height || gt->channels != 1)
      throw_runtime("the ground-truth label map is not a single-channel map of the image's size");
    gt_t = gt->depth == 16 ? torch::from_blob(const_cast<uint8_t*>(gt->u8()), {in.height, in.width}, torch::kInt16)
                                 .to(torch::kInt)
                                 .bitwise_and(0xFFFF)
                           : torch::from_blob(const_cast<uint8_t*>(gt->u8()), {in.height, in.width}, torch::kUInt8)
                                 .to(torch::kInt);
  }
  for (size_t a = 0, b = 0; a < objects.size(); a = b) {
    // One decoder call takes up to `group` consecutive objects whose prompts
    // have one shape (as many points, a box or none): each is then decoded
    // exactly as alone. Padding a shorter point list (label -1) would add
    // tokens its mask attends to, so its mask would hang on its neighbours.
    b = a + 1;
    while (b < objects.size() && b - a < size_t(std::max(group, 1)) &&
           objects[b].points.size() == objects[a].points.size() &&
           objects[b].box.has_value() == objects[a].box.has_value())
      ++b;
    const int64_t n = int64_t(b - a);
    const nn::SamPrompts p = prompt_tensors(objects, a, b, in);
    torch::Tensor logits, iou, tokens;  // tokens: each output's mask token
    if (is_sam2()) {
      const nn::Sam2Decoded d = sam2->decode({embedding, decoder_features.s0, decoder_features.s1}, p, multimask);
      logits = d.masks, iou = d.iou, tokens = d.tokens;
      const torch::Tensor score = d.object_score.to(torch::kFloat).cpu();
      require_finite(score, "SAM 2's object scores");
      for (int64_t i = 0; i < n; ++i) out.object_score.push_back(score[i][0].item<double>());
    } else {
      std::tie(logits, iou) = sam->decode(embedding.to(decoder_dtype), p, multimask, decoder_features.extra);
      tokens = (multimask ? torch::arange(1, logits.size(1) + 1, torch::kLong) : torch::zeros({1}, torch::kLong))
                   .to(device)
                   .unsqueeze(0)
                   .expand({n, -1});
    }
    logits = logits.to(torch::kFloat), iou = iou.to(torch::kFloat);
    require_finite(logits, "the mask decoder's logits");
    require_finite(iou, "the mask decoder's IoU predictions");
    torch::Tensor pick = torch::zeros({n}, torch::kLong).to(device);
    if (multimask) pick = iou.argmax(1);
    const torch::Tensor chosen = logits.gather(1, pick.view({n, 1, 1, 1}).expand({n, 1, logits.size(2), logits.size(3)}));
    const torch::Tensor chosen_iou = iou.gather(1, pick.view({n, 1})).squeeze(1).cpu();
    const torch::Tensor chosen_token = tokens.gather(1, pick.view({n, 1})).squeeze(1).cpu();
    for (int64_t i = 0; i < n; ++i) {
      out.iou.push_back(chosen_iou[i].item<double>());
      out.chosen.push_back(int(chosen_token[i].item<int64_t>()));
    }
    // SAM2ImagePredictor returns its low-resolution logits clamped to [-32, 32].
    if (keep_low_res) low.push_back(is_sam2() ? chosen.clamp(-32.0, 32.0).cpu() : chosen.cpu());
    // postprocess_masks: to S x S, crop to the resized image, to the input's
    // size; one object at a time, so a large image holds one full-size map.
    for (int64_t i = 0; i < n; ++i) {
      const torch::Tensor li = upsample_logits(chosen.slice(0, i, i + 1), in);
      const torch::Tensor mask = li > 0;
      out.area.push_back(mask.sum().item<int64_t>());
      if (gt_t.defined()) {
        const torch::Tensor truth = gt_t == objects[a + size_t(i)].label;
        const double inter = double((mask & truth).sum().item<int64_t>()), t = double(truth.sum().item<int64_t>());
        const double p = double(out.area.back());
        out.gt_iou.push_back(p + t - inter > 0 ? inter / (p + t - inter) : 1.0);
        out.gt_dice.push_back(p + t > 0 ? 2 * inter / (p + t) : 1.0);
        // GleSAM's compute_pixel_accuracy: pixels where mask and truth agree, of all.
        out.gt_pa.push_back(1.0 - (p + t - 2 * inter) / double(in.width * int64_t(in.height)));
      }
      const torch::Tensor better = li > best;
      best = torch::where(better, li, best);
      label.masked_fill_(better, int64_t(objects[a + size_t(i)].label));
    }
  }
  if (keep_low_res && !low.empty()) out.low_res = torch::cat(low, 0);
  const torch::Tensor lab = label.contiguous();
  const int32_t* l = lab.data_ptr<int32_t>();
  const size_t npx = size_t(in.width) * in.height;
  if (out.labels.depth == 8)
    for (size_t i = 0; i < npx; ++i) out.labels.u8()[i] = uint8_t(l[i]);
  else
    for (size_t i = 0; i < npx; ++i) out.labels.u16()[i] = uint16_t(l[i]);
  return out;
}

namespace {

// Masks' boxes as batched_mask_to_box gives them ([N, 4] int64; 0s for an empty mask).
torch::Tensor sam_mask_boxes(const torch::Tensor& masks) {
  const int64_t h = masks.size(-2), w = masks.size(-1);
  const torch::Tensor rows = std::get<0>(masks.max(-1));  // [N, h]
  const torch::Tensor cols = std::get<0>(masks.max(-2));  // [N, w]
  auto edges = [](const torch::Tensor& in, int64_t n) {
    const torch::Tensor idx = torch::arange(n, torch::kLong).unsqueeze(0) * in;
    const torch::Tensor hi = std::get<0>(idx.max(-1));
    const torch::Tensor lo = std::get<0>((idx + n * in.logical_not()).min(-1));
    return std::make_pair(lo, hi);
  };
  const auto [top, bottom] = edges(rows.to(torch::kLong), h);
  const auto [left, right] = edges(cols.to(torch::kLong), w);
  const torch::Tensor empty = (right < left) | (bottom < top);
  return torch::stack({left, top, right, bottom}, -1) * empty.logical_not().unsqueeze(-1);
}

// torchvision's nms: boxes by score, highest first; a box is dropped when its
// IoU with a kept one is above `thresh` (areas (x1 - x0) * (y1 - y0)).
std::vector<size_t> sam_nms(const std::vector<std::array<int64_t, 4>>& boxes, const std::vector<double>& scores,
                            double thresh) {
  std::vector<size_t> order(boxes.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  std::vector<size_t> keep;
  std::vector<char> gone(boxes.size(), 0);
  auto area = [](const std::array<int64_t, 4>& b) { return double(b[2] - b[0]) * double(b[3] - b[1]); };
  for (size_t oi = 0; oi < order.size(); ++oi) {
    const size_t i = order[oi];
    if (gone[i]) continue;
    keep.push_back(i);
    for (size_t oj = oi + 1; oj < order.size(); ++oj) {
      const size_t j = order[oj];
      if (gone[j]) continue;
      const auto& a = boxes[i];
      const auto& b = boxes[j];
      const double iw = std::max<double>(0, double(std::min(a[2], b[2]) - std::max(a[0], b[0])));
      const double ih = std::max<double>(0, double(std::min(a[3], b[3]) - std::max(a[1], b[1])));
      const double inter = iw * ih, uni = area(a) + area(b) - inter;
      if (uni > 0 ? inter / uni > thresh : false) gone[j] = 1;
    }
  }
  return keep;
}

}  // namespace

Image sam_instance_map(const std::vector<SamMask>& masks, int width, int height,
                       const std::function<torch::Tensor(size_t)>& pixels) {
  Image out(width, height, 1, masks.size() > 255 ? 16 : 8);
  std::vector<size_t> order(masks.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return masks[a].area > masks[b].area; });
  for (size_t i : order) {
    const torch::Tensor m = pixels(i).to(torch::kBool).contiguous();
    const bool* p = m.data_ptr<bool>();
    const size_t n = size_t(width) * height;
    for (size_t q = 0; q < n; ++q)
      if (p[q]) {
        if (out.depth == 8)
          out.u8()[q] = uint8_t(i + 1);
        else
          out.u16()[q] = uint16_t(i + 1);
      }
  }
  return out;
}

torch::Tensor SamModel::upsample_logits(const torch::Tensor& low, const SamInput& in) const {
  if (is_sam2())  // SAM2Transforms.postprocess_masks: straight to the input's size
    return F::interpolate(low, F::InterpolateFuncOptions()
                                   .size(std::vector<int64_t>{in.height, in.width})
                                   .mode(torch::kBilinear)
                                   .align_corners(false))
        .reshape({in.height, in.width})
        .cpu();
  const int64_t S = config.sam.image_size;
  torch::Tensor up = F::interpolate(
      low, F::InterpolateFuncOptions().size(std::vector<int64_t>{S, S}).mode(torch::kBilinear).align_corners(false));
  up = up.slice(2, 0, in.resized_height).slice(3, 0, in.resized_width);
  return F::interpolate(up, F::InterpolateFuncOptions()
                                .size(std::vector<int64_t>{in.height, in.width})
                                .mode(torch::kBilinear)
                                .align_corners(false))
      .reshape({in.height, in.width})
      .cpu();
}

// _process_crop: the masks of one crop (`in`, embedded as `embedding`) in the image's frame.
std::vector<SamMask> SamModel::everything_crop(const torch::Tensor& embedding, const SamDecoderFeatures& features,
                                               const SamInput& in,
                                               const SamEverythingOptions& o, const SamCrop& crop, int points_per_side,
                                               int64_t width, int64_t height) const {
  std::vector<std::array<double, 2>> grid = sam_point_grid(points_per_side);
  for (auto& g : grid) g[0] *= in.width, g[1] *= in.height;  // points_for_image, the crop's pixels
  const double sx = double(in.resized_width) / in.width, sy = double(in.resized_height) / in.height;
  const bool whole = crop.box == std::array<int64_t, 4>{0, 0, width, height};
  std::vector<SamMask> found;
  const size_t per = size_t(std::max(o.points_per_batch, 1));
  for (size_t a = 0; a < grid.size(); a += per) {
    const size_t b = std::min(grid.size(), a + per);
    const int64_t nb = int64_t(b - a);
    std::vector<float> c;
    for (size_t i = a; i < b; ++i) {
      if (is_sam2()) {  // transform_coords(normalize=True) of the float32 points: x / w * S
        const float fs = float(config.sam.image_size);
        c.push_back(float(grid[i][0]) / float(in.width) * fs), c.push_back(float(grid[i][1]) / float(in.height) * fs);
      } else {
        c.push_back(float(grid[i][0] * sx)), c.push_back(float(grid[i][1] * sy));
      }
    }
    nn::SamPrompts p;
    p.point_coords = torch::tensor(c).view({nb, 1, 2}).to(device);
    p.point_labels = torch::ones({nb, 1}).to(device);
    torch::Tensor low, iou;
    if (is_sam2()) {
      const nn::Sam2Decoded d = sam2->decode({embedding, features.s0, features.s1}, p, true);
      low = d.masks, iou = d.iou;
      if (o.use_m2m) {
        // refine_with_m2m: every mask of every point (none filtered yet)
        // decoded again from its point and its own low-resolution logits,
        // clamped to +-32 as the predictor returns them, as the mask prompt;
        // one mask each (the dynamic choice), in points_per_batch groups.
        const int64_t k0 = low.size(1), n = nb * k0;
        const torch::Tensor prompts = low.clamp(-32.0, 32.0).flatten(0, 1).unsqueeze(1);
        const torch::Tensor coords = p.point_coords.repeat_interleave(k0, 0);
        std::vector<torch::Tensor> lows, ious;
        for (int64_t s = 0; s < n; s += int64_t(per)) {
          const int64_t e = std::min(n, s + int64_t(per));
          nn::SamPrompts q;
          q.point_coords = coords.slice(0, s, e);
          q.point_labels = torch::ones({e - s, 1}).to(device);
          q.masks = prompts.slice(0, s, e);
          const nn::Sam2Decoded r = sam2->decode({embedding, features.s0, features.s1}, q, false);
          lows.push_back(r.masks);
          ious.push_back(r.iou);
        }
        low = torch::cat(lows).view({nb, k0, low.size(2), low.size(3)});
        iou = torch::cat(ious).view({nb, k0});
      }
      if (o.min_mask_region_area > 0) {
        // The predictor SAM2AutomaticMaskGenerator builds fills small holes
        // and removes small sprinkles of every mask's low-resolution logits
        // (max_hole_area = max_sprinkle_area = min_mask_region_area) before
        // upsampling; the generator does no later clean-up.
        torch::Tensor l = low.to(torch::kCPU, torch::kFloat).contiguous();
        const int lh = int(l.size(2)), lw = int(l.size(3));
        for (int64_t q = 0; q < l.size(0) * l.size(1); ++q)
          fill_small_logit_regions(l.data_ptr<float>() + q * lh * lw, lw, lh, o.min_mask_region_area);
        low = l.to(device);
      }
    } else {
      std::tie(low, iou) = sam->decode(embedding.to(decoder_dtype), p, true, features.extra);
    }
    low = low.to(torch::kFloat);
    iou = iou.to(torch::kFloat).cpu();
    require_finite(low, "the mask decoder's logits");
    require_finite(iou, "the mask decoder's IoU predictions");
    const int64_t k = low.size(1);
    // HQ-SAM's decoder keeps one mask per point in multimask mode: SAM's with
    // the highest predicted IoU (its first on a tie), plus the HQ mask.
    const torch::Tensor best = hq && features.extra.defined() ? iou.argmax(1) : torch::Tensor();
    for (int64_t i = 0; i < nb; ++i)
      for (int64_t j = 0; j < k; ++j) {
        if (best.defined() && j != best[i].item<int64_t>()) continue;
        const double score = iou[i][j].item<double>();
        if (o.pred_iou_thresh > 0 && !(float(score) > float(o.pred_iou_thresh))) continue;  // float32, as torch compares
        // postprocess_masks at the crop's size, one mask at a time.
        const torch::Tensor li = upsample_logits(low.slice(0, i, i + 1).slice(1, j, j + 1), in);
        const double inter = double((li > o.stability_score_offset).sum().item<int64_t>());
        const double uni = double((li > -o.stability_score_offset).sum().item<int64_t>());
        const double stability = double(float(inter) / float(uni));  // int32 / int32 in float32, as torch divides
        if (o.stability_score_thresh > 0 && !(float(stability) >= float(o.stability_score_thresh))) continue;
        SamMask m;
        const torch::Tensor mask = li > 0;
        const torch::Tensor bx = sam_mask_boxes(mask.unsqueeze(0))[0];
        for (int q = 0; q < 4; ++q) m.box[size_t(q)] = bx[q].item<int64_t>();
        if (!whole && sam_box_near_crop_edge(m.box, crop.box, width, height)) continue;
        for (size_t q = 0; q < 4; ++q) m.box[q] += crop.box[q % 2];  // uncrop_boxes_xyxy
        m.iou_pred = double(iou[i][j].item<float>());
        m.stability = stability;
        const auto& g = grid[a + size_t(i)];
        if (is_sam2())  // float32 points, offset in float32 (uncrop_points)
          m.point = {double(float(g[0]) + float(crop.box[0])), double(float(g[1]) + float(crop.box[1]))};
        else
          m.point = {g[0] + double(crop.box[0]), g[1] + double(crop.box[1])};
        m.area = mask.sum().item<int64_t>();
        m.crop = crop.box;
        // Candidates keep their 256x256 logits (256 KiB), not their
        // full-size pixels: the kept ones are upsampled again when painted.
        m.mask = low.slice(0, i, i + 1).slice(1, j, j + 1).cpu().clone();
        found.push_back(std::move(m));
      }
  }
  std::vector<std::array<int64_t, 4>> boxes;
  std::vector<double> scores;
  for (const SamMask& m : found) boxes.push_back(m.box), scores.push_back(m.iou_pred);
  std::vector<SamMask> kept;
  for (size_t i : sam_nms(boxes, scores, o.box_nms_thresh)) kept.push_back(std::move(found[i]));
  return kept;
}

void SamModel::check_everything() const {
  if (robust)
    throw_usage("--everything with RobustSAM's robust path: RobustSAM's own generator prompts through its predictor, "
                "which decodes with SAM's tokens; pass --robust off for exactly that");
}

std::vector<SamMask> SamModel::everything(const Image& rgb, const SamEverythingOptions& o) const {
  check_everything();
  if (o.use_m2m && !is_sam2()) throw_usage("use_m2m is SAM 2's generator's refinement; SAM v1's generator has none");
  const int64_t W = rgb.width, H = rgb.height;
  std::vector<SamMask> all;
  const std::vector<SamCrop> crops = sam_crop_boxes(W, H, o.crop_n_layers, o.crop_overlap_ratio);
  for (const SamCrop& crop : crops) {
    // A layer's last crops hold no pixel on images narrower than its crop
    // count (the reference fails there); they give no mask.
    if (crop.box[2] <= crop.box[0] || crop.box[3] <= crop.box[1]) continue;
    const bool whole = crop.layer == 0;
    const auto& b = crop.box;
    const SamInput in =
        prepare(whole ? rgb : crop_image(rgb, int(b[0]), int(b[1]), int(b[2] - b[0]), int(b[3] - b[1])));
    const int n = sam_layer_points_per_side(o.points_per_side, crop.layer, o.crop_n_points_downscale_factor);
    SamDecoderFeatures features;
    const torch::Tensor z = embed(in, &features);
    std::vector<SamMask> got = everything_crop(z, features, in, o, crop, n, W, H);
    for (SamMask& m : got) all.push_back(std::move(m));
  }
  if (crops.size() > 1) {
    // Between crops: smaller crops first (1 / area in float32, as torch divides).
    std::vector<std::array<int64_t, 4>> boxes;
    std::vector<double> scores;
    for (const SamMask& m : all) {
      boxes.push_back(m.box);
      scores.push_back(double(1.0f / float((m.crop[2] - m.crop[0]) * (m.crop[3] - m.crop[1]))));
    }
    std::vector<SamMask> kept;
    for (size_t i : sam_nms(boxes, scores, o.crop_nms_thresh)) kept.push_back(std::move(all[i]));
    all = std::move(kept);
  }
  // SAM 2's generator cleans each mask's low-resolution logits instead
  // (everything_crop), and suppresses nothing again.
  if (o.min_mask_region_area <= 0 || all.empty() || is_sam2()) return all;
  // postprocess_small_regions: holes then islands, one mask at a time;
  // unchanged masks score 1, changed ones 0, and their new boxes are
  // suppressed at the larger of the two thresholds.
  std::vector<std::array<int64_t, 4>> boxes;
  std::vector<double> scores;
  std::vector<torch::Tensor> edited(all.size());
  std::vector<int64_t> areas(all.size());
  for (size_t k = 0; k < all.size(); ++k) {
    const torch::Tensor px = mask_pixels(all[k], W, H).to(torch::kUInt8).contiguous();
    std::vector<uint8_t> bits(px.data_ptr<uint8_t>(), px.data_ptr<uint8_t>() + px.numel());
    bool changed = remove_small_regions(bits, int(W), int(H), o.min_mask_region_area, SmallRegionMode::holes);
    changed = remove_small_regions(bits, int(W), int(H), o.min_mask_region_area, SmallRegionMode::islands) || changed;
    const torch::Tensor now = torch::from_blob(bits.data(), {H, W}, torch::kUInt8).to(torch::kBool);
    const torch::Tensor bx = sam_mask_boxes(now.unsqueeze(0))[0];
    std::array<int64_t, 4> box{};
    for (int q = 0; q < 4; ++q) box[size_t(q)] = bx[q].item<int64_t>();
    boxes.push_back(box);
    scores.push_back(changed ? 0.0 : 1.0);
    if (changed) {
      areas[k] = now.sum().item<int64_t>();
      edited[k] = areas[k] == 0 ? torch::zeros({0, 0}, torch::kBool)
                                : now.slice(0, box[1], box[3] + 1).slice(1, box[0], box[2] + 1).clone();
    }
  }
  std::vector<SamMask> kept;
  for (size_t i : sam_nms(boxes, scores, std::max(o.box_nms_thresh, o.crop_nms_thresh))) {
    if (edited[i].defined()) all[i].box = boxes[i], all[i].area = areas[i], all[i].edited = edited[i];
    kept.push_back(std::move(all[i]));
  }
  return kept;
}

torch::Tensor SamModel::mask_pixels(const SamMask& m, int64_t width, int64_t height) const {
  torch::Tensor out = torch::zeros({height, width}, torch::kBool);
  if (m.edited.defined()) {
    if (m.edited.numel() > 0)
      out.slice(0, m.box[1], m.box[3] + 1).slice(1, m.box[0], m.box[2] + 1).copy_(m.edited);
    return out;
  }
  // The same arithmetic as everything()'s: the same pixels.
  const SamInput f = frame(int(m.crop[2] - m.crop[0]), int(m.crop[3] - m.crop[1]));
  const torch::Tensor crop = upsample_logits(m.mask.to(device), f) > 0;
  if (m.crop == std::array<int64_t, 4>{0, 0, width, height}) return crop;
  out.slice(0, m.crop[1], m.crop[3]).slice(1, m.crop[0], m.crop[2]).copy_(crop);  // uncrop_masks
  return out;
}

Image SamModel::instance_map(const std::vector<SamMask>& masks, int width, int height) const {
  return sam_instance_map(masks, width, height, [&](size_t k) { return mask_pixels(masks[k], width, height); });
}

}  // namespace rass::model
