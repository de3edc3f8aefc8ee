#include "rass/model/samsr_model.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/functional/padding.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/found_file.hpp"
#include "rass/core/json_fields.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/rng.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/device.hpp"
#include "rass/model/sam_model.hpp"
#include "rass/nn/resshift_init.hpp"

namespace F = torch::nn::functional;

namespace rass::model {

namespace {

void samsr_range(const std::string& path, const std::string& key, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi)
    throw_bad_input(path, key + " = " + std::to_string(v) + " is out of range (" + std::to_string(lo) + ".." +
                              std::to_string(hi) + ")");
}

void read_unet_fields(const nlohmann::json& j, const std::string& path, nn::ResShiftUNetConfig& u) {
  const JsonFields f(j, path + " (unet)");
  u.image_size = f.integer("image_size", u.image_size);
  u.in_channels = f.integer("in_channels", u.in_channels);
  u.model_channels = f.integer("model_channels", u.model_channels);
  u.out_channels = f.integer("out_channels", u.out_channels);
  u.channel_mult = f.integers("channel_mult", u.channel_mult);
  if (f.has("num_res_blocks") && j["num_res_blocks"].is_number_integer())
    u.num_res_blocks.assign(u.channel_mult.size(), f.integer("num_res_blocks", 2));
  else
    u.num_res_blocks = f.integers("num_res_blocks", u.num_res_blocks);
  u.attention_resolutions = f.integers("attention_resolutions", u.attention_resolutions);
  u.conv_resample = f.flag("conv_resample", u.conv_resample);
  u.use_scale_shift_norm = f.flag("use_scale_shift_norm", u.use_scale_shift_norm);
  u.resblock_updown = f.flag("resblock_updown", u.resblock_updown);
  u.num_heads = f.integer("num_heads", u.num_heads);
  u.num_head_channels = f.integer("num_head_channels", u.num_head_channels);
  u.swin_depth = f.integer("swin_depth", u.swin_depth);
  u.swin_embed_dim = f.integer("swin_embed_dim", u.swin_embed_dim);
  u.window_size = f.integer("window_size", u.window_size);
  u.mlp_ratio = f.number("mlp_ratio", u.mlp_ratio);
  u.patch_norm = f.flag("patch_norm", u.patch_norm);
  if (f.has("lq_size") && f.integer("lq_size", 0) != u.image_size)
    throw_bad_input(path, "unet.lq_size differs from image_size: a low-resolution feature extractor is not supported "
                          "(the low-resolution image must be the latent's size, as in SAMSR, SinSR and ResShift's x4 v1 and v3)");
  if (f.has("cond_lq") && !f.flag("cond_lq", true))
    throw_bad_input(path, "unet.cond_lq = false: the model must see the low-resolution image");
  samsr_range(path, "unet.image_size", u.image_size, 1, 65536);
  samsr_range(path, "unet.in_channels", u.in_channels, 4, 4096);
  samsr_range(path, "unet.model_channels", u.model_channels, 1, 65536);
  samsr_range(path, "unet.out_channels", u.out_channels, 1, 4096);
  samsr_range(path, "unet.swin_depth", u.swin_depth, 1, 64);
  samsr_range(path, "unet.swin_embed_dim", u.swin_embed_dim, 1, 65536);
  samsr_range(path, "unet.window_size", u.window_size, 1, 1024);
  if (u.channel_mult.empty() || u.channel_mult.size() > 8 || u.num_res_blocks.size() != u.channel_mult.size())
    throw_bad_input(path, "unet.channel_mult needs 1..8 levels and num_res_blocks one entry per level");
  for (int64_t m : u.channel_mult) samsr_range(path, "unet.channel_mult", m, 1, 64);
  for (int64_t m : u.num_res_blocks) samsr_range(path, "unet.num_res_blocks", m, 1, 64);
  if (!(u.mlp_ratio > 0 && u.mlp_ratio <= 64)) throw_bad_input(path, "unet.mlp_ratio is out of range");
  if (u.model_channels * u.channel_mult[0] % 32 != 0 || u.swin_embed_dim % 32 != 0)
    throw_bad_input(path, "unet: model_channels x channel_mult and swin_embed_dim must be multiples of 32 (GroupNorm32)");
  if (u.swin_heads() <= 0 || u.swin_embed_dim % u.swin_heads() != 0)
    throw_bad_input(path, "unet: swin_embed_dim is not divisible into heads of num_head_channels");
}

void read_autoencoder_fields(const nlohmann::json& j, const std::string& path, nn::VqAutoencoderConfig& a) {
  const JsonFields f(j, path + " (autoencoder)");
  a.in_channels = f.integer("in_channels", a.in_channels);
  a.out_ch = f.integer("out_ch", a.out_ch);
  a.ch = f.integer("ch", a.ch);
  a.z_channels = f.integer("z_channels", a.z_channels);
  a.embed_dim = f.integer("embed_dim", a.embed_dim);
  a.n_embed = f.integer("n_embed", a.n_embed);
  a.ch_mult = f.integers("ch_mult", a.ch_mult);
  a.num_res_blocks = f.integer("num_res_blocks", a.num_res_blocks);
  a.resolution = f.integer("resolution", a.resolution);
  a.attn_resolutions = f.integers("attn_resolutions", a.attn_resolutions);
  samsr_range(path, "autoencoder.ch", a.ch, 1, 65536);
  samsr_range(path, "autoencoder.n_embed", a.n_embed, 1, 1 << 22);
  samsr_range(path, "autoencoder.num_res_blocks", a.num_res_blocks, 1, 64);
  if (a.ch % 32 != 0) throw_bad_input(path, "autoencoder.ch must be a multiple of 32 (GroupNorm)");
  if (a.ch_mult.empty() || a.ch_mult.size() > 6) throw_bad_input(path, "autoencoder.ch_mult needs 1..6 levels");
  for (int64_t m : a.ch_mult) samsr_range(path, "autoencoder.ch_mult", m, 1, 64);
  if (a.in_channels != 3 || a.out_ch != 3 || a.z_channels != 3 || a.embed_dim != 3)
    throw_bad_input(path, "autoencoder: rass-samsr works with a 3-channel image and latent (the released VQ-f4)");
  if (a.factor() != 4) throw_bad_input(path, "autoencoder: ch_mult makes a factor " + std::to_string(a.factor()) +
                                                 " latent; rass-samsr's x4 needs the f4 autoencoder (3 levels)");
}

}  // namespace

