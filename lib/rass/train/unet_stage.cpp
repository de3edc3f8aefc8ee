#include "rass/train/unet_stage.hpp"

#include <cstdio>
#include <map>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/rng.hpp"
#include "rass/model/restore.hpp"
#include "rass/nn/ddpm.hpp"
#include "rass/train/data_order.hpp"
#include "rass/model/model_folder.hpp"
#include "rass/train/pretrain_export.hpp"

using json = nlohmann::ordered_json;

namespace rass::train {

namespace {

json unet_defaults() {
  return json{
      {"sd", ""},           // diffusers folder whose unet/ is trained (its vae/ trained first: rass-train vae)
      {"images", ""},       // folder of clean images (rass-scenes DIR/images)
      {"manifest", ""},     // or rass-scenes manifest.jsonl
      {"text", "caption"},  // caption | tags | none (then `prompt` for every image)
      {"text_dir", ""},     // "" = <images>/../captions or ../tags (rass-scenes layout)
      {"prompt", ""},       // the prompt of every image when text is none
      {"cfg_dropout", 0.1}, // probability of the empty prompt (classifier-free guidance)
      {"crop_size", 256},
      {"flip", true},
      {"vae_sample", true}, // a posterior sample (diffusers' latent_dist.sample()); false: the mean
  };
}

json unet_loop_defaults() {
  // diffusers train_text_to_image.py: AdamW lr 1e-4, betas (0.9, 0.999),
  // weight decay 1e-2, eps 1e-8, max_grad_norm 1, constant schedule.
  return json{{"lr", 1e-4}, {"weight_decay", 1e-2}, {"beta1", 0.9}, {"beta2", 0.999}, {"eps", 1e-8},
              {"schedule", "constant"}, {"clip_grad_norm", 1.0}};
}

torch::Tensor randn_keyed(uint64_t seed, const std::string& draw, const char* stream, const std::vector<int64_t>& shape) {
  torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(stream_seed(seed, draw, stream));
  return at::randn(shape, gen, torch::TensorOptions().dtype(torch::kFloat));
}

}  // namespace

UnetDraws unet_draws(uint64_t seed, const std::string& draw, int64_t num_timesteps, double cfg_dropout,
                     const std::vector<int64_t>& latent_shape) {
  UnetDraws d;
  d.timestep = int64_t(Rng(seed, draw, "timestep").below(uint64_t(num_timesteps)));
  d.noise = randn_keyed(seed, draw, "noise", latent_shape);
  d.vae_noise = randn_keyed(seed, draw, "vae-sample", latent_shape);
  d.drop_prompt = Rng(seed, draw, "cfg-dropout").uniform() < cfg_dropout;
  return d;
}

torch::Tensor add_noise(const torch::Tensor& z, const torch::Tensor& eps, const torch::Tensor& alpha_bar) {
  const torch::Tensor a = alpha_bar.to(z.dtype()).view({-1, 1, 1, 1});
  return a.sqrt() * z + (1 - a).sqrt() * eps;
}

struct UnetStage::Impl {
  StageEnv env;
  std::string sd_dir, prompt;
  std::unique_ptr<model::RestoreModel> sd;
  std::unique_ptr<PretrainData> data;
  std::unique_ptr<DataOrder> order;
  double cfg_dropout = 0.1;
  bool vae_sample = true;
  int64_t crop = 256;
  std::map<std::string, torch::Tensor> context_cache;  // prompt -> embedding (frozen encoder)

