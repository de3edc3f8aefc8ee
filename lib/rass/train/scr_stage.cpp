#include "rass/train/scr_stage.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>


#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/rng.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/iqa_lpips.hpp"
#include "rass/model/model_folder.hpp"
#include "rass/model/restore.hpp"
#include "rass/nn/lora.hpp"
#include "rass/text/caption_pack.hpp"
#include "rass/train/data_order.hpp"
#include "rass/train/scl_loss.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace rass::train {

namespace {

// OSEDiff's initialize_unet target patterns (REFERENCE.md 3).
const std::vector<std::string> kOsediffTargets = {"to_k",     "to_q",          "to_v",     "to_out.0", "conv",
                                                  "conv1",    "conv2",         "conv_in",  "conv_shortcut",
                                                  "conv_out", "proj_out",      "proj_in",  "ff.net.2", "ff.net.0.proj"};
const char* kAdapters[] = {"default_encoder", "default_decoder", "default_others"};

json scr_defaults() {
  return json{
      {"sd", ""},                // diffusers SD 2.x folder (stable-diffusion-2-1-base)
      {"hq_dir", ""},            // HQ images
      {"pack_dir", ""},          // rass-caption-map packs (<key>.h5)
      {"manifest", ""},          // or JSON lines {"hq": ..., "pack": ...}
      {"crop_size", 512},
      {"flip", true},
      {"preset", "rass"},        // rass-degrade preset making the LQ online
      {"prompt", ""},            // prompt of items without a pack (scl off)
      {"lora_rank", 4},
      {"lora_alpha", 8.0},       // PEFT's default (OSEDiff never sets it): scale 2 at rank 4
      {"lora_targets", kOsediffTargets},
      {"train_conv_in", true},   // conv_in's weight and bias trained fully (OSEDiff)
      {"timestep", 1},           // the paper's t = 1 (OSEDiff's code: 999 with ddpm)
      {"formula", "residual"},   // residual: x0 = z - eps (the paper); ddpm: the scheduler's x0
      {"prompt_style", ""},      // recorded in rass.json; "": the packs' own (osediff when none)
      {"w_mse", 1.0},
      {"w_lpips", 2.0},
      {"lpips_weights", ""},     // lpips_vgg.safetensors (scripts/convert_iqa_lpips.py); "": MSE only
      {"scl", true},             // false: OSEDiff+ (seed 000's ablation baseline)
      {"lambda_region", 1e-3},
      {"lambda_pixel", 5e-5},
      {"scl_layers", json::array()},  // substrings of attn2 paths; []: every cross-attention layer
      {"vae_sample", true},      // latent_dist.sample() with a keyed draw (OSEDiff); false: the mean
  };
}

json scr_loop_defaults() {
  // OSEDiff's train_osediff.py: AdamW lr 5e-5, weight decay 1e-2, betas
  // (0.9, 0.999), eps 1e-8, constant schedule, max_grad_norm 1.0.
  return json{{"lr", 5e-5}, {"weight_decay", 1e-2}, {"beta1", 0.9}, {"beta2", 0.999}, {"eps", 1e-8},
              {"schedule", "constant"}, {"clip_grad_norm", 1.0}};
}

// Typed access to a setting, Error(usage) naming the key.
struct Settings {
  const json& j;
  json defaults = scr_defaults();
  const json& at(const std::string& k) const {
    if (!defaults.contains(k)) throw_runtime("scr: unknown setting " + k);
    return j.contains(k) ? j[k] : defaults[k];
  }
  std::string str(const std::string& k) const {
    if (!at(k).is_string()) throw_usage("scr setting " + k + " must be a string");
    return at(k).get<std::string>();
  }
  double num(const std::string& k) const {
    if (!at(k).is_number()) throw_usage("scr setting " + k + " must be a number");
    const double v = at(k).get<double>();
    if (!std::isfinite(v)) throw_usage("scr setting " + k + " must be finite");
    return v;
  }
  int64_t integer(const std::string& k) const {
    if (!at(k).is_number_integer()) throw_usage("scr setting " + k + " must be an integer");
    return at(k).get<int64_t>();
  }
  bool flag(const std::string& k) const {
    if (!at(k).is_boolean()) throw_usage("scr setting " + k + " must be true or false");
    return at(k).get<bool>();
  }
  std::vector<std::string> list(const std::string& k) const {
    if (!at(k).is_array()) throw_usage("scr setting " + k + " must be a list of strings");
    std::vector<std::string> out;
    for (const json& e : at(k)) {
      if (!e.is_string() || e.get<std::string>().empty()) throw_usage("scr setting " + k + " must be a list of non-empty strings");
      out.push_back(e.get<std::string>());
    }
    return out;
  }
};

}  // namespace