SamsrFolderConfig read_samsr_config(const std::string& dir) {
  SamsrFolderConfig c;
  c.path = dir + "/samsr.json";
  if (!file_exists(c.path))
    throw_bad_input(dir, "is not a SAMSR/SinSR/ResShift model folder (no samsr.json; scripts/convert_samsr.py writes one)");
  const nlohmann::json j(read_found_json(c.path, /*unique_keys=*/true));
  if (!j.is_object()) throw_bad_input(c.path, "is not a JSON object");
  const JsonFields f(j, c.path);
  if (f.text("architecture", "") != "resshift")
    throw_bad_input(c.path, "architecture '" + f.text("architecture", "") + "': rass-samsr runs \"resshift\" models");
  c.method = f.text("method", c.method);
  if (c.method != "samsr" && c.method != "sinsr" && c.method != "resshift")
    throw_bad_input(c.path, "method '" + c.method + "': expected samsr, sinsr or resshift");
  if (j.contains("unet") && !j["unet"].is_null()) {
    if (!j["unet"].is_object()) throw_bad_input(c.path, "unet must be an object");
    read_unet_fields(j["unet"], c.path, c.unet);
  } else {
    read_unet_fields(nlohmann::json::object(), c.path, c.unet);
  }
  if (j.contains("autoencoder") && !j["autoencoder"].is_null()) {
    if (!j["autoencoder"].is_object()) throw_bad_input(c.path, "autoencoder must be an object");
    read_autoencoder_fields(j["autoencoder"], c.path, c.autoencoder);
  }
  // ResShift's own code (its v3 model: min_noise_level 0.2) leaves the cap out.
  c.cap_etas_start = c.method != "resshift";
  if (j.contains("diffusion") && !j["diffusion"].is_null()) {
    if (!j["diffusion"].is_object()) throw_bad_input(c.path, "diffusion must be an object");
    const JsonFields d(j["diffusion"], c.path + " (diffusion)");
    c.steps = d.integer("steps", c.steps);
    c.kappa = d.number("kappa", c.kappa);
    c.etas_end = d.number("etas_end", c.etas_end);
    c.min_noise_level = d.number("min_noise_level", c.min_noise_level);
    c.power = d.number("power", c.power);
    c.scale_factor = d.number("scale_factor", c.scale_factor);
    c.normalize_input = d.flag("normalize_input", c.normalize_input);
    c.cap_etas_start = d.flag("cap_etas_start", c.cap_etas_start);
    c.sf = d.integer("sf", c.sf);
    c.weight_divisor = d.number("weight_divisor", c.weight_divisor);
    if (d.text("schedule_name", "exponential") != "exponential")
      throw_bad_input(c.path, "diffusion.schedule_name: only the exponential schedule is supported");
    if (d.text("predict_type", "xstart") != "xstart")
      throw_bad_input(c.path, "diffusion.predict_type: only xstart (the released models') is supported");
    if (!d.flag("latent_flag", true)) throw_bad_input(c.path, "diffusion.latent_flag = false is not supported");
  }
  if (j.contains("sam") && !j["sam"].is_null()) {
    if (!j["sam"].is_object()) throw_bad_input(c.path, "sam must be an object");
    const JsonFields s(j["sam"], c.path + " (sam)");
    c.sam_points_per_side = int(s.integer("points_per_side", c.sam_points_per_side));
    samsr_range(c.path, "sam.points_per_side", c.sam_points_per_side, 1, 128);
    c.sam_pred_iou_thresh = s.number("pred_iou_thresh", c.sam_pred_iou_thresh);
    c.sam_stability_thresh = s.number("stability_thresh", c.sam_stability_thresh);
    c.sam_nms_thresh = s.number("nms_thresh", c.sam_nms_thresh);
    for (double v : {c.sam_pred_iou_thresh, c.sam_stability_thresh, c.sam_nms_thresh})
      if (!(v >= 0 && v <= 1)) throw_bad_input(c.path, "sam: the thresholds must be in 0..1");
  }
  samsr_range(c.path, "diffusion.steps", c.steps, 2, 10000);
  if (c.sf != 4) throw_bad_input(c.path, "diffusion.sf = " + std::to_string(c.sf) + ": rass-samsr runs x4 models");
  if (!(c.kappa > 0 && c.kappa < 1e3)) throw_bad_input(c.path, "diffusion.kappa must be in (0, 1000)");
  if (!(c.etas_end > 0 && c.etas_end <= 1)) throw_bad_input(c.path, "diffusion.etas_end must be in (0, 1]");
  if (!(c.min_noise_level > 0 && c.min_noise_level < 1)) throw_bad_input(c.path, "diffusion.min_noise_level must be in (0, 1)");
  if (!(c.power > 0 && c.power < 100)) throw_bad_input(c.path, "diffusion.power must be in (0, 100)");
  if (!(c.scale_factor > 0 && c.scale_factor < 1e6)) throw_bad_input(c.path, "diffusion.scale_factor must be in (0, 1e6)");
  if (!(c.weight_divisor > 1)) throw_bad_input(c.path, "diffusion.weight_divisor must be above 1 (kappa' = kappa (1 - W / d))");
  if (c.unet.in_channels != 6 || c.unet.out_channels != 3)
    throw_bad_input(c.path, "unet: in_channels must be 6 (latent + image) and out_channels 3");
  return c;
}

