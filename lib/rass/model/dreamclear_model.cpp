#include "rass/model/dreamclear_model.hpp"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>
#include <torch/nn/functional/upsampling.h>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/found_file.hpp"
#include "rass/core/json_fields.hpp"
#include "rass/core/json_file.hpp"
#include "rass/degrade/pil_resize.hpp"
#include "rass/io/npy.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/color_fix.hpp"
#include "rass/model/config.hpp"
#include "rass/model/device.hpp"
#include "rass/model/restore.hpp"
#include "rass/model/torch_error.hpp"
#include "rass/nn/autocast.hpp"

namespace rass::model {

namespace {

constexpr char kConverter[] = "scripts/convert_dreamclear.py writes it";

void in_range(const std::string& path, const std::string& key, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi)
    throw_bad_input(path, key + " = " + std::to_string(v) + " is outside " + std::to_string(lo) + ".." + std::to_string(hi));
}

const nlohmann::json& object_at(const nlohmann::json& j, const char* key, const std::string& path) {
  if (!j.contains(key) || !j[key].is_object()) throw_bad_input(path, std::string("has no \"") + key + "\" object");
  return j[key];
}

// The config against the file's shapes before the modules are built: a
// dreamclear.json of other sizes is named by its first misfit instead of
// allocating a network of gigabytes first.
struct Shapes {
  const std::string& config;
  const SafeTensorsFile& f;
  void expect(const std::string& name, const std::vector<int64_t>& shape) const {
    const TensorView* v = f.find(name);
    if (!v) throw_bad_input(config, "does not fit " + f.path() + ": it has no " + name + " " + shape_str(shape));
    if (v->shape != shape)
      throw_bad_input(config, "does not fit " + f.path() + ": " + name + " is " + shape_str(v->shape) +
                                  " there, the config makes it " + shape_str(shape));
  }
  void absent(const std::string& name, const std::string& why) const {
    if (f.find(name)) throw_bad_input(config, "does not fit " + f.path() + ": it has " + name + " (" + why + ")");
  }
};

void check_dit_shapes(const DreamClearFolderConfig& c, const SafeTensorsFile& f) {
  const Shapes s{c.path, f};
  const nn::PixArtConfig& p = c.dit;
  const int64_t D = p.hidden_size, mlp = int64_t(double(D) * p.mlp_ratio);
  s.expect("base_model.x_embedder.proj.weight", {D, p.in_channels, p.patch_size, p.patch_size});
  s.expect("base_model.y_embedder.y_embedding", {p.model_max_length, p.caption_channels});
  s.expect("base_model.y_embedder.y_proj.fc1.weight", {D, p.caption_channels});
  s.expect("base_model.csize_embedder.mlp.0.weight", {D / 3, 256});
  s.expect("base_model.final_layer.linear.weight", {p.patch_size * p.patch_size * p.out_channels(), D});
  const std::string last = "base_model.blocks." + std::to_string(p.depth - 1) + ".";
  s.expect(last + "attn.qkv.weight", {3 * D, D});
  s.expect(last + "mlp.fc1.weight", {mlp, D});
  s.absent("base_model.blocks." + std::to_string(p.depth) + ".attn.qkv.weight", "more blocks than depth");
  const std::string lc = "controlnet_lq." + std::to_string(p.copy_blocks_num - 1) + ".copied_block.";
  s.expect(lc + "attn.qkv.weight", {3 * D, D});
  s.absent("controlnet_lq." + std::to_string(p.copy_blocks_num) + ".copied_block.attn.qkv.weight",
           "more ControlFormer blocks than copy_blocks_num");
  s.expect("am_lq.0.experts." + std::to_string(p.num_experts - 1) + ".shared_proj.weight", {D / 2, D});
  s.absent("am_lq.0.experts." + std::to_string(p.num_experts) + ".shared_proj.weight", "more experts than num_experts");
  s.expect("am_lq.0.gate.2.weight", {p.num_experts, p.num_experts * 8});
  s.expect("cross_de.0.kv_linear.weight", {2 * D, D});
}

void check_swinir_shapes(const DreamClearFolderConfig& c, const SafeTensorsFile& f) {
  const Shapes s{c.path, f};
  const nn::SwinIRConfig& w = c.swinir;
  const int64_t E = w.embed_dim, n = int64_t(w.depths.size()), table = (2 * w.window_size - 1) * (2 * w.window_size - 1);
  s.expect("conv_first.1.weight", {E, w.in_chans * w.unshuffle_scale * w.unshuffle_scale, 3, 3});
  for (int64_t i = 0; i < n; ++i) {
    const std::string l = "layers." + std::to_string(i) + ".residual_group.blocks.";
    const std::string b = l + std::to_string(w.depths[size_t(i)] - 1) + ".";
    s.expect(b + "attn.relative_position_bias_table", {table, w.num_heads[size_t(i)]});
    s.expect(b + "mlp.fc1.weight", {int64_t(double(E) * w.mlp_ratio), E});
    s.absent(l + std::to_string(w.depths[size_t(i)]) + ".attn.qkv.weight", "more blocks than depths says");
  }
  s.absent("layers." + std::to_string(n) + ".conv.weight", "more layers than depths lists");
  s.expect("conv_last.weight", {w.in_chans, 64, 3, 3});
}

}  // namespace