struct ScrStage::Impl {
  StageEnv env;
  std::unique_ptr<model::RestoreModel> sd;
  std::unique_ptr<ScrData> data;
  std::unique_ptr<DataOrder> order;
  nn::Lpips lpips{nullptr};
  std::map<std::string, std::vector<std::string>> groups;  // adapter -> layer paths
  std::vector<std::string> scl_layers;
  int64_t rank = 4;
  double alpha = 8;
  bool train_conv_in = true;
  int timestep = 1;
  model::Formula formula = model::Formula::residual;
  std::string formula_name, prompt_style;
  int64_t crop = 512;  // recorded as rass-restore's process_size
  double w_mse = 1, w_lpips = 2, lambda_region = 1e-3, lambda_pixel = 5e-5;
  bool scl = true, vae_sample = true;
  std::map<std::vector<int64_t>, torch::Tensor> context_cache;  // prompt ids -> embedding (frozen encoder)

  torch::Tensor context(const std::vector<int64_t>& ids) {
    auto it = context_cache.find(ids);
    if (it != context_cache.end()) return it->second;
    torch::NoGradGuard ng;
    const torch::Tensor t = torch::tensor(ids, torch::kLong).view({1, int64_t(ids.size())}).to(env.device);
    torch::Tensor c = sd->text_encoder.ptr()->forward(t).last_hidden_state.detach();
    if (context_cache.size() < 4096) context_cache.emplace(ids, c);
    return c;
  }
};

ScrStage::~ScrStage() = default;