std::vector<double> resshift_sqrt_etas(const SamsrFolderConfig& c) {
  const int64_t T = c.steps;
  double start = std::min(c.min_noise_level / c.kappa, c.min_noise_level);
  if (c.cap_etas_start) start = std::min(start, std::sqrt(0.001));
  const double increaser = std::exp(1.0 / double(T - 1) * std::log(c.etas_end / start));
  std::vector<double> s(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) {
    // np.linspace(0, 1, T) ** power * (T - 1)
    const double lin = T == 1 ? 0.0 : double(t) / double(T - 1);
    const double p = std::pow(lin, c.power) * double(T - 1);
    s[size_t(t)] = std::pow(increaser, p) * start;
  }
  return s;
}

std::vector<int64_t> resshift_respaced(int64_t T, int64_t steps) {
  std::vector<int64_t> v;
  for (int64_t k = 0; k < steps; ++k) {
    const int64_t t = int64_t(double(T) / double(steps) * double(k));
    if (v.empty() || v.back() != t) v.push_back(t);
  }
  return v;
}

SamsrNoise samsr_noise_from_masks(const torch::Tensor& masks, at::Generator& gen) {
  const int64_t M = masks.size(0), H = masks.size(1), W = masks.size(2);
  const torch::Tensor m = masks.to(torch::kFloat).cpu();
  torch::Tensor sum = torch::zeros({3, H, W});
  for (int64_t i = 0; i < M; ++i) {
    const torch::Tensor n = at::randn({3, H, W}, gen, torch::TensorOptions().dtype(torch::kFloat));
    sum += n * m[i].unsqueeze(0);
  }
  const torch::Tensor count = m.sum(0);  // [H, W]
  sum = sum / torch::clamp_min(count, 1.0).unsqueeze(0);
  const torch::Tensor mean = sum.mean({1, 2}, true);
  const torch::Tensor sd = torch::clamp_min(sum.std({1, 2}, true, true), 1e-6);
  SamsrNoise out;
  out.noise = ((sum - mean) / sd).unsqueeze(0);
  const torch::Tensor mx = torch::clamp_min(count.max(), 1.0);
  out.weight = torch::clamp(count / mx, 0.0, 1.0).view({1, 1, H, W});
  return out;
}