DreamClearFolderConfig read_dreamclear_config(const std::string& dir) {
  DreamClearFolderConfig c;
  c.path = dir + "/dreamclear.json";
  if (!file_exists(c.path)) throw_bad_input(dir, std::string("is not a DreamClear model folder (no dreamclear.json; ") + kConverter + ")");
  const nlohmann::json j(read_found_json(c.path, /*unique_keys=*/true));
  if (!j.is_object()) throw_bad_input(c.path, "is not a JSON object");
  const JsonFields f(j, c.path);
  if (f.text("format", "") != "rass-dreamclear") throw_bad_input(c.path, "format is not \"rass-dreamclear\"");
  if (f.integer("version", 1) != 1)
    throw_bad_input(c.path, "version " + std::to_string(f.integer("version", 1)) + ": this rass reads version 1");
  c.image_size = f.integer("image_size", c.image_size);
  in_range(c.path, "image_size", c.image_size, 64, 8192);
  if (c.image_size % 64) throw_bad_input(c.path, "image_size must be a multiple of 64");
  c.scale_factor = f.number("scale_factor", c.scale_factor);
  if (!(c.scale_factor > 0 && c.scale_factor < 100)) throw_bad_input(c.path, "scale_factor must be positive");
  if (j.contains("diffusion")) {
    const JsonFields d(object_at(j, "diffusion", c.path), c.path + " (diffusion)");
    c.train_steps = d.integer("train_steps", c.train_steps);
    c.beta_schedule = d.text("beta_schedule", c.beta_schedule);
  }
  in_range(c.path, "diffusion.train_steps", c.train_steps, 2, 100000);
  if (c.beta_schedule != "linear") throw_bad_input(c.path, "diffusion.beta_schedule '" + c.beta_schedule + "': only \"linear\" (PixArt's) is supported");
  {
    const JsonFields d(object_at(j, "dit", c.path), c.path + " (dit)");
    nn::PixArtConfig& p = c.dit;
    p.hidden_size = d.integer("hidden_size", p.hidden_size);
    p.depth = d.integer("depth", p.depth);
    p.num_heads = d.integer("num_heads", p.num_heads);
    p.patch_size = d.integer("patch_size", p.patch_size);
    p.in_channels = d.integer("in_channels", p.in_channels);
    p.learn_sigma = d.flag("learn_sigma", p.learn_sigma);
    p.mlp_ratio = d.number("mlp_ratio", p.mlp_ratio);
    p.caption_channels = d.integer("caption_channels", p.caption_channels);
    p.model_max_length = d.integer("model_max_length", p.model_max_length);
    p.lewei_scale = d.number("lewei_scale", p.lewei_scale);
    in_range(c.path, "dit.patch_size", p.patch_size, 1, 16);
    p.base_size = d.integer("base_size", c.image_size / 8 / p.patch_size);
    p.copy_blocks_num = d.integer("copy_blocks_num", p.copy_blocks_num);
    p.num_experts = d.integer("num_experts", p.num_experts);
    in_range(c.path, "dit.hidden_size", p.hidden_size, 6, 8192);
    in_range(c.path, "dit.depth", p.depth, 1, 256);
    in_range(c.path, "dit.num_heads", p.num_heads, 1, 256);
    in_range(c.path, "dit.caption_channels", p.caption_channels, 1, 65536);
    in_range(c.path, "dit.model_max_length", p.model_max_length, 1, 4096);
    in_range(c.path, "dit.base_size", p.base_size, 1, 4096);
    in_range(c.path, "dit.copy_blocks_num", p.copy_blocks_num, 1, p.depth);
    in_range(c.path, "dit.num_experts", p.num_experts, 1, 64);
    if (p.in_channels != 4) throw_bad_input(c.path, "dit.in_channels must be 4 (the VAE's latent)");
    if (!p.learn_sigma) throw_bad_input(c.path, "dit.learn_sigma = false: the sampler needs the learned variance (DreamClear's)");
    if (p.hidden_size % 3 || p.hidden_size % p.num_heads || p.hidden_size % 4)
      throw_bad_input(c.path, "dit.hidden_size must be a multiple of 3, 4 and num_heads");
    if (!(p.mlp_ratio > 0 && p.mlp_ratio <= 16)) throw_bad_input(c.path, "dit.mlp_ratio must be in (0, 16]");
    if (!(p.lewei_scale > 0 && p.lewei_scale < 1e3)) throw_bad_input(c.path, "dit.lewei_scale must be positive");
  }
  {
    const JsonFields s(object_at(j, "swinir", c.path), c.path + " (swinir)");
    nn::SwinIRConfig& w = c.swinir;
    w.in_chans = s.integer("in_chans", w.in_chans);
    w.embed_dim = s.integer("embed_dim", w.embed_dim);
    w.depths = s.integers("depths", w.depths);
    w.num_heads = s.integers("num_heads", w.num_heads);
    w.window_size = s.integer("window_size", w.window_size);
    w.mlp_ratio = s.number("mlp_ratio", w.mlp_ratio);
    w.img_size = s.integer("img_size", w.img_size);
    w.sf = s.integer("sf", w.sf);
    w.unshuffle_scale = s.integer("unshuffle_scale", w.unshuffle_scale);
    w.upsampler = s.text("upsampler", w.upsampler);
    w.resi_connection = s.text("resi_connection", w.resi_connection);
    w.img_range = s.number("img_range", w.img_range);
    if (w.in_chans != 3) throw_bad_input(c.path, "swinir.in_chans must be 3");
    in_range(c.path, "swinir.embed_dim", w.embed_dim, 1, 4096);
    in_range(c.path, "swinir.window_size", w.window_size, 2, 64);
    in_range(c.path, "swinir.img_size", w.img_size, 1, 8192);
    if (w.depths.empty() || w.depths.size() > 64 || w.depths.size() != w.num_heads.size())
      throw_bad_input(c.path, "swinir.depths and swinir.num_heads must be lists of one length (1..64)");
    for (size_t i = 0; i < w.depths.size(); ++i) {
      in_range(c.path, "swinir.depths[" + std::to_string(i) + "]", w.depths[i], 1, 64);
      in_range(c.path, "swinir.num_heads[" + std::to_string(i) + "]", w.num_heads[i], 1, w.embed_dim);
      if (w.embed_dim % w.num_heads[i]) throw_bad_input(c.path, "swinir.embed_dim must be a multiple of every num_heads");
    }
    if (w.sf != 8 || w.unshuffle_scale != 8 || w.upsampler != "nearest+conv" || w.resi_connection != "1conv")
      throw_bad_input(c.path, "swinir: only DreamClear's SwinIR (sf 8, unshuffle_scale 8, upsampler \"nearest+conv\", "
                              "resi_connection \"1conv\") is built");
    if (!(w.mlp_ratio > 0 && w.mlp_ratio <= 16)) throw_bad_input(c.path, "swinir.mlp_ratio must be in (0, 16]");
    if (!(w.img_range > 0)) throw_bad_input(c.path, "swinir.img_range must be positive");
  }
  // The working size is a multiple of 64: SwinIR's features (1/8) must fill its windows.
  if (64 % (c.swinir.sf * c.swinir.window_size) != 0)
    throw_bad_input(c.path, "swinir: window_size " + std::to_string(c.swinir.window_size) +
                                " does not divide the 1/8 features of 64-pixel multiples");
  return c;
}