  torch::Tensor context(const std::string& text) {
    auto it = context_cache.find(text);
    if (it != context_cache.end()) return it->second;
    torch::NoGradGuard ng;
    std::vector<int64_t> ids;
    for (int id : sd->tokenizer->encode_padded(text, int(sd->max_tokens))) ids.push_back(id);
    const torch::Tensor t = torch::tensor(ids, torch::kLong).view({1, int64_t(ids.size())}).to(env.device);
    torch::Tensor c = sd->text_encoder->forward(t).last_hidden_state.detach();
    if (context_cache.size() < 4096) context_cache.emplace(text, c);
    return c;
  }
};

UnetStage::~UnetStage() = default;

UnetStage::UnetStage(const json& settings, const StageEnv& env) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.env = env;
  StageSettings s{"unet", settings, unet_defaults()};
  s.check_keys();
  m.sd_dir = s.str("sd");
  if (m.sd_dir.empty()) throw_usage("unet setting sd (the diffusers folder whose unet/ is trained) is not set");
  const std::string text = s.str("text");
  PretrainDataConfig dc;
  dc.stage = "unet";
  if (text == "caption") dc.text = TextSource::caption;
  else if (text == "tags") dc.text = TextSource::tags;
  else if (text == "none") dc.text = TextSource::none;
  else throw_usage("unet setting text must be \"caption\", \"tags\" or \"none\", got \"" + text + "\"");
  m.prompt = s.str("prompt");
  m.cfg_dropout = s.num("cfg_dropout");
  if (m.cfg_dropout < 0 || m.cfg_dropout > 1) throw_usage("unet setting cfg_dropout must be in [0, 1]");
  m.vae_sample = s.flag("vae_sample");
  dc.images = s.str("images");
  dc.manifest = s.str("manifest");
  dc.text_dir = s.str("text_dir");
  dc.crop = m.crop = s.integer("crop_size");
  dc.flip = s.flag("flip");
  dc.seed = env.seed;
  if (env.threads > 0) torch::set_num_threads(env.threads);

  // The prediction type first, with a message about training (RestoreModel's
  // own refusal speaks of the one-step formulas).
  const std::string sched = m.sd_dir + "/scheduler/scheduler_config.json";
  if (file_exists(sched)) {
    const nn::DdpmSchedule sc = nn::read_ddpm_schedule(sched);
    if (sc.prediction_type != "epsilon")
      throw_bad_input(sched, "prediction_type '" + sc.prediction_type +
                                 "': rass-train unet trains epsilon prediction only (set \"prediction_type\": \"epsilon\")");
  }
  model::RestoreModelOptions opt;
  opt.dir = m.sd_dir;
  opt.device = env.device.str();
  opt.quiet = env.quiet || env.rank != 0;
  opt.prog = env.prog;
  m.sd = std::make_unique<model::RestoreModel>(opt);
  if (dc.crop % m.sd->vae_factor != 0)
    throw_usage("unet setting crop_size " + std::to_string(dc.crop) + " must be a multiple of the VAE's factor " +
                std::to_string(m.sd->vae_factor));
  m.data = std::make_unique<PretrainData>(dc);
  m.order = std::make_unique<DataOrder>(m.data->size(), env.seed);
  for (auto& p : m.sd->vae->parameters()) p.set_requires_grad(false);
  for (auto& p : m.sd->text_encoder->parameters()) p.set_requires_grad(false);
  for (auto& p : m.sd->unet->parameters()) p.set_requires_grad(true);
  m.sd->unet->train();
  m.sd->unet->set_gradient_checkpointing(env.gradient_checkpointing);
  // The export links the folder's other files: a loop or a dangling link
  // there is found now, not after the last step.
  model::FolderWriter::check_tree(m.sd_dir);
  if (env.rank == 0 && !env.quiet) {
    int64_t n = 0;
    for (auto& p : m.sd->unet->parameters()) n += p.numel();
    std::fprintf(stderr, "%s: unet: %zu items, crop %lld, %lld UNet parameters, text %s, cfg_dropout %g, %zu timesteps\n",
                 env.prog.c_str(), m.data->size(), (long long)dc.crop, (long long)n, text.c_str(), m.cfg_dropout,
                 m.sd->schedule.alphas_cumprod.size());
  }
}

const PretrainData& UnetStage::data() const { return *impl_->data; }

std::vector<std::pair<std::string, torch::Tensor>> UnetStage::trainable() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : impl_->sd->unet->named_parameters(true)) out.emplace_back(p.key(), p.value());
  return out;
}

std::vector<ParamGroup> UnetStage::param_groups() { return {ParamGroup{"unet", trainable(), 1.0, -1}}; }

