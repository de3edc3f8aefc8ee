#include "rass/train/sam_enhancer_stage.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/folder_check.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/rng.hpp"
#include "rass/core/version.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/component.hpp"
#include "rass/model/config.hpp"
#include "rass/model/lora_surgery.hpp"
#include "rass/model/model_folder.hpp"
#include "rass/nn/autocast.hpp"
#include "rass/nn/ddpm.hpp"
#include "rass/nn/lora.hpp"
#include "rass/train/pretrain_data.hpp"
#include "rass/train/trained_weights.hpp"

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace rass::train {

const std::vector<std::string>& glesam_lora_targets() {
  static const std::vector<std::string> t = {"to_q",          "to_k",     "to_v",          "to_out.0",
                                             "proj_in",       "proj_out", "ff.net.0.proj", "ff.net.2",
                                             "conv1",         "conv2",    "conv_shortcut", "downsamplers.0.conv",
                                             "upsamplers.0.conv", "time_emb_proj", "conv_in", "conv_out"};
  return t;
}

namespace {

const char* kAdapter = "default";

ojson sam_enhancer_defaults() {
  // train_glesam_denoising_unet_multi_dataset.sh and its dataset options.
  // feat_weight 0 and timestep -1: the start folder's enhancer's (GleSAM
  // folders), else the paper's g 5 and T 1.
  return ojson{{"model", ""},        {"sd", ""},           {"feat_weight", 0.0},      {"timestep", -1},
               {"lora_rank", 8},     {"lora_alpha", 8.0},  {"lora_targets", glesam_lora_targets()},
               {"loss_space", "scaled"}, {"images", ""},   {"lq", ""},                {"manifest", ""}, {"match_stem", false},
               {"size", 512},        {"preset", "glesam"}, {"severity", 3},           {"check_data", true}};
}

ojson sam_enhancer_loop_defaults() {
  // AdamW(lr 1e-4, betas (0.9, 0.999), weight_decay 0.01); diffusers'
  // constant_with_warmup over 500 steps (lr x step / 500: from 0);
  // max_grad_norm 10; batch_size 1 on each of its 4 GPUs.
  return ojson{{"optimizer", "adamw"},   {"lr", 1e-4},       {"weight_decay", 0.01}, {"beta1", 0.9},
               {"beta2", 0.999},         {"eps", 1e-8},      {"schedule", "constant"}, {"warmup_steps", 500},
               {"warmup_factor", 0.0},   {"clip_grad_norm", 10.0}, {"batch", 4}};
}

// PEFT's kaiming_uniform_(a = sqrt(5)) of lora_A: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
void init_lora_a(torch::Tensor& a, uint64_t seed, const std::string& key) {
  int64_t fan_in = 1;
  for (int64_t d = 1; d < a.dim(); ++d) fan_in *= a.size(d);
  const double bound = 1.0 / std::sqrt(double(fan_in));
  torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(stream_seed(seed, key, "lora-init"));
  torch::NoGradGuard ng;
  a.copy_(at::rand(a.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat)) * (2 * bound) - bound);
}

}  // namespace