std::vector<uint8_t> read_dreamclear_caption_bytes(const std::string& path) {
  // A released caption is 1.9 MB (120 x 4096 float32); 256 MiB is far past any.
  constexpr size_t kMaxCaptionBytes = size_t(256) << 20;
  return read_file_bytes(
      path, kMaxCaptionBytes,
      [&](const uint8_t* head, size_t n) {
        if (n < 4 || head[0] != 'P' || head[1] != 'K')
          throw_bad_input(path, "is not an .npz (a ZIP archive) of T5 features");
      },
      "more than 256 MiB: not a caption's T5 features");
}

DreamClearCaption read_dreamclear_caption(const std::string& path, int64_t tokens, int64_t channels) {
  return parse_dreamclear_caption(read_dreamclear_caption_bytes(path), path, tokens, channels);
}

DreamClearCaption parse_dreamclear_caption(const std::vector<uint8_t>& bytes, const std::string& path, int64_t tokens,
                                           int64_t channels) {
  // A released caption's features are 1.9 MB inflated; a ZIP bomb is refused before it inflates.
  const NpzFile z = parse_npz(bytes.data(), bytes.size(), path, uint64_t(256) << 20);
  auto get = [&](const char* key) -> const NpyArray& {
    const auto it = z.arrays.find(key);
    if (it == z.arrays.end())
      throw_bad_input(path, std::string("has no '") + key + "' array (DreamClear's tools/extract_t5_features.py writes "
                                                           "caption_feature and attention_mask)");
    return it->second;
  };
  const NpyArray& f = get("caption_feature");
  const NpyArray& m = get("attention_mask");
  // T5's features are floats (the released files hold float32); integers are
  // another array under this name, which the reference's model cannot take.
  if (!dtype_is_float(f.dtype))
    throw_bad_input(path, std::string("caption_feature holds ") + dtype_descr(f.dtype) +
                              " values; T5 features are floating point (float32 as extract_t5_features.py writes)");
  // [tokens, channels] without the batch dimension is taken as [1, tokens,
  // channels]: the shape leaves no doubt (the reference would refuse it).
  std::vector<int64_t> fs = f.shape, ms = m.shape;
  if (fs.size() == 3 && fs[0] == 1) fs.erase(fs.begin());
  if (ms.size() == 2 && ms[0] == 1) ms.erase(ms.begin());
  if (fs != std::vector<int64_t>{tokens, channels})
    throw_bad_input(path, "caption_feature has shape " + shape_str(f.shape) + "; the model takes [1, " +
                              std::to_string(tokens) + ", " + std::to_string(channels) + "] (T5-XXL, " +
                              std::to_string(tokens) + " tokens)");
  if (ms != std::vector<int64_t>{tokens})
    throw_bad_input(path, "attention_mask has shape " + shape_str(m.shape) + "; expected [1, " + std::to_string(tokens) + "]");
  const std::vector<float> fv = npy_to_f32(f);
  const std::vector<double> mv = npy_to_f64(m);
  for (float v : fv)
    if (!std::isfinite(v)) throw_bad_input(path, "caption_feature holds non-finite values");
  DreamClearCaption c;
  c.features = torch::from_blob(const_cast<float*>(fv.data()), {1, tokens, channels}, torch::kFloat).clone();
  c.mask = torch::empty({1, tokens}, torch::kFloat);
  int64_t kept = 0;
  for (int64_t i = 0; i < tokens; ++i) {
    const double v = mv[size_t(i)];
    if (v != 0 && v != 1)
      throw_bad_input(path, "attention_mask holds " + std::to_string(v) + " at token " + std::to_string(i) +
                                "; a token mask holds 0 and 1 only");
    c.mask[0][i] = float(v);
    kept += v == 1;
  }
  if (kept == 0) throw_bad_input(path, "attention_mask keeps no token");
  return c;
}

