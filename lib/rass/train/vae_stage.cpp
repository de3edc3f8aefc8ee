#include "rass/train/vae_stage.hpp"

#include <cstdio>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/rng.hpp"
#include "rass/model/iqa_lpips.hpp"
#include "rass/model/restore.hpp"
#include "rass/train/data_order.hpp"
#include "rass/model/model_folder.hpp"
#include "rass/train/pretrain_export.hpp"

using json = nlohmann::ordered_json;

namespace rass::train {

namespace {

json vae_defaults() {
  return json{
      {"sd", ""},             // diffusers folder whose vae/ is trained (e.g. rass-model init --preset tiny)
      {"images", ""},         // folder of clean images (rass-scenes DIR/images)
      {"manifest", ""},       // or rass-scenes manifest.jsonl
      {"crop_size", 256},     // LDM's autoencoders train on 256 crops
      {"flip", true},
      {"loss", "l1"},         // l1 (LDM) or mse
      {"kl_weight", 1e-6},    // LDM's kl-f8 config
      {"w_lpips", 1.0},       // LDM's perceptual_weight; used only with lpips_weights
      {"lpips_weights", ""},  // model::load_lpips file; "": no perceptual term
      {"sample", true},       // decode a posterior sample (LDM); false: the mean
  };
}

json vae_loop_defaults() {
  // LDM kl-f8: Adam(betas 0.5, 0.9), base lr 4.5e-6 scaled by the batch; the
  // tiny world trains from scratch, so a larger constant rate.
  return json{{"lr", 1e-4}, {"weight_decay", 0.0}, {"beta1", 0.5}, {"beta2", 0.9}, {"eps", 1e-8},
              {"schedule", "constant"}, {"clip_grad_norm", 1.0}};
}

}  // namespace

struct VaeStage::Impl {
  StageEnv env;
  std::string sd_dir;
  std::unique_ptr<model::RestoreModel> sd;
  std::unique_ptr<PretrainData> data;
  std::unique_ptr<DataOrder> order;
  nn::Lpips lpips{nullptr};
  bool l1 = true, sample = true;
  double kl_weight = 1e-6, w_lpips = 1.0;
};

VaeStage::~VaeStage() = default;

VaeStage::VaeStage(const json& settings, const StageEnv& env) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.env = env;
  StageSettings s{"vae", settings, vae_defaults()};
  s.check_keys();
  m.sd_dir = s.str("sd");
  if (m.sd_dir.empty()) throw_usage("vae setting sd (the diffusers folder whose vae/ is trained) is not set");
  const std::string loss = s.str("loss");
  if (loss != "l1" && loss != "mse") throw_usage("vae setting loss must be \"l1\" or \"mse\", got \"" + loss + "\"");
  m.l1 = loss == "l1";
  m.kl_weight = s.num("kl_weight");
  m.w_lpips = s.num("w_lpips");
  if (m.kl_weight < 0) throw_usage("vae setting kl_weight must be >= 0");
  if (m.w_lpips < 0) throw_usage("vae setting w_lpips must be >= 0");
  m.sample = s.flag("sample");
  const std::string lpips_path = s.str("lpips_weights");
  PretrainDataConfig dc;
  dc.stage = "vae";
  dc.images = s.str("images");
  dc.manifest = s.str("manifest");
  dc.crop = s.integer("crop_size");
  dc.flip = s.flag("flip");
  dc.seed = env.seed;
  if (env.threads > 0) torch::set_num_threads(env.threads);

  model::RestoreModelOptions opt;
  opt.dir = m.sd_dir;
  opt.device = env.device.str();
  opt.quiet = env.quiet || env.rank != 0;
  opt.prog = env.prog;
  m.sd = std::make_unique<model::RestoreModel>(opt);
  if (dc.crop % m.sd->vae_factor != 0)
    throw_usage("vae setting crop_size " + std::to_string(dc.crop) + " must be a multiple of the VAE's factor " +
                std::to_string(m.sd->vae_factor));
  m.data = std::make_unique<PretrainData>(dc);
  m.order = std::make_unique<DataOrder>(m.data->size(), env.seed);
  for (auto& p : m.sd->unet->parameters()) p.set_requires_grad(false);
  for (auto& p : m.sd->text_encoder->parameters()) p.set_requires_grad(false);
  for (auto& p : m.sd->vae->parameters()) p.set_requires_grad(true);
  m.sd->vae->train();
  m.sd->vae->set_gradient_checkpointing(env.gradient_checkpointing);
  if (m.w_lpips > 0 && !lpips_path.empty()) {
    m.lpips = model::load_lpips(lpips_path, env.device);
    for (auto& p : m.lpips->parameters()) p.set_requires_grad(false);
  }
  // The export links the folder's other files: a loop or a dangling link
  // there is found now, not after the last step.
  model::FolderWriter::check_tree(m.sd_dir);
  if (env.rank == 0 && !env.quiet) {
    int64_t n = 0;
    for (auto& p : m.sd->vae->parameters()) n += p.numel();
    std::fprintf(stderr, "%s: vae: %zu items, crop %lld, %lld VAE parameters, loss %s + %g KL%s\n", env.prog.c_str(),
                 m.data->size(), (long long)dc.crop, (long long)n, loss.c_str(), m.kl_weight,
                 m.lpips ? (" + " + std::to_string(m.w_lpips) + " LPIPS").c_str() : " (no lpips_weights: no LPIPS term)");
    // From the modules themselves: what the backward will recompute.
    if (m.sd->vae->encoder->gradient_checkpointing || m.sd->vae->decoder->gradient_checkpointing)
      std::fprintf(stderr, "%s: vae: gradient checkpointing: encoder %s, decoder %s\n", env.prog.c_str(),
                   m.sd->vae->encoder->gradient_checkpointing ? "on" : "off",
                   m.sd->vae->decoder->gradient_checkpointing ? "on" : "off");
  }
}