SamEnhancerSettings parse_sam_enhancer_settings(const ojson& in) {
  const StageSettings j{"sam-enhancer", in, sam_enhancer_defaults()};
  j.check_keys();
  SamEnhancerSettings s;
  s.model = j.str("model");
  if (s.model.empty())
    throw_usage("sam-enhancer.model: give the SAM folder whose embeddings the enhancer learns (scripts/convert_sam.py -o DIR)");
  s.sd = j.str("sd");
  s.feat_weight = j.num("feat_weight", 0, 1e6);
  s.timestep = int(j.integer("timestep", -1, 100000));
  s.lora_rank = j.integer("lora_rank", 1, 1024);
  s.lora_alpha = j.num("lora_alpha", 1e-9, 1e9);
  const ojson& t = j.at("lora_targets");
  if (!t.is_array() || t.empty()) throw_usage("sam-enhancer.lora_targets must be a non-empty list of module names");
  for (const ojson& e : t) {
    if (!e.is_string() || e.get<std::string>().empty())
      throw_usage("sam-enhancer.lora_targets must be a list of non-empty module names");
    s.lora_targets.push_back(e.get<std::string>());
  }
  s.loss_space = j.str("loss_space");
  if (s.loss_space != "scaled" && s.loss_space != "embedding")
    throw_usage("sam-enhancer.loss_space must be scaled (x0 against g z_H, as released) or embedding (x0 / g against "
                "z_H, the paper's Eq. 5), got '" + s.loss_space + "'");
  s.data.images = j.str("images");
  s.data.lq = j.str("lq");
  s.data.manifest = j.str("manifest");
  s.data.match_stem = j.flag("match_stem");
  s.data.size = int(j.integer("size", 16, 4096));
  s.data.preset = j.str("preset");
  s.data.severity = int(j.integer("severity", 1, 5));
  s.check_data = j.flag("check_data");
  return s;
}