Image samsr_latent_image(const torch::Tensor& z) {
  const torch::Tensor x = z.to(torch::kFloat).cpu();
  const float lo = x.min().item<float>(), hi = x.max().item<float>();
  // ((z - min) / (max - min + 1e-6) * 255).clamp(0, 255).byte(): truncation,
  // float32 tensors; the denominator is Python's float64, rounded once.
  const float den = float(double(hi) - double(lo) + 1e-6);
  const torch::Tensor scaled = ((x - lo) / den * 255.0f).clamp(0, 255).to(torch::kUInt8);
  // Channels reversed (RGB -> BGR, read as RGB), then H x W x 3.
  const torch::Tensor hwc = scaled.flip({0}).permute({1, 2, 0}).contiguous();
  Image img(int(x.size(2)), int(x.size(1)), 3, 8);
  std::memcpy(img.u8(), hwc.data_ptr<uint8_t>(), size_t(hwc.numel()));
  return img;
}

namespace {

// The config's sizes against the weights' shapes, before any module is
// built (a samsr.json that does not fit its file would otherwise allocate
// its own network first): the constructors' walk over the blocks, a few
// tensors each. Error(bad_input) naming both files.
struct SamsrShapes {
  const SamsrFolderConfig& c;
  const SafeTensorsFile& f;
  void expect(const std::string& name, const std::vector<int64_t>& shape) const {
    const TensorView* v = f.find(name);
    if (!v) throw_bad_input(c.path, "does not fit " + f.path() + ": it has no " + name + " " + shape_str(shape));
    if (v->shape != shape)
      throw_bad_input(c.path, "does not fit " + f.path() + ": " + name + " is " + shape_str(v->shape) +
                                  " there, the config makes it " + shape_str(shape));
  }
  void absent(const std::string& name, const std::string& why) const {
    if (f.find(name)) throw_bad_input(c.path, "does not fit " + f.path() + ": it has " + name + " (" + why + ")");
  }
};

void check_unet_shapes(const SamsrFolderConfig& c, const SafeTensorsFile& f) {
  const SamsrShapes s{c, f};
  const nn::ResShiftUNetConfig& u = c.unet;
  const int64_t mc = u.model_channels, emb = 4 * mc, dim = u.swin_embed_dim;
  s.expect("time_embed.0.weight", {emb, mc});
  s.expect("input_blocks.0.0.weight", {mc * u.channel_mult[0], u.in_channels, 3, 3});
  auto attends = [&](int64_t ds) {
    return std::find(u.attention_resolutions.begin(), u.attention_resolutions.end(), ds) != u.attention_resolutions.end();
  };
  auto resblock = [&](const std::string& p, int64_t in, int64_t out) {
    s.expect(p + "in_layers.2.weight", {out, in, 3, 3});
    s.expect(p + "emb_layers.1.weight", {u.use_scale_shift_norm ? 2 * out : out, emb});
  };
  auto swin = [&](const std::string& p, int64_t ch, int64_t ds) {
    s.expect(p + "patch_embed.proj.weight", {dim, ch, 1, 1});
    const int64_t w = ds <= u.window_size ? ds : u.window_size;
    for (int64_t b = 0; b < u.swin_depth; ++b) {
      const std::string q = p + "blocks." + std::to_string(b) + ".";
      s.expect(q + "attn.relative_position_bias_table", {(2 * w - 1) * (2 * w - 1), u.swin_heads()});
      s.expect(q + "mlp.fc1.weight", {int64_t(double(dim) * u.mlp_ratio), dim, 1, 1});
    }
    s.absent(p + "blocks." + std::to_string(u.swin_depth) + ".norm1.weight", "more Swin blocks than swin_depth");
  };
  int64_t ch = mc * u.channel_mult[0], ds = u.image_size, n = 1;
  std::vector<int64_t> chans{ch};
  const size_t levels = u.channel_mult.size();
  for (size_t l = 0; l < levels; ++l) {
    for (int64_t j = 0; j < u.num_res_blocks[l]; ++j, ++n) {
      const std::string p = "input_blocks." + std::to_string(n) + ".";
      resblock(p + "0.", ch, mc * u.channel_mult[l]);
      ch = mc * u.channel_mult[l];
      if (attends(ds) && j == 0) swin(p + "1.", ch, ds);
      else s.absent(p + "1.patch_embed.proj.weight", "a Swin layer where attention_resolutions has none");
      chans.push_back(ch);
    }
    if (l + 1 != levels) {
      chans.push_back(ch);
      ++n, ds /= 2;
    }
  }
  s.absent("input_blocks." + std::to_string(n) + ".0.in_layers.2.weight", "more input blocks than the config");
  resblock("middle_block.0.", ch, ch);
  swin("middle_block.1.", ch, ds);
  n = 0;
  for (size_t l = levels; l-- > 0;)
    for (int64_t i = 0; i <= u.num_res_blocks[l]; ++i, ++n) {
      const int64_t ich = chans.back();
      chans.pop_back();
      resblock("output_blocks." + std::to_string(n) + ".0.", ch + ich, mc * u.channel_mult[l]);
      ch = mc * u.channel_mult[l];
    }
  s.absent("output_blocks." + std::to_string(n) + ".0.in_layers.2.weight", "more output blocks than the config");
  s.expect("out.2.weight", {u.out_channels, mc * u.channel_mult[0], 3, 3});
}

void check_autoencoder_shapes(const SamsrFolderConfig& c, const SafeTensorsFile& f) {
  const SamsrShapes s{c, f};
  const nn::VqAutoencoderConfig& a = c.autoencoder;
  const size_t n = a.ch_mult.size();
  s.expect("quantize.embedding.weight", {a.n_embed, a.embed_dim});
  s.expect("encoder.conv_in.weight", {a.ch, a.in_channels, 3, 3});
  for (size_t i = 0; i < n; ++i) {
    const std::string p = "encoder.down." + std::to_string(i) + ".block.";
    s.expect(p + "0.conv1.weight", {a.ch * a.ch_mult[i], a.ch * (i == 0 ? 1 : a.ch_mult[i - 1]), 3, 3});
    s.expect(p + std::to_string(a.num_res_blocks - 1) + ".conv2.weight", {a.ch * a.ch_mult[i], a.ch * a.ch_mult[i], 3, 3});
    s.absent(p + std::to_string(a.num_res_blocks) + ".conv1.weight", "more blocks per level than num_res_blocks");
    const std::string d = "decoder.up." + std::to_string(i) + ".block.";
    s.expect(d + std::to_string(a.num_res_blocks) + ".conv2.weight", {a.ch * a.ch_mult[i], a.ch * a.ch_mult[i], 3, 3});
  }
  s.absent("encoder.down." + std::to_string(n) + ".block.0.conv1.weight", "more levels than ch_mult");
  s.expect("encoder.mid.block_1.conv1.weight", {a.ch * a.ch_mult[n - 1], a.ch * a.ch_mult[n - 1], 3, 3});
  s.expect("decoder.conv_in.weight", {a.ch * a.ch_mult[n - 1], a.z_channels, 3, 3});
  s.expect("decoder.conv_out.weight", {a.out_ch, a.ch * a.ch_mult[0], 3, 3});
}

}  // namespace