std::vector<PretrainSample> UnetStage::make_samples(const StepContext& ctx) const {
  std::vector<PretrainSample> out;
  for (int64_t i = 0; i < ctx.local_batch; ++i) {
    const int64_t g = ctx.sample_offset + i;
    out.push_back(impl_->data->sample(impl_->order->item(ctx.step, ctx.global_batch, g), ctx.step, g));
  }
  return out;
}

std::string UnetStage::prompt_of(const PretrainSample& s) const {
  const Impl& m = *impl_;
  const std::string& text = s.text.empty() ? m.prompt : s.text;  // `prompt`: images without a text
  // The same draw as unet_draws' drop_prompt.
  const bool drop = Rng(m.env.seed, s.draw, "cfg-dropout").uniform() < m.cfg_dropout;
  return drop ? std::string() : text;
}

torch::Tensor UnetStage::forward_loss(const std::vector<PretrainSample>& samples, const std::vector<UnetDraws>& draws) {
  Impl& m = *impl_;
  model::RestoreModel& sd = *m.sd;
  const int64_t f = sd.vae_factor, T = int64_t(sd.schedule.alphas_cumprod.size());
  const std::vector<int64_t> shape = {sd.vae->config.latent_channels, m.crop / f, m.crop / f};
  std::vector<torch::Tensor> xs, ctx, eps, vn;
  std::vector<float> alpha;
  std::vector<int64_t> ts;
  for (size_t b = 0; b < samples.size(); ++b) {
    const PretrainSample& s = samples[b];
    const UnetDraws d = b < draws.size() ? draws[b] : unet_draws(m.env.seed, s.draw, T, m.cfg_dropout, shape);
    if (d.timestep < 0 || d.timestep >= T) throw_runtime("unet: timestep " + std::to_string(d.timestep) + " out of range");
    xs.push_back(s.image);
    ctx.push_back(m.context(d.drop_prompt ? std::string() : (s.text.empty() ? m.prompt : s.text)));
    eps.push_back(d.noise);
    vn.push_back(d.vae_noise);
    ts.push_back(d.timestep);
    alpha.push_back(sd.schedule.alpha_bar(int(d.timestep)));
  }
  const torch::Device dev = m.env.device;
  const torch::Tensor x = torch::stack(xs).to(dev), noise = torch::stack(eps).to(dev);
  torch::Tensor z;
  {
    torch::NoGradGuard ng;  // the VAE is frozen
    const nn::LatentDistribution dist = sd.vae->encode(x);
    z = (m.vae_sample ? dist.mean + dist.std * torch::stack(vn).to(dev) : dist.mean) * sd.vae->config.scaling_factor;
  }
  const torch::Tensor a = torch::tensor(alpha, torch::kFloat).to(dev);
  const torch::Tensor z_t = add_noise(z, noise, a);
  const torch::Tensor t = torch::tensor(ts, torch::kLong).to(dev);
  const torch::Tensor eps_hat = sd.unet->forward(z_t, t, torch::cat(ctx));
  return torch::mse_loss(eps_hat.to(torch::kFloat), noise);
}

StepLoss UnetStage::compute_loss(const StepContext& ctx) {
  StepLoss s;
  s.loss = forward_loss(make_samples(ctx));
  s.images = ctx.local_batch;
  s.terms = {{"loss", s.loss.item<double>()}};
  return s;
}

void UnetStage::export_model(const std::string& dir) {
  export_component_folder(impl_->sd_dir, dir, "unet", *impl_->sd->unet, "rass-train unet");
}

StageInfo unet_stage_info() {
  StageInfo i;
  i.gradient_checkpointing = true;
  i.name = "unet";
  i.summary = "pretraining: the UNet of a diffusers folder as an epsilon DDPM on clean images with captions or tags";
  i.defaults = unet_defaults;
  i.loop_defaults = unet_loop_defaults;
  i.make = [](const json& cfg, const StageEnv& env) -> std::unique_ptr<Stage> {
    return std::make_unique<UnetStage>(cfg, env);
  };
  return i;
}

}  // namespace rass::train