const PretrainData& VaeStage::data() const { return *impl_->data; }

std::vector<std::pair<std::string, torch::Tensor>> VaeStage::trainable() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : impl_->sd->vae->named_parameters(true)) out.emplace_back(p.key(), p.value());
  return out;
}

std::vector<ParamGroup> VaeStage::param_groups() { return {ParamGroup{"vae", trainable(), 1.0, -1}}; }

std::vector<PretrainSample> VaeStage::make_samples(const StepContext& ctx) const {
  std::vector<PretrainSample> out;
  for (int64_t i = 0; i < ctx.local_batch; ++i) {
    const int64_t g = ctx.sample_offset + i;
    out.push_back(impl_->data->sample(impl_->order->item(ctx.step, ctx.global_batch, g), ctx.step, g));
  }
  return out;
}

VaeLoss VaeStage::forward_loss(const std::vector<PretrainSample>& samples, const std::vector<torch::Tensor>& vae_noise) {
  Impl& m = *impl_;
  std::vector<torch::Tensor> xs;
  for (const PretrainSample& s : samples) xs.push_back(s.image);
  const torch::Tensor x = torch::stack(xs).to(m.env.device);
  const int64_t B = x.size(0);
  const nn::LatentDistribution dist = m.sd->vae->encode(x);
  torch::Tensor z = dist.mean;
  if (m.sample) {
    std::vector<torch::Tensor> noise;
    for (const PretrainSample& s : samples) {
      if (noise.size() < vae_noise.size() && vae_noise[noise.size()].defined()) {
        noise.push_back(vae_noise[noise.size()].to(torch::kFloat));
        continue;
      }
      torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(stream_seed(m.env.seed, s.draw, "vae-sample"));
      noise.push_back(at::randn(dist.mean.sizes().slice(1), gen, torch::TensorOptions().dtype(torch::kFloat)));
    }
    z = dist.mean + dist.std * torch::stack(noise).to(m.env.device);
  }
  const torch::Tensor x_hat = m.sd->vae->decode(z);
  const torch::Tensor diff = m.l1 ? (x - x_hat).abs() : (x - x_hat).pow(2);
  VaeLoss r;
  r.rec = diff.mean();
  torch::Tensor per_image = diff.sum({1, 2, 3});
  if (m.lpips) {
    const torch::Tensor lp = m.lpips->forward(x_hat, x).reshape({B});
    r.lpips = lp.mean();
    per_image = per_image + m.w_lpips * lp * double(x[0].numel());
  }
  // The diagonal Gaussian's KL to N(0, I) (LDM's DiagonalGaussianDistribution.kl).
  const torch::Tensor kl = 0.5 * (dist.mean.pow(2) + dist.logvar.exp() - 1 - dist.logvar).sum({1, 2, 3});
  r.kl = kl.mean();
  r.loss = (per_image + m.kl_weight * kl).mean();
  return r;
}

StepLoss VaeStage::compute_loss(const StepContext& ctx) {
  const VaeLoss l = forward_loss(make_samples(ctx));
  StepLoss s;
  s.loss = l.loss;
  s.images = ctx.local_batch;
  auto v = [](const torch::Tensor& t) { return t.defined() ? t.item<double>() : 0.0; };
  s.terms = {{"loss", v(l.loss)}, {"rec", v(l.rec)}, {"kl", v(l.kl)}, {"lpips", v(l.lpips)}};
  return s;
}

void VaeStage::export_model(const std::string& dir) {
  export_component_folder(impl_->sd_dir, dir, "vae", *impl_->sd->vae, "rass-train vae");
}

StageInfo vae_stage_info() {
  StageInfo i;
  i.name = "vae";
  i.summary = "pretraining: the VAE (AutoencoderKL) of a diffusers folder on clean images (reconstruction + KL, optional LPIPS)";
  i.defaults = vae_defaults;
  i.loop_defaults = vae_loop_defaults;
  i.gradient_checkpointing = true;
  i.make = [](const json& cfg, const StageEnv& env) -> std::unique_ptr<Stage> {
    return std::make_unique<VaeStage>(cfg, env);
  };
  return i;
}

}  // namespace rass::train