DreamClearSizes dreamclear_sizes(int w_in, int h_in, int upscale, int min_size) {
  DreamClearSizes s;
  double w = double(w_in) * upscale, h = double(h_in) * upscale;
  s.out_w = int(w), s.out_h = int(h);
  if (std::min(w, h) < min_size) {
    const double k = double(min_size) / std::min(w, h);
    w *= k, h *= k;
  }
  // np.round: halves to even, as nearbyint in the default rounding mode.
  s.work_w = int(std::nearbyint(w / 64.0)) * 64;
  s.work_h = int(std::nearbyint(h / 64.0)) * 64;
  return s;
}

std::vector<int64_t> dreamclear_tile_starts(int64_t size, int64_t tile, int64_t overlap) {
  if (tile < 1 || overlap < 0 || overlap >= tile || tile > size)
    throw_runtime("dreamclear tiles: tile " + std::to_string(tile) + ", overlap " + std::to_string(overlap) +
                  " over " + std::to_string(size));
  int64_t n = 0, cur = 0;
  while (cur < size) {
    cur = std::max<int64_t>(n * tile - overlap * n, 0) + tile;
    ++n;
  }
  std::vector<int64_t> out;
  for (int64_t k = 0; k < n; ++k) out.push_back(k == n - 1 ? size - tile : std::max<int64_t>(k * tile - overlap * k, 0));
  return out;
}