ScrStage::ScrStage(const json& settings, const StageEnv& env) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.env = env;
  if (!settings.is_object()) throw_usage("the scr stage settings must be a JSON object");
  Settings s{settings};
  for (auto it = settings.begin(); it != settings.end(); ++it)
    if (!s.defaults.contains(it.key())) throw_usage("unknown scr setting '" + it.key() + "'");
  // Every setting is checked before the model is read.
  const std::string sd_dir = s.str("sd");
  if (sd_dir.empty()) throw_usage("scr setting sd (the Stable Diffusion 2.x folder) is not set");
  m.rank = s.integer("lora_rank");
  if (m.rank < 1 || m.rank > 1024) throw_usage("scr setting lora_rank must be 1..1024");
  m.alpha = s.num("lora_alpha");
  if (m.alpha <= 0) throw_usage("scr setting lora_alpha must be > 0");
  const std::vector<std::string> targets = s.list("lora_targets");
  if (targets.empty()) throw_usage("scr setting lora_targets is empty");
  m.train_conv_in = s.flag("train_conv_in");
  m.formula_name = s.str("formula");
  if (m.formula_name != "residual" && m.formula_name != "ddpm")
    throw_usage("scr setting formula must be \"residual\" or \"ddpm\", got \"" + m.formula_name + "\"");
  m.formula = m.formula_name == "ddpm" ? model::Formula::ddpm : model::Formula::residual;
  const int64_t t = s.integer("timestep");
  m.prompt_style = s.str("prompt_style");
  if (!m.prompt_style.empty() && m.prompt_style != "osediff" && m.prompt_style != "rass")
    throw_usage("scr setting prompt_style must be \"\", \"osediff\" or \"rass\"");
  m.w_mse = s.num("w_mse");
  m.w_lpips = s.num("w_lpips");
  m.lambda_region = s.num("lambda_region");
  m.lambda_pixel = s.num("lambda_pixel");
  for (const char* k : {"w_mse", "w_lpips", "lambda_region", "lambda_pixel"})
    if (s.num(k) < 0) throw_usage(std::string("scr setting ") + k + " must be >= 0");
  m.scl = s.flag("scl");
  m.vae_sample = s.flag("vae_sample");
  const std::string lpips_path = s.str("lpips_weights");
  const std::vector<std::string> layer_patterns = s.list("scl_layers");
  if (env.threads > 0) torch::set_num_threads(env.threads);

  model::RestoreModelOptions opt;
  opt.dir = sd_dir;
  opt.device = env.device.str();
  opt.quiet = env.quiet || env.rank != 0;
  opt.prog = env.prog;
  m.sd = std::make_unique<model::RestoreModel>(opt);
  const int64_t steps = int64_t(m.sd->schedule.alphas_cumprod.size());
  if (t < 0 || t >= steps)
    throw_usage("scr setting timestep " + std::to_string(t) + " is outside 0.." + std::to_string(steps - 1));
  m.timestep = int(t);

  ScrDataConfig dc;
  dc.hq_dir = s.str("hq_dir");
  dc.pack_dir = s.str("pack_dir");
  dc.manifest = s.str("manifest");
  dc.crop = s.integer("crop_size");
  m.crop = dc.crop;
  if (dc.crop % m.sd->vae_factor != 0)
    throw_usage("scr setting crop_size " + std::to_string(dc.crop) + " must be a multiple of the VAE's factor " +
                std::to_string(m.sd->vae_factor));
  dc.flip = s.flag("flip");
  dc.preset = s.str("preset");
  dc.scl = m.scl;
  dc.prompt = s.str("prompt");
  dc.seed = env.seed;
  m.data = std::make_unique<ScrData>(dc, *m.sd->tokenizer, m.sd->max_tokens, m.sd->text_encoder->config.vocab_size);
  m.order = std::make_unique<DataOrder>(m.data->size(), env.seed);
  if (m.prompt_style.empty()) {
    std::set<std::string> styles;
    for (const ScrItem& it : m.data->items())
      if (!it.pack.empty()) styles.insert(text::read_caption_pack(it.pack).prompt_style);
    m.prompt_style = styles.size() == 1 ? *styles.begin() : "osediff";
  }

  // Cross-attention layers for SCL.
  std::vector<std::string> attn2;
  for (const auto& mod : m.sd->unet->named_modules("", false)) {
    const std::string& k = mod.key();
    if (k.size() >= 5 && k.compare(k.size() - 5, 5, "attn2") == 0) attn2.push_back(k);
  }
  if (m.scl) m.scl_layers = select_scl_layers(attn2, layer_patterns);

  // LoRA: OSEDiff's grouping over the layers the target patterns select.
  torch::nn::Module& unet = *m.sd->unet;
  auto has = [](const std::string& a, const std::string& b) { return a.find(b) != std::string::npos; };
  std::set<std::string> used;
  for (const auto& [path, layer] : nn::lora_layers(unet)) {
    (void)layer;
    const std::string param = path + ".weight";
    if (has(param, "bias") || has(param, "norm")) continue;
    bool hit = false;
    for (const std::string& p : targets)
      if (has(param, p)) hit = true, used.insert(p);
    if (!hit) continue;
    const char* g = has(param, "down_blocks") || has(param, "conv_in")    ? kAdapters[0]
                    : has(param, "up_blocks") || has(param, "conv_out") ? kAdapters[1]
                                                                          : kAdapters[2];
    m.groups[g].push_back(path);
  }
  std::string unmatched;
  for (const std::string& p : targets)
    if (!used.count(p)) unmatched += (unmatched.empty() ? "'" : ", '") + p + "'";
  if (!unmatched.empty())
    throw_usage("scr setting lora_targets: " + unmatched + " match no LoRA-capable layer of " + sd_dir + "/unet");
  for (auto& [g, paths] : m.groups) nn::add_lora(unet, g, m.rank, m.alpha, paths, /*gaussian=*/true);
  // Keyed re-initialisation: PEFT's gaussian init (A ~ N(0, 1/r^2), B = 0)
  // from a generator of (seed, layer, adapter), not the global torch RNG.
  {
    torch::NoGradGuard ng;
    for (auto& [path, layer] : nn::lora_layers(unet))
      for (auto& [name, a] : layer->adapters) {
        torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(stream_seed(env.seed, path + "/" + name, "lora-init"));
        a.A.copy_(at::randn(a.A.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat)) / double(m.rank));
        a.B.zero_();
      }
  }
  nn::mark_only_lora_as_trainable(unet);
  if (m.train_conv_in) {
    m.sd->unet->conv_in->weight.set_requires_grad(true);
    m.sd->unet->conv_in->bias.set_requires_grad(true);
  }
  for (auto& p : m.sd->vae->parameters()) p.set_requires_grad(false);
  for (auto& p : m.sd->text_encoder->parameters()) p.set_requires_grad(false);
  m.sd->unet->train();  // no dropout or batch statistics in the SD UNet: train() changes nothing numerically
  // The UNet's blocks (the SCL's maps outputs of theirs) and the VAE
  // decoder's units, which the image-space losses backpropagate through.
  m.sd->unet->set_gradient_checkpointing(env.gradient_checkpointing);
  m.sd->vae->set_gradient_checkpointing(env.gradient_checkpointing);

  if (m.w_lpips > 0 && !lpips_path.empty()) {
    const nn::LpipsTrunk vgg = nn::LpipsTrunk::vgg;
    m.lpips = model::load_lpips(lpips_path, env.device, &vgg);
  }
  if (env.rank == 0 && !env.quiet) {
    size_t n = 0;
    for (auto& [g, p] : m.groups) n += p.size();
    std::fprintf(stderr, "%s: scr: %zu items, LoRA rank %lld alpha %g on %zu layers (encoder %zu, decoder %zu, others %zu)%s; "
                         "timestep %d, formula %s; SCL %s\n",
                 env.prog.c_str(), m.data->size(), (long long)m.rank, m.alpha, n, m.groups["default_encoder"].size(),
                 m.groups["default_decoder"].size(), m.groups["default_others"].size(),
                 m.train_conv_in ? ", conv_in trained" : "", m.timestep, m.formula_name.c_str(),
                 m.scl ? ("on (" + std::to_string(m.scl_layers.size()) + " cross-attention layers)").c_str() : "off");
    if (m.w_lpips > 0 && !m.lpips)
      std::fprintf(stderr, "%s: scr: no lpips_weights: the restoration loss is MSE only (w_lpips %g unused)\n",
                   env.prog.c_str(), m.w_lpips);
    // From the modules themselves: what the backward will recompute.
    if (m.sd->unet->gradient_checkpointing || m.sd->vae->decoder->gradient_checkpointing)
      std::fprintf(stderr, "%s: scr: gradient checkpointing: UNet %s, VAE decoder %s\n", env.prog.c_str(),
                   m.sd->unet->gradient_checkpointing ? "on" : "off",
                   m.sd->vae->decoder->gradient_checkpointing ? "on" : "off");
  }
}