nn::ResShiftUNet load_samsr_unet(const SamsrFolderConfig& config, const std::string& dir) {
  const std::string path = dir + "/unet.safetensors";
  if (!file_exists(path))
    throw_bad_input(dir, "has no unet.safetensors (scripts/convert_samsr.py writes it from a network checkpoint; "
                         "without one the folder is only a start for rass-train resshift --set resshift.init=random)");
  const auto file = SafeTensorsFile::open(path);
  check_unet_shapes(config, *file);
  torch::NoGradGuard no_grad;
  nn::ResShiftUNet unet(config.unet);
  load_state_dict(*unet, *file, true);
  return unet;
}

SamsrModel::SamsrModel(const SamsrModelOptions& opt) {
  device = parse_device(opt.device);
  dtype = parse_dtype(opt.dtype);
  if (dtype == torch::kHalf && !device.is_cuda())
    throw_usage("--dtype fp16 needs --device cuda: LibTorch's CPU kernels have no fp16 convolution; use bf16 on CPU");
  config = read_samsr_config(opt.dir);
  if (opt.noise != "auto" && opt.noise != "sam" && opt.noise != "gaussian")
    throw_usage("--noise " + opt.noise + ": expected auto, sam or gaussian");
  sam_noise = opt.noise == "auto" ? config.sam_noise() : opt.noise == "sam";
  if (!sam_noise && !opt.sam_dir.empty())
    throw_usage("--sam " + opt.sam_dir + ": SAM makes SAMSR's noise; this run's noise is Gaussian (" +
                (opt.noise == "auto" ? "the model's method" : "--noise gaussian") + ") and reads no SAM folder");
  steps = opt.steps > 0 ? opt.steps : config.default_steps();
  if (steps > config.steps)
    throw_usage("--steps " + std::to_string(steps) + ": the model's chain has " + std::to_string(config.steps) + " steps");
  if (sam_noise && steps != 1)
    throw_usage((opt.steps > 0 ? "--steps " + std::to_string(steps) : "the model's " + std::to_string(steps) + " steps (a " +
                                 config.method + " model)") +
                " with SAM noise: SAMSR's weighted noise is defined for its one step (its released sampler restarts "
                "every step from the prior); use --noise gaussian for ResShift's chain, or --steps 1");
  sqrt_etas = resshift_sqrt_etas(config);
  torch::NoGradGuard no_grad;
  const std::string ae_file = opt.dir + "/autoencoder.safetensors";
  if (!file_exists(ae_file)) throw_bad_input(opt.dir, "has no autoencoder.safetensors (scripts/convert_samsr.py writes it)");
  if (opt.init_seed) {
    unet = nn::ResShiftUNet(config.unet);
    nn::init_resshift_weights(*unet, *opt.init_seed);
  } else {
    unet = load_samsr_unet(config, opt.dir);
    // A damaged file of finite size loads: NaN or infinity in a weight would
    // give black images with exit 0. Named here instead (one pass, ~0.1 s).
    check_finite_parameters(*unet, opt.dir + "/unet.safetensors");
  }
  {
    const auto file = SafeTensorsFile::open(ae_file);
    check_autoencoder_shapes(config, *file);
    vq = nn::VqAutoencoder(config.autoencoder);
    load_state_dict(*vq, *file, true);
  }
  check_finite_parameters(*vq, ae_file);
  unet->eval();
  vq->eval();
  unet->to(device, dtype);
  vq->to(device, dtype);
  // As the reference's convert_to_fp16: only the blocks' convolutions and
  // linear layers take the dtype; time_embed, the out head and every
  // GroupNorm32's parameters stay float32.
  if (dtype != torch::kFloat) unet->keep_float32_parts();
  if (sam_noise) {
    SamModelOptions so;
    so.dir = opt.sam_dir.empty() ? opt.dir + "/sam" : opt.sam_dir;
    if (!file_exists(so.dir + "/sam.json"))
      throw_bad_input(opt.dir, "SAM noise needs a SAM folder: " + so.dir +
                                   " has no sam.json (put rass-sam's ViT-B folder there or pass --sam DIR; "
                                   "--noise gaussian runs without SAM)");
    so.enhance = "off";
    so.device = opt.device;
    // SAM runs float32 whatever --dtype: the reference loads it so (only its
    // UNet and autoencoder are fp16), and its masks pass sharp thresholds.
    so.dtype = "fp32";
    // SAMSR's generator is SAM's: a RobustSAM or HQ-SAM folder (SAM's own
    // weights, frozen, beside their additions) runs SAM's path, without
    // the robust or HQ token.
    so.robust = "off";
    so.hq = "off";
    sam = std::make_unique<SamModel>(so);
    if (sam->is_sam2())
      throw_bad_input(so.dir, "is a SAM 2 folder; SAMSR's noise comes from SAM v1's automatic mask generator "
                              "(its ViT-B, sam_vit_b_01ec64.pth)");
  }
}