torch::Tensor dreamclear_tile_weights(int64_t h, int64_t w) {
  const double var = 0.01, pi = 3.141592653589793;
  auto probs = [&](int64_t n, double mid) {
    std::vector<double> p(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      p[size_t(i)] = std::exp(-(double(i) - mid) * (double(i) - mid) / double(n * n) / (2 * var)) / std::sqrt(2 * pi * var);
    return p;
  };
  const std::vector<double> xp = probs(w, double(w - 1) / 2), yp = probs(h, double(h) / 2);  // the reference's centres
  torch::Tensor out = torch::empty({h, w}, torch::kDouble);
  double* o = out.data_ptr<double>();
  for (int64_t i = 0; i < h; ++i)
    for (int64_t j = 0; j < w; ++j) o[i * w + j] = yp[size_t(i)] * xp[size_t(j)];
  return out;
}

DreamClearModel::DreamClearModel(const DreamClearModelOptions& opt) {
  device = parse_device(opt.device);
  dtype = parse_dtype(opt.dtype);
  if (dtype == torch::kHalf && !device.is_cuda())
    throw_usage("--dtype fp16 needs --device cuda: LibTorch's CPU kernels have no fp16 convolution; use bf16 on CPU");
  config = read_dreamclear_config(opt.dir);
  for (const char* part : {"dit.safetensors", "swinir.safetensors"})
    if (!file_exists(opt.dir + "/" + part)) throw_bad_input(opt.dir, std::string("has no ") + part + " (" + kConverter + ")");
  if (!file_exists(opt.dir + "/vae/config.json"))
    throw_bad_input(opt.dir, "has no vae/config.json (the diffusers AutoencoderKL folder DreamClear uses)");
  torch::NoGradGuard no_grad;
  {
    const auto f = SafeTensorsFile::open(opt.dir + "/dit.safetensors");
    check_dit_shapes(config, *f);
    dit = nn::DreamClearDiT(config.dit);
    load_state_dict(*dit, *f, true);
  }
  {
    const auto f = SafeTensorsFile::open(opt.dir + "/swinir.safetensors");
    check_swinir_shapes(config, *f);
    swinir = nn::SwinIR(config.swinir);
    load_state_dict(*swinir, *f, true);
  }
  const nn::VaeConfig vcfg = read_vae_config(opt.dir + "/vae/config.json");
  if (vcfg.latent_channels != config.dit.in_channels || vcfg.block_out_channels.size() != 4)
    throw_bad_input(opt.dir + "/vae/config.json", "is not an SD VAE with 4 latent channels and 8x downsampling");
  vae = for_config(opt.dir + "/vae/config.json", [&] { return nn::AutoencoderKL(vcfg); });
  load_component(*vae, opt.dir + "/vae");
  check_finite_parameters(*dit, opt.dir + "/dit.safetensors");
  check_finite_parameters(*swinir, opt.dir + "/swinir.safetensors");
  check_finite_parameters(*vae, opt.dir + "/vae");
  dit->eval();
  swinir->eval();
  vae->eval();
  // On CUDA the DiT keeps float32 weights and runs under fp16/bf16 autocast,
  // as the reference's accelerator runs it (its config has full_mixed off):
  // the residual stream, LayerNorms, softmax and modulations stay float32.
  // LibTorch 1.13's CPU autocast has no dtype control: there the weights are cast.
  dit_autocast = device.is_cuda() && dtype != torch::kFloat;
  dit->to(device, dit_autocast ? torch::kFloat : dtype);
  swinir->to(device);
  vae->to(device);
}

DreamClearCaption DreamClearModel::null_caption() const {
  DreamClearCaption c;
  c.features = dit->base_model->y_embedder->y_embedding.to(torch::kCPU, torch::kFloat).unsqueeze(0).clone();
  c.mask = torch::ones({1, c.features.size(1)});
  return c;
}

torch::Tensor DreamClearModel::guided_output(const torch::Tensor& z, int64_t t, const torch::Tensor& c_lq,
                                             const torch::Tensor& c_pre, const DreamClearCaption& caption,
                                             const DreamClearRun& run) const {
  nn::DreamClearDitInput in;
  in.timestep = torch::full({1}, double(t), torch::dtype(torch::kFloat).device(device));
  in.caption = caption.features.to(device).unsqueeze(1);  // [1, 1, L, C]
  in.mask = caption.mask.to(device);
  // test.py's size conditions, whatever the image: 1024 x 1024, aspect ratio 1.
  in.img_hw = torch::tensor({1024.0f, 1024.0f}).view({1, 2});
  in.aspect = torch::tensor({1.0f}).view({1, 1});
  const int64_t H = z.size(2), W = z.size(3), full = config.image_size / 8;
  auto run_one = [&](const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& b) {
    nn::DreamClearDitInput i = in;
    i.x = x, i.c_lq = a, i.c_pre = b;
    const nn::AutocastScope autocast(dit_autocast, dtype);
    return dit.ptr()->forward_cfg(i, run.cfg_scale).to(torch::kFloat);
  };
  // As the reference: untiled at the model's size, else tiles of min(tile, h, w)
  // (one tile that covers the latent is the whole latent); --tile 0 never tiles.
  const int64_t ts = std::min({run.tile, H, W});
  if (run.tile == 0 || (H == full && W == full) || (H == ts && W == ts)) return run_one(z, c_lq, c_pre);
  // A latent shorter than --tile makes the tiles smaller; an overlap not
  // below them would never advance (the reference's loop does not end, its
  // min_size 1024 never gets there): then a quarter of the tile, the released
  // 32 of 128.
  const int64_t overlap = run.tile_overlap < ts ? run.tile_overlap : ts / 4;
  const torch::Tensor wt = dreamclear_tile_weights(ts, ts).to(device);
  torch::Tensor acc = torch::zeros({1, dit->config.out_channels(), H, W}, torch::dtype(torch::kFloat).device(device));
  torch::Tensor cnt = torch::zeros_like(acc);
  using torch::indexing::Slice;
  // As the reference: columns outer, rows inner; each weighted tile added in
  // float64 into the float32 sums.
  for (int64_t x0 : dreamclear_tile_starts(W, ts, overlap))
    for (int64_t y0 : dreamclear_tile_starts(H, ts, overlap)) {
      const auto ys = Slice(y0, y0 + ts), xs = Slice(x0, x0 + ts);
      const torch::Tensor out = run_one(z.index({Slice(), Slice(), ys, xs}), c_lq.index({Slice(), Slice(), ys, xs}),
                                        c_pre.index({Slice(), Slice(), ys, xs}));
      torch::Tensor a = acc.index({Slice(), Slice(), ys, xs}), c = cnt.index({Slice(), Slice(), ys, xs});
      a.copy_(a.to(torch::kDouble) + out.to(torch::kDouble) * wt);
      c.copy_(c.to(torch::kDouble) + wt);
    }
  return acc / cnt;
}

torch::Tensor DreamClearModel::start_latent(const torch::Tensor& latent_pre, const DreamClearRun& run,
                                            at::Generator& gen) const {
  const std::vector<int64_t> shape{1, latent_pre.size(1), latent_pre.size(2), latent_pre.size(3)};
  const torch::Tensor n = at::randn(shape, gen, torch::TensorOptions().dtype(torch::kFloat)).to(device);
  if (run.lre_start < 0) return n;
  if (run.lre_start >= config.train_steps)
    throw_usage("--lre-start " + std::to_string(run.lre_start) + ": the model's diffusion has steps 0.." +
                std::to_string(config.train_steps - 1));
  // IDDPM(str(train_steps)).q_sample: the unrespaced schedule's float64 tables read as float32.
  const nn::IddpmSchedule full = nn::make_iddpm_schedule(config.train_steps, config.train_steps, config.beta_schedule);
  const double a = full.alphas_cumprod[size_t(run.lre_start)];
  return double(float(std::sqrt(a))) * latent_pre.to(torch::kFloat) + double(float(std::sqrt(1.0 - a))) * n;
}

torch::Tensor DreamClearModel::sample(const torch::Tensor& c_lq, const torch::Tensor& c_pre,
                                      const DreamClearCaption& caption, const DreamClearRun& run, at::Generator& gen,
                                      const DreamClearInjected* inj) const {
  const nn::IddpmSchedule s = nn::make_iddpm_schedule(config.train_steps, run.steps, config.beta_schedule);
  const auto opts = torch::TensorOptions().dtype(torch::kFloat);
  const std::vector<int64_t> shape{1, c_lq.size(1), c_lq.size(2), c_lq.size(3)};
  torch::Tensor z = inj ? inj->z0.to(device, torch::kFloat) : start_latent(c_pre, run, gen);
  if (inj && int64_t(inj->noise.size()) < s.steps() - 1) throw_runtime("DreamClear: fewer injected noises than steps");
  for (int64_t i = s.steps() - 1; i >= 0; --i) {
    const torch::Tensor out = guided_output(z, s.timesteps[size_t(i)], c_lq, c_pre, caption, run);
    torch::Tensor noise;
    if (i > 0) noise = inj ? inj->noise[size_t(s.steps() - 1 - i)].to(device) : at::randn(shape, gen, opts).to(device);
    z = nn::iddpm_p_sample(s, i, z, out, noise);
  }
  return z;
}

Image DreamClearModel::restore(const Image& rgb, const DreamClearCaption& caption, const DreamClearRun& run,
                               at::Generator& gen, DreamClearTrace* trace, const DreamClearInjected* inj) const {
  namespace F = torch::nn::functional;
  torch::NoGradGuard no_grad;
  const DreamClearSizes sz = dreamclear_sizes(rgb.width, rgb.height, run.upscale, run.min_size);
  if (sz.work_w < 64 || sz.work_h < 64 || sz.out_w < 1 || sz.out_h < 1)
    throw_bad_input("", "a " + std::to_string(rgb.width) + "x" + std::to_string(rgb.height) +
                            " image is too small: its working size rounds to under 64 pixels (raise --min-size or --upscale)");
  const torch::Tensor img_lq = image_to_tensor(pil_resize(rgb, sz.work_w, sz.work_h, PilFilter::bicubic)).to(device);
  const torch::Tensor img_pre = swinir.ptr()->forward(img_lq).clamp(0, 1);
  const float sf = float(config.scale_factor);
  auto encode = [&](const torch::Tensor& x) {
    return run.vae_tile ? tiled_encode(*vae.ptr(), x, run.vae_tiling) : vae.ptr()->encode(x);
  };
  const torch::Tensor latent_lq = encode(2 * img_lq - 1).mode() * sf;
  const torch::Tensor latent_pre = encode(2 * img_pre - 1).mode() * sf;
  const torch::Tensor samples = sample(latent_lq, latent_pre, caption, run, gen, inj);
  // NaN or infinity would be written as a black image with exit 0: a failure instead.
  if (!torch::isfinite(samples).all().item<bool>())
    throw_runtime("the sample holds non-finite values (NaN or infinity)" +
                  std::string(dtype == torch::kHalf ? ": fp16 overflowed; try --dtype bf16 or fp32" : "") +
                  " (an extreme --cfg or caption can do it)");
  const torch::Tensor z = samples / sf;
  const torch::Tensor decoded =
      ((run.vae_tile ? tiled_decode(*vae.ptr(), z, run.vae_tiling) : vae.ptr()->decode(z)) + 1) / 2;
  if (!torch::isfinite(decoded).all().item<bool>())
    throw_runtime("the VAE's decoding holds non-finite values (NaN or infinity)");
  const torch::Tensor hq = run.color_fix ? wavelet_color_fix(decoded, img_pre) : decoded.clamp(0, 1);
  const torch::Tensor out = F::interpolate(hq, F::InterpolateFuncOptions()
                                                   .size(std::vector<int64_t>{sz.out_h, sz.out_w})
                                                   .mode(torch::kBicubic)
                                                   .align_corners(false));
  if (trace) *trace = {img_lq, img_pre, latent_lq, latent_pre, samples, decoded, hq};
  // Tensor2PIL: x * 255, clip to [0, 255], astype(uint8) (truncation): ToPILImage's conversion of the clamped image.
  return tensor_to_image(out.clamp(0, 1));
}

}  // namespace rass::model