const ScrData& ScrStage::data() const { return *impl_->data; }

std::map<std::string, std::vector<std::string>> ScrStage::adapter_layers() const { return impl_->groups; }

std::vector<std::pair<std::string, torch::Tensor>> ScrStage::trainable() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : nn::trainable_parameters(*impl_->sd->unet)) out.emplace_back(p.key(), p.value());
  return out;
}

std::vector<ParamGroup> ScrStage::param_groups() {
  ParamGroup lora{"lora", {}, 1.0, -1}, conv_in{"conv_in", {}, 1.0, -1};
  for (auto& [name, t] : trainable()) (nn::is_lora_parameter(name) ? lora : conv_in).params.emplace_back(name, t);
  std::vector<ParamGroup> g{lora};
  if (!conv_in.params.empty()) g.push_back(conv_in);
  return g;
}

std::vector<ScrSample> ScrStage::make_samples(const StepContext& ctx) const {
  std::vector<ScrSample> out;
  for (int64_t i = 0; i < ctx.local_batch; ++i) {
    const int64_t g = ctx.sample_offset + i;
    out.push_back(impl_->data->sample(impl_->order->item(ctx.step, ctx.global_batch, g), ctx.step, g));
  }
  return out;
}

ScrLoss ScrStage::forward_loss(const std::vector<ScrSample>& samples, const std::vector<torch::Tensor>& vae_noise) {
  Impl& m = *impl_;
  model::RestoreModel& sd = *m.sd;
  const int64_t B = int64_t(samples.size());
  std::vector<torch::Tensor> lq, hq, ctx;
  for (const ScrSample& s : samples) {
    lq.push_back(s.lq);
    hq.push_back(s.hq);
    ctx.push_back(m.context(s.ids));
  }
  const torch::Tensor x_lq = torch::stack(lq).to(m.env.device), x_hq = torch::stack(hq).to(m.env.device);
  const torch::Tensor context = torch::cat(ctx);
  const double sf = sd.vae->config.scaling_factor;
  torch::Tensor z;
  {
    torch::NoGradGuard ng;  // the encoder is frozen and nothing before it trains
    const nn::LatentDistribution dist = sd.vae.ptr()->encode(x_lq);
    if (!m.vae_sample) {
      z = dist.mean * sf;
    } else {
      std::vector<torch::Tensor> noise;
      for (int64_t b = 0; b < B; ++b) {
        if (size_t(b) < vae_noise.size() && vae_noise[b].defined()) {
          noise.push_back(vae_noise[b].to(torch::kFloat));
          continue;
        }
        // Keyed by (seed, step, global sample index), as the sample's other draws.
        torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(stream_seed(m.env.seed, samples[b].draw, "vae-sample"));
        noise.push_back(at::randn(dist.mean.sizes().slice(1), gen, torch::TensorOptions().dtype(torch::kFloat)));
      }
      z = (dist.mean + dist.std * torch::stack(noise).to(m.env.device)) * sf;
    }
  }
  nn::UNetCaptures captures;
  captures.cross_attention = m.scl;
  const torch::Tensor t = torch::full({B}, double(m.timestep), torch::TensorOptions().device(m.env.device));
  const torch::Tensor eps = sd.unet.ptr()->forward(z, t, context, m.scl ? &captures : nullptr);
  torch::Tensor x0;
  if (m.formula == model::Formula::ddpm) {
    const torch::Tensor a = torch::tensor(sd.schedule.alpha_bar(m.timestep), torch::kFloat).to(m.env.device);
    x0 = (z - (1 - a).pow(0.5) * eps) / a.pow(0.5);
    if (sd.clip_sample) x0 = x0.clamp(-sd.clip_sample_range, sd.clip_sample_range);
  } else {
    x0 = z - eps;
  }
  const torch::Tensor x_hat = sd.vae.ptr()->decode(x0 / sf).clamp(-1, 1);
  ScrLoss r;
  r.mse = torch::mse_loss(x_hat, x_hq);
  r.loss = m.w_mse * r.mse;
  if (m.lpips) {
    r.lpips = m.lpips->forward(x_hat, x_hq).mean();
    r.loss = r.loss + m.w_lpips * r.lpips;
  }
  if (m.scl) {
    std::vector<std::vector<SclTarget>> targets;
    for (const ScrSample& s : samples) targets.push_back(s.targets);
    const SclResult scl = scl_loss(captures.attention, targets, z.size(2), z.size(3), m.scl_layers);
    r.region = scl.region.to(m.env.device);
    r.pixel = scl.pixel.to(m.env.device);
    r.scl_maps = scl.maps;
    r.loss = r.loss + m.lambda_region * r.region + m.lambda_pixel * r.pixel;
  }
  return r;
}