SamsrModel::~SamsrModel() = default;

torch::Tensor SamsrModel::sam_masks(const torch::Tensor& z) const {
  const Image img = samsr_latent_image(z[0]);
  SamEverythingOptions eo;
  eo.points_per_side = config.sam_points_per_side;
  eo.pred_iou_thresh = config.sam_pred_iou_thresh;
  eo.stability_score_thresh = config.sam_stability_thresh;
  eo.box_nms_thresh = config.sam_nms_thresh;
  const std::vector<SamMask> found = sam->everything(img, eo);
  const int64_t H = z.size(2), W = z.size(3);
  torch::Tensor masks = torch::zeros({int64_t(found.size()) + 1, H, W});
  torch::Tensor none = torch::ones({H, W});
  for (size_t i = 0; i < found.size(); ++i) {
    // Upsampled where everything() scored them (its stability and areas).
    const torch::Tensor b = sam->mask_pixels(found[i], W, H).to(torch::kFloat);
    masks[int64_t(i)].copy_(b);
    none *= (1 - b);
  }
  masks[int64_t(found.size())].copy_(none);
  return masks;
}

torch::Tensor SamsrModel::encode_lq(const torch::Tensor& y) const {
  // F.interpolate(y, scale_factor=4, mode='bicubic'): align_corners False, no antialias.
  const torch::Tensor up = F::interpolate(y.to(device, torch::kFloat),
                                          F::InterpolateFuncOptions()
                                              .scale_factor(std::vector<double>{double(config.sf), double(config.sf)})
                                              .mode(torch::kBicubic)
                                              .align_corners(false));
  return encode(up);
}