SamEnhancerStage::SamEnhancerStage(const SamEnhancerSettings& s, const StageEnv& env) : s_(s), env_(env) {
  require_folder(s_.model, "sam-enhancer.model takes a SAM folder (scripts/convert_sam.py -o DIR)");
  const model::SamFolderConfig cfg = model::read_sam_config(s_.model);
  if (cfg.architecture == "sam2")
    throw_usage(cfg.path + " is a SAM 2 folder: rass-train sam-enhancer learns SAM v1's embeddings (GleSAM; GleSAM2's "
                           "enhancer was not released)");
  if (cfg.sam.robust || cfg.sam.hq)
    throw_usage(cfg.path + " is a " + std::string(cfg.sam.robust ? "RobustSAM" : "HQ-SAM") +
                " folder: rass-train sam-enhancer builds on plain SAM (or a GleSAM folder)");
  if (s_.sd.empty()) {
    if (!cfg.enhancer)
      throw_usage("sam-enhancer.sd: give the Stable Diffusion folder of the enhancer's UNet (stable-diffusion-2-1-base in "
                  "the paper); " + s_.model + " has no enhancer to start from");
    text_dir_ = s_.model;
  } else {
    require_folder(s_.sd, "sam-enhancer.sd takes a diffusers Stable Diffusion folder (unet/, text_encoder/, tokenizer/, scheduler/)");
    text_dir_ = s_.sd;
    if (cfg.enhancer && env_.rank == 0 && !env_.quiet)
      std::fprintf(stderr, "%s: sam-enhancer: %s has an enhancer; a new one is trained from %s's UNet in its place "
                           "(leave sam-enhancer.sd empty to fine-tune the folder's own)\n",
                   env_.prog.c_str(), s_.model.c_str(), s_.sd.c_str());
  }
  // Unset (0, -1): the start folder's enhancer's, else the paper's.
  if (s_.feat_weight <= 0) s_.feat_weight = cfg.enhancer ? cfg.feat_weight : 5.0;
  if (s_.timestep < 0) s_.timestep = cfg.enhancer ? cfg.timestep : 1;
  unet_dir_ = text_dir_ + "/unet";
  // The data before the weights: a bad setting or image stops the run at once.
  data_ = std::make_unique<SamEnhancerData>(s_.data, env_.seed);
  if (s_.check_data) data_->check();
  if (env_.threads > 0) torch::set_num_threads(env_.threads);

  model::SamModelOptions o;
  o.dir = s_.model;
  o.enhance = "off";  // the enhancer is this stage's own UNet
  o.robust = "off";
  o.hq = "off";
  o.device = env_.device.str();
  // loop.dtype: the frozen image encoder's compute (the UNet and its adapters train in float32).
  o.dtype = env_.dtype == torch::kBFloat16 ? "bf16" : env_.dtype == torch::kHalf ? "fp16" : "fp32";
  sam_ = std::make_unique<model::SamModel>(o);
  for (auto& p : sam_->sam->parameters()) p.set_requires_grad(false);
  // The export links these folders' files: a loop or a dangling link there is found now.
  model::FolderWriter::check_tree(s_.model);
  for (const char* sub : {"text_encoder", "tokenizer", "scheduler"}) model::FolderWriter::check_tree(text_dir_ + "/" + sub);

  // The UNet, CRE-expanded to the embedding's channels when it is SD's own.
  const int64_t D = cfg.sam.prompt_embed_dim;
  const std::string ucfg_path = unet_dir_ + "/config.json";
  nn::UNetConfig ucfg = model::read_unet_config(ucfg_path);
  unet_config_ = read_json_file(ucfg_path);
  const int64_t in = ucfg.in_channels, out = ucfg.out_channels;
  const bool expand = !(in == D && out == D);
  if (expand && (D % in != 0 || D % out != 0))
    throw_bad_input(ucfg_path, "in_channels " + std::to_string(in) + " / out_channels " + std::to_string(out) +
                                   ": GleSAM's channel replication needs a divisor of the embedding's " + std::to_string(D) +
                                   " channels (or the UNet already at " + std::to_string(D) + ")");
  unet_ = nn::UNet2DCondition(ucfg);
  model::load_component(*unet_, unet_dir_);
  model::check_finite_parameters(*unet_, unet_dir_);
  if (expand) {
    torch::NoGradGuard ng;
    unet_->conv_in->weight.set_data(model::repeat_input_channels(unet_->conv_in->weight, D / in).contiguous());
    unet_->conv_out->weight.set_data(model::repeat_output_channels(unet_->conv_out->weight, D / out).contiguous());
    unet_->conv_out->bias.set_data(model::repeat_output_channels(unet_->conv_out->bias, D / out).contiguous());
    unet_config_["in_channels"] = D;
    unet_config_["out_channels"] = D;
  }
  // LoRA on the targets (PEFT's suffix match), each target matching some layer.
  std::set<std::string> used;
  for (const auto& [path, layer] : nn::lora_layers(*unet_)) {
    (void)layer;
    for (const std::string& t : s_.lora_targets)
      if (nn::lora_target_matches(path, t)) used.insert(t);
  }
  std::string unmatched;
  for (const std::string& t : s_.lora_targets)
    if (!used.count(t)) unmatched += (unmatched.empty() ? "'" : ", '") + t + "'";
  if (!unmatched.empty())
    throw_usage("sam-enhancer.lora_targets: no LoRA-capable layer of " + unet_dir_ + " ends with " + unmatched);
  nn::add_lora(*unet_, kAdapter, s_.lora_rank, s_.lora_alpha, s_.lora_targets);
  // Keyed initialisation (the same in every process and on every run of a seed).
  for (auto& [path, layer] : nn::lora_layers(*unet_))
    for (auto& [name, a] : layer->adapters) init_lora_a(a.A, env_.seed, path + "/" + name);
  nn::mark_only_lora_as_trainable(*unet_);
  unet_->train();  // no dropout or batch statistics in the SD UNet: numerically the same as eval()
  unet_->set_gradient_checkpointing(env_.gradient_checkpointing);
  unet_->to(env_.device);

  context_ = model::glesam_prompt_context(text_dir_, "").to(env_.device);
  if (context_.size(2) != ucfg.cross_attention_dim)
    throw_bad_input(ucfg_path, "cross_attention_dim " + std::to_string(ucfg.cross_attention_dim) +
                                   " differs from the text encoder's hidden size " + std::to_string(context_.size(2)));
  const nn::DdpmSchedule sched = nn::read_ddpm_schedule(text_dir_ + "/scheduler/scheduler_config.json");
  if (size_t(s_.timestep) >= sched.alphas_cumprod.size())
    throw_usage("sam-enhancer.timestep " + std::to_string(s_.timestep) + " is outside the schedule's " +
                std::to_string(sched.alphas_cumprod.size()) + " steps");
  alpha_bar_ = double(sched.alpha_bar(s_.timestep));
  order_ = std::make_unique<DataOrder>(data_->size(), env_.seed);
  if (env_.rank == 0 && !env_.quiet)
    std::fprintf(stderr, "%s: sam-enhancer: %zu items, UNet %s%s, LoRA rank %lld alpha %g on %zu layers; g %g, T %d\n",
                 env_.prog.c_str(), data_->size(), unet_dir_.c_str(),
                 expand ? (" (channels x" + std::to_string(D / in) + ")").c_str() : "", (long long)s_.lora_rank,
                 s_.lora_alpha, adapted_layers().size(), s_.feat_weight, s_.timestep);
}