StepLoss ScrStage::compute_loss(const StepContext& ctx) {
  const ScrLoss l = forward_loss(make_samples(ctx));
  StepLoss s;
  s.loss = l.loss;
  s.images = ctx.local_batch;
  auto v = [](const torch::Tensor& t) { return t.defined() ? t.item<double>() : 0.0; };
  s.terms = {{"loss", v(l.loss)}, {"mse", v(l.mse)}, {"lpips", v(l.lpips)}, {"l_region", v(l.region)},
             {"l_pixel", v(l.pixel)}};
  return s;
}

void ScrStage::export_model(const std::string& dir) {
  Impl& m = *impl_;
  // Replaces an older export only once the new one is complete.
  model::FolderWriter w(dir, model::FolderWriter::Existing::replace);
  const std::string tmp = w.tmp();
  // PEFT's in-model names, adapter names kept (what convert_osediff.py
  // writes from scr.pkl): <path>.lora_{A,B}.default_*.weight, conv_in.weight/bias.
  std::vector<torch::Tensor> keep;
  std::vector<TensorToWrite> out;
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    keep.push_back(t.detach().to(torch::kCPU, torch::kFloat).contiguous());
    out.push_back({name, DType::f32, keep.back().sizes().vec(), keep.back().data_ptr(), size_t(keep.back().nbytes())});
  };
  keep.reserve(4096);
  for (auto& [name, t] : trainable())
    if (nn::is_lora_parameter(name)) add(name, t);
  if (m.train_conv_in) {
    add("conv_in.weight", m.sd->unet->conv_in->weight);
    add("conv_in.bias", m.sd->unet->conv_in->bias);
  }
  std::map<std::string, std::string> meta = {{"format", "pt"},
                                             {"lora_alpha", std::to_string(m.alpha)},
                                             {"rank", std::to_string(m.rank)},
                                             {"adapters", "default_encoder,default_decoder,default_others"},
                                             {"method", "scr"},
                                             {"writer", "rass-train scr"}};
  write_safetensors(tmp + "/scr.unet.safetensors", out, meta);
  json form = {{"method", "scr"}, {"timestep", m.timestep}, {"formula", m.formula_name},
               {"prompt_style", m.prompt_style}, {"lora", "scr.unet.safetensors"},
               {"lora_rank", m.rank}, {"lora_alpha", m.alpha}, {"scl", m.scl},
               // The scale it was trained at (OSEDiff: 512 crops, process size 512).
               {"process_size", m.crop}};
  const std::string text = json_file_text(form, tmp + "/rass.json", 2) + "\n";
  write_file_atomic(tmp + "/rass.json", std::vector<uint8_t>(text.begin(), text.end()));
  w.commit();
}

StageInfo scr_stage_info() {
  StageInfo i;
  i.gradient_checkpointing = true;
  i.name = "scr";
  i.summary = "stage 1: SCR LoRA for one-step restoration with the semantic-constrained loss";
  i.defaults = scr_defaults;
  i.loop_defaults = scr_loop_defaults;
  i.make = [](const json& cfg, const StageEnv& env) -> std::unique_ptr<Stage> {
    return std::make_unique<ScrStage>(cfg, env);
  };
  return i;
}

}  // namespace rass::train