torch::Tensor SamsrModel::encode(const torch::Tensor& x) const {
  return (vq.ptr()->encode(x.to(device, dtype)) * config.scale_factor).to(torch::kFloat);
}

torch::Tensor SamsrModel::restore_tile(const torch::Tensor& y, at::Generator& gen, SamsrExtras* extras,
                                       const SamsrInjected* inj) const {
  const int64_t h = y.size(2), w = y.size(3);
  const torch::Tensor yd = y.to(device, torch::kFloat);
  const torch::Tensor z_y = encode_lq(yd);
  const double kappa = config.kappa;
  const int64_t T = config.steps;
  size_t chain_used = 0;
  auto randn = [&]() {
    return at::randn({1, 3, h, w}, gen, torch::TensorOptions().dtype(torch::kFloat)).to(device);
  };
  auto chain_noise = [&]() {
    if (!inj) return randn();
    if (chain_used >= inj->chain.size()) throw_runtime("samsr: fewer injected chain noises than steps");
    return inj->chain[chain_used++].to(device, torch::kFloat);
  };
  auto net = [&](const torch::Tensor& x, int64_t t_model, double eta) {
    const double sd = config.normalize_input ? std::sqrt(eta * kappa * kappa + 1) : 1.0;
    const torch::Tensor t = torch::full({1}, t_model, torch::TensorOptions().dtype(torch::kLong).device(device));
    // float32 in: the network casts to its blocks' dtype and runs its head in float32, as the reference.
    return unet.ptr()->forward(x.div(sd), t, yd).to(torch::kFloat);
  };
  torch::Tensor x0;
  if (steps == 1) {
    const double se = sqrt_etas[size_t(T - 1)];
    torch::Tensor x;
    if (sam_noise) {
      SamsrNoise n;
      if (inj) {
        n.noise = inj->noise, n.weight = inj->weight;
      } else {
        const torch::Tensor masks = sam_masks(z_y);
        if (extras) extras->masks += int(masks.size(0) - 1);
        n = samsr_noise_from_masks(masks, gen);
      }
      const torch::Tensor wt = n.weight.to(device, torch::kFloat) / config.weight_divisor;
      const torch::Tensor kap = (1.0 - wt) * float(kappa);
      const torch::Tensor sq = (1.0 + wt) * float(se);
      x = z_y + kap * sq * n.noise.to(device, torch::kFloat);
    } else {
      const torch::Tensor noise = inj ? inj->noise.to(device, torch::kFloat) : randn();
      x = z_y + float(kappa * se) * noise;
    }
    x0 = net(x, T - 1, se * se);
  } else {
    // ResShift's chain on the respaced schedule.
    const std::vector<int64_t> ts = resshift_respaced(T, steps);
    std::vector<double> etas;
    for (int64_t t : ts) etas.push_back(sqrt_etas[size_t(t)] * sqrt_etas[size_t(t)]);
    const size_t S = ts.size();
    torch::Tensor x = z_y + float(kappa * std::sqrt(etas[S - 1])) * (inj ? inj->noise.to(device, torch::kFloat) : randn());
    for (size_t i = S; i-- > 0;) {
      x0 = net(x, ts[i], etas[i]);
      if (i == 0) break;
      const double prev = etas[i - 1], alpha = etas[i] - prev;
      const torch::Tensor mean = float(prev / etas[i]) * x + float(alpha / etas[i]) * x0;
      const double var = kappa * kappa * prev / etas[i] * alpha;
      x = mean + float(std::sqrt(var)) * chain_noise();
    }
  }
  if (!torch::isfinite(x0).all().item<bool>())
    throw_runtime("the network's prediction holds non-finite values (NaN or infinity)" +
                  std::string(dtype == torch::kHalf ? ": fp16 overflowed; try --dtype bf16 or fp32" : ""));
  return vq.ptr()->decode((x0 / config.scale_factor).to(dtype)).to(torch::kFloat);
}