std::vector<std::string> SamEnhancerStage::adapted_layers() const {
  std::vector<std::string> out;
  for (const auto& [path, layer] : nn::lora_layers(*unet_.ptr()))
    if (!layer->adapters.empty()) out.push_back(path);
  return out;
}

std::vector<ParamGroup> SamEnhancerStage::param_groups() {
  ParamGroup g{"lora", {}, 1.0, -1};
  for (const auto& p : nn::trainable_parameters(*unet_)) g.params.emplace_back(p.key(), p.value());
  return {g};
}

torch::Tensor SamEnhancerStage::encoder_input(const Image& rgb) const { return sam_->prepare_float(rgb).pixels; }

torch::Tensor SamEnhancerStage::embed(const torch::Tensor& pixels) const {
  torch::NoGradGuard ng;
  const nn::AutocastPause frozen;  // SAM's encoder in loop.dtype, not loop.amp's (the release autocasts the UNet only)
  return sam_->sam->image_encoder.ptr()->forward(pixels).to(torch::kFloat).detach();
}

torch::Tensor SamEnhancerStage::x0(const torch::Tensor& z_lq) const {
  return model::glesam_x0(*unet_.ptr(), z_lq * s_.feat_weight, context_, s_.timestep, alpha_bar_);
}

torch::Tensor SamEnhancerStage::loss(const torch::Tensor& z_lq, const torch::Tensor& z_hq) const {
  const torch::Tensor pred = x0(z_lq);
  if (s_.loss_space == "embedding") return torch::mse_loss(pred / s_.feat_weight, z_hq);
  return torch::mse_loss(pred, z_hq * s_.feat_weight);
}

torch::Tensor SamEnhancerStage::enhance(const torch::Tensor& z_lq) const {
  torch::NoGradGuard ng;
  return x0(z_lq) / s_.feat_weight;
}

StepLoss SamEnhancerStage::compute_loss(const StepContext& ctx) {
  const int64_t B = ctx.local_batch;
  std::vector<SamEnhancerSample> samples(static_cast<size_t>(B));
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t g = ctx.sample_offset + b;
      samples[size_t(b)] = data_->sample(order_->item(ctx.step, ctx.global_batch, g), ctx.step, g);
    }
  });
  // One encoder pass over [HQ..., LQ...], as the released step embeds cat(gt, lq).
  std::vector<torch::Tensor> px;
  for (const SamEnhancerSample& s : samples) px.push_back(encoder_input(s.hq));
  for (const SamEnhancerSample& s : samples) px.push_back(encoder_input(s.lq));
  const torch::Tensor z = embed(torch::cat(px));
  StepLoss out;
  out.loss = loss(z.slice(0, B), z.slice(0, 0, B));
  out.terms = {{"loss_mse", out.loss.item<double>()}};
  out.images = B;
  return out;
}