namespace {

// ImageSpliterTh.extract_starts.
std::vector<int64_t> samsr_starts(int64_t length, int64_t size, int64_t stride) {
  if (length <= size) return {0};
  std::vector<int64_t> s;
  for (int64_t a = 0; a < length; a += stride) {
    const int64_t v = a + size > length ? length - size : a;
    if (std::find(s.begin(), s.end(), v) == s.end()) s.push_back(v);
  }
  return s;
}

// Reflect padding right and bottom to a multiple of `m`, in steps the
// reflection allows (a side shorter than its padding reflects again).
torch::Tensor samsr_pad(torch::Tensor y, int64_t m) {
  while (true) {
    const int64_t h = y.size(2), w = y.size(3);
    const int64_t ph = (m - h % m) % m, pw = (m - w % m) % m;
    if (ph == 0 && pw == 0) return y;
    const int64_t sh = std::min(ph, h - 1), sw = std::min(pw, w - 1);
    if (sh <= 0 && sw <= 0)  // one pixel: nothing to reflect, repeat it
      return F::pad(y, F::PadFuncOptions({0, pw, 0, ph}).mode(torch::kReplicate));
    y = F::pad(y, F::PadFuncOptions({0, std::max<int64_t>(sw, 0), 0, std::max<int64_t>(sh, 0)}).mode(torch::kReflect));
  }
}

}  // namespace

Image SamsrModel::restore(const Image& rgb, uint64_t seed, const std::string& key, int chop_size, int chop_stride,
                          SamsrExtras* extras) const {
  c10::InferenceMode guard;
  const int64_t H = rgb.height, W = rgb.width, sf = config.sf;
  torch::Tensor y = torch::from_blob(const_cast<uint8_t*>(rgb.u8()), {H, W, 3}, torch::kUInt8)
                        .permute({2, 0, 1})
                        .to(torch::kFloat)
                        .div(255.0)
                        .unsqueeze(0);
  y = (y - 0.5) / 0.5;
  torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(stream_seed(seed, key, "samsr-noise"));
  auto one = [&](const torch::Tensor& tile) {
    const int64_t th = tile.size(2), tw = tile.size(3);
    const torch::Tensor out = restore_tile(samsr_pad(tile, size_multiple()), gen, extras);
    return out.slice(2, 0, th * sf).slice(3, 0, tw * sf).clamp(-1, 1).cpu();
  };
  torch::Tensor out;
  if (chop_size > 0 && (H > chop_size || W > chop_size)) {
    const std::vector<int64_t> hs = samsr_starts(H, chop_size, chop_stride), ws = samsr_starts(W, chop_size, chop_stride);
    out = torch::zeros({1, 3, H * sf, W * sf});
    torch::Tensor count = torch::zeros({1, 1, H * sf, W * sf});
    for (int64_t a : hs)
      for (int64_t b : ws) {
        const int64_t ae = std::min(H, a + chop_size), be = std::min(W, b + chop_size);
        const torch::Tensor r = one(y.slice(2, a, ae).slice(3, b, be));
        out.slice(2, a * sf, ae * sf).slice(3, b * sf, be * sf) += r;
        count.slice(2, a * sf, ae * sf).slice(3, b * sf, be * sf) += 1;
      }
    out = out / count;
  } else {
    out = one(y);
  }
  // tensor2img: [-1, 1] -> [0, 1], clamped, * 255, rounded (half to even, as numpy).
  const torch::Tensor u8 = torch::round((out * 0.5 + 0.5).clamp(0, 1) * 255.0).to(torch::kUInt8)[0].permute({1, 2, 0}).contiguous();
  Image img(int(W * sf), int(H * sf), 3, 8);
  std::memcpy(img.u8(), u8.data_ptr<uint8_t>(), size_t(u8.numel()));
  return img;
}

}  // namespace rass::model