void SamEnhancerStage::export_model(const std::string& dir) {
  std::error_code ec;
  for (const std::string& src : {s_.model, text_dir_})
    if (fs::exists(dir, ec) && fs::equivalent(dir, src, ec))
      throw_usage("the export folder " + dir + " is a start folder (sam-enhancer.model or sd): choose another");
  model::FolderWriter w(dir, model::FolderWriter::Existing::replace);
  const fs::path tmp = w.tmp();
  const std::set<std::string> enhancer_parts = {"unet", "text_encoder", "tokenizer", "scheduler"};
  std::set<std::string> skip = enhancer_parts;
  skip.insert("sam.json");
  w.link_tree(s_.model, "", skip);
  for (const char* sub : {"text_encoder", "tokenizer", "scheduler"}) w.link_tree(text_dir_ + "/" + sub, sub);

  torch::NoGradGuard ng;
  // The UNet with the adapters merged (W + scale B A, in float32), the
  // training model left as it is; and the adapters alone.
  std::map<std::string, torch::Tensor> merged = cpu_float_parameters(*unet_);
  for (auto it = merged.begin(); it != merged.end();) it = nn::is_lora_parameter(it->first) ? merged.erase(it) : std::next(it);
  std::map<std::string, torch::Tensor> adapters;
  for (const auto& [path, layer] : nn::lora_layers(*unet_))
    for (const auto& [name, a] : layer->adapters) {
      torch::Tensor& wt = merged.at(path + ".weight");
      wt = wt + (layer->delta(a).to(torch::kCPU, torch::kFloat) * a.scale());
      adapters["unet." + path + ".lora_A.weight"] = a.A.detach().to(torch::kCPU, torch::kFloat);
      adapters["unet." + path + ".lora_B.weight"] = a.B.detach().to(torch::kCPU, torch::kFloat);
    }
  for (const auto& [name, t] : merged)
    if (!torch::isfinite(t).all().item<bool>())
      throw_runtime("sam-enhancer: the merged UNet tensor " + name + " is not finite (the training diverged)");
  fs::create_directories(tmp / "unet");
  write_trained_weights("", merged, (tmp / "unet" / model::canonical_weight_name("unet")).string(),
                        "rass-train sam-enhancer: GleSAM's UNet with its LoRA merged", "sam-enhancer");
  write_file_atomic((tmp / "unet" / "config.json").string(), json_file_text(unet_config_, "unet/config.json", 2) + "\n");
  // The adapters' base: SD's UNet expanded (rass-merge-lora expand-channels),
  // or the start GleSAM folder's UNet, whose own adapters are merged in it.
  const std::string base = s_.sd.empty() ? unet_dir_ + " (a GleSAM enhancer, its adapters merged)"
                                          : unet_dir_ + " with conv_in/conv_out replicated to " +
                                                std::to_string(unet_config_["in_channels"].get<int64_t>()) + " channels";
  write_trained_weights("", adapters, (tmp / "glesam_lora.safetensors").string(),
                        "rass-train sam-enhancer: the adapters alone", "sam-enhancer",
                        {{"rank", std::to_string(s_.lora_rank)},
                         {"lora_alpha", ojson(s_.lora_alpha).dump()},
                         {"base", base},
                         {"writer", "rass-train sam-enhancer"}});
  ojson cfg = read_json_file(s_.model + "/sam.json");
  cfg["enhancer"] = ojson{{"feat_weight", s_.feat_weight}, {"timestep", s_.timestep}, {"prompt", ""}};
  cfg["source"] = std::string("rass-train sam-enhancer ") + rass::version() + " from " + s_.model +
                  (text_dir_ == s_.model ? "" : " and " + text_dir_);
  write_file_atomic((tmp / "sam.json").string(), json_file_text(cfg, (tmp / "sam.json").string(), 1) + "\n");
  w.commit();
}

StageInfo sam_enhancer_stage_info() {
  StageInfo i;
  i.gradient_checkpointing = true;
  i.name = "sam-enhancer";
  i.summary = "GleSAM stage 1: the latent enhancer (SD UNet, channels replicated, LoRA) from SAM's LQ to HQ embeddings "
              "(MSE)";
  i.defaults = sam_enhancer_defaults;
  i.loop_defaults = sam_enhancer_loop_defaults;
  i.make = [](const ojson& cfg, const StageEnv& env) -> std::unique_ptr<Stage> {
    return std::make_unique<SamEnhancerStage>(parse_sam_enhancer_settings(cfg), env);
  };
  return i;
}

}  // namespace rass::train
