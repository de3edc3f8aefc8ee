#include "rass/train/ras_stage.hpp"


#include <algorithm>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/folder_check.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/rng.hpp"
#include "rass/core/version.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/lora_surgery.hpp"
#include "rass/model/model_folder.hpp"
#include "rass/model/prompt.hpp"
#include "rass/nn/lora.hpp"

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace rass::train {

namespace {

ojson ras_defaults() {
  // Every setting of the stage; the values are the released ones where RASS has one.
  return ojson{{"model", ""},
               {"images", ""},
               {"labels", ""},
               {"manifest", ""},
               {"label_suffix", ""},
               {"match_stem", false},
               {"reduce_zero_label", false},
               {"check_labels", true},
               {"crop_size", 512},
               {"min_sizes", ojson::array()},
               {"max_size", 2048},
               {"color_aug", true},
               {"flip", true},
               {"preset", "rass"},
               {"prompt", "classes"},
               {"class_weight", 2.0},
               {"mask_weight", 5.0},
               {"dice_weight", 5.0},
               {"no_object_weight", 0.1},
               {"num_points", 12544},
               {"oversample_ratio", 3.0},
               {"importance_sample_ratio", 0.75},
               {"deep_supervision", true},
               {"backbone_lr_mult", 0.1},
               {"weight_decay_norm", 0.0},
               {"weight_decay_embed", 0.0}};
}

ojson ras_loop_defaults() {
  // Mask2Former's ADE20K solver as RASS uses it (REFERENCE.md 4 "Training").
  return ojson{{"lr", 1e-4},        {"weight_decay", 0.05}, {"eps", 1e-8}, {"schedule", "poly"},
               {"poly_power", 0.9}, {"warmup_steps", 0},    {"clip_grad_norm", 0.01}};
}

std::string str(const ojson& j, const char* k) {
  if (!j[k].is_string()) throw_usage(std::string("ras.") + k + " must be a string");
  return j[k].get<std::string>();
}
bool boolean(const ojson& j, const char* k) {
  if (!j[k].is_boolean()) throw_usage(std::string("ras.") + k + " must be true or false");
  return j[k].get<bool>();
}
double number(const ojson& j, const char* k, double lo, double hi) {
  if (!j[k].is_number() || !(j[k].get<double>() >= lo && j[k].get<double>() <= hi))
    throw_usage(std::string("ras.") + k + " must be a number in " + std::to_string(lo) + ".." + std::to_string(hi));
  return j[k].get<double>();
}
int64_t integer(const ojson& j, const char* k, int64_t lo, int64_t hi) {
  if (!j[k].is_number_integer() || j[k].get<int64_t>() < lo || j[k].get<int64_t>() > hi)
    throw_usage(std::string("ras.") + k + " must be an integer " + std::to_string(lo) + ".." + std::to_string(hi));
  return j[k].get<int64_t>();
}

torch::Tensor to_tensor_rgb(const std::vector<const Image*>& imgs) {
  // uint8 HWC -> float [B, 3, H, W] in [-1, 1] (x / 255 * 2 - 1, as released).
  std::vector<torch::Tensor> v;
  for (const Image* im : imgs)
    v.push_back(torch::from_blob(const_cast<uint8_t*>(im->u8()), {im->height, im->width, 3}, torch::kUInt8)
                    .permute({2, 0, 1})
                    .to(torch::kFloat)
                    .div(255.0)
                    .mul(2.0)
                    .sub(1.0));
  return torch::stack(v);
}

}  // namespace

RasSettings parse_ras_settings(const ojson& in) {
  if (!in.is_object()) throw_usage("the stage section must be an object");
  ojson j = ras_defaults();
  for (const auto& [k, v] : in.items()) {
    if (!j.contains(k)) throw_usage("ras." + k + " is not a setting of rass-train ras");
    j[k] = v;
  }
  RasSettings s;
  s.model = str(j, "model");
  if (s.model.empty()) throw_usage("ras.model: give the segmentation model folder to start from (rass-merge-lora init-seg -O DIR)");
  s.data.images = str(j, "images");
  s.data.labels = str(j, "labels");
  s.data.manifest = str(j, "manifest");
  s.data.label_suffix = str(j, "label_suffix");
  s.data.match_stem = boolean(j, "match_stem");
  s.data.reduce_zero_label = boolean(j, "reduce_zero_label");
  s.check_labels = boolean(j, "check_labels");
  s.data.crop_size = int(integer(j, "crop_size", 8, 8192));
  if (!j["min_sizes"].is_array()) throw_usage("ras.min_sizes must be a list of integers ([] = the released list scaled to crop_size)");
  for (const auto& e : j["min_sizes"]) {
    if (!e.is_number_integer() || e.get<int64_t>() < 1 || e.get<int64_t>() > 65535)
      throw_usage("ras.min_sizes must hold integers 1..65535");
    s.data.min_sizes.push_back(e.get<int>());
  }
  s.data.max_size = int(integer(j, "max_size", 1, 65535));
  s.data.color_aug = boolean(j, "color_aug");
  s.data.flip = boolean(j, "flip");
  s.data.preset = str(j, "preset");
  if (s.data.preset.empty())  // (before the model is read; RasData says the same)
    throw_usage("ras.preset is empty: name a preset (rass, the default), or none for clean crops");
  s.prompt = str(j, "prompt");
  s.criterion.class_weight = number(j, "class_weight", 0, 1e6);
  s.criterion.mask_weight = number(j, "mask_weight", 0, 1e6);
  s.criterion.dice_weight = number(j, "dice_weight", 0, 1e6);
  s.criterion.no_object_weight = number(j, "no_object_weight", 0, 1e6);
  s.criterion.num_points = integer(j, "num_points", 1, int64_t(1) << 24);
  s.criterion.oversample_ratio = number(j, "oversample_ratio", 1, 1e3);
  s.criterion.importance_sample_ratio = number(j, "importance_sample_ratio", 0, 1);
  s.criterion.deep_supervision = boolean(j, "deep_supervision");
  s.backbone_lr_mult = number(j, "backbone_lr_mult", 0, 1e6);
  s.weight_decay_norm = number(j, "weight_decay_norm", 0, 1e6);
  s.weight_decay_embed = number(j, "weight_decay_embed", 0, 1e6);
  return s;
}

RasStage::RasStage(const RasSettings& s, const StageEnv& env) : s_(s), env_(env) {
  require_folder(s_.model, "ras.model takes a segmentation model folder");
  const std::string lora = s_.model + "/seg_lora.safetensors";
  // A missing Seg LoRA would leave the backbone with nothing to adapt; stop before loading gigabytes.
  (void)model::read_segment_config(s_.model);
  if (!file_exists(lora))
    throw_bad_input(lora, "missing: rass-train ras trains the Seg LoRA of the start folder (rass-merge-lora init-seg writes it)");
  model::SegmentModelOptions o;
  o.dir = s_.model;
  o.device = env_.device.str();
  o.dtype = "fp32";  // trainable weights are fp32 masters; the loop's AMP casts the compute
  o.quiet = env_.quiet || env_.rank != 0;
  o.prog = env_.prog;
  o.merge_seg_lora = false;
  model_ = std::make_unique<model::SegmentModel>(o);
  if (model_->seg_lora_adapters.empty()) throw_bad_input(lora, "adds no LoRA adapter to the UNet");
  const model::SegmentFolderConfig& cfg = model_->config;
  if (s_.data.crop_size % cfg.coarsest_stride())
    throw_usage("ras.crop_size " + std::to_string(s_.data.crop_size) + " must be a multiple of " +
                std::to_string(cfg.coarsest_stride()) + " (the model's coarsest feature stride)");
  if (s_.prompt == "classes" && cfg.classes.empty())
    throw_bad_input(cfg.path, "has no class names, which ras.prompt \"classes\" needs (or set prompt to \"none\" or a text)");
  s_.data.num_classes = cfg.head.num_classes;
  data_ = std::make_unique<RasData>(s_.data, env_.seed);
  if (s_.check_labels) data_->check_labels();
  order_ = std::make_unique<DataOrder>(data_->size(), env_.seed);

  // The export links the start folder's other files: a loop or a dangling
  // link there is found now, not after the last step.
  model::FolderWriter::check_tree(s_.model);
  // Trainable: the Seg LoRA, conv_in, the projection and the head.
  for (auto& p : model_->vae->parameters()) p.set_requires_grad(false);
  for (auto& p : model_->text_encoder->parameters()) p.set_requires_grad(false);
  nn::mark_only_lora_as_trainable(*model_->unet, model_->seg_lora_adapters);
  for (auto& p : model_->unet->conv_in->named_parameters(false))
    if (!nn::is_lora_parameter(p.key())) p.value().set_requires_grad(true);
  for (auto& p : model_->heads->parameters()) p.set_requires_grad(true);
  model_->unet->set_gradient_checkpointing(env_.gradient_checkpointing);
}

std::vector<ParamGroup> RasStage::param_groups() {
  ParamGroup bb{"backbone", {}, s_.backbone_lr_mult, -1}, bb_norm{"backbone_norm", {}, s_.backbone_lr_mult, s_.weight_decay_norm};
  ParamGroup head{"head", {}, 1.0, -1}, head_norm{"head_norm", {}, 1.0, s_.weight_decay_norm},
      head_embed{"head_embed", {}, 1.0, s_.weight_decay_embed};
  for (const auto& p : model_->unet->named_parameters(true))
    if (p.value().requires_grad()) bb.params.emplace_back("unet." + p.key(), p.value());
  // By module type, as Mask2Former's build_optimizer decides: norm layers and
  // embeddings lose weight decay; "backbone" in the module name gets the multiplier.
  for (const auto& m : model_->heads->named_modules()) {
    const bool is_norm = m.value()->as<torch::nn::GroupNorm>() || m.value()->as<torch::nn::LayerNorm>();
    const bool is_embed = m.value()->as<torch::nn::Embedding>() != nullptr;
    const bool backbone = m.key().rfind("feature_projections", 0) == 0;
    for (const auto& p : m.value()->named_parameters(false)) {
      if (!p.value().requires_grad()) continue;
      const std::string name = (m.key().empty() ? "" : m.key() + ".") + p.key();
      ParamGroup& g = backbone ? (is_norm ? bb_norm : bb) : is_norm ? head_norm : is_embed ? head_embed : head;
      g.params.emplace_back(name, p.value());
    }
  }
  std::vector<ParamGroup> out;
  for (ParamGroup* g : {&bb, &bb_norm, &head, &head_norm, &head_embed})
    if (!g->params.empty()) out.push_back(std::move(*g));
  return out;
}

std::string RasStage::prompt_text(const std::vector<int>& classes) const {
  if (s_.prompt == "none") return "";
  if (s_.prompt != "classes") return s_.prompt;
  // The privileged-information analogue of RAM's tags of the clean GT crop:
  // the names of the classes it shows, joined as RASS joins tags.
  std::vector<std::string> names;
  for (int c : classes) names.push_back(model_->config.classes.at(size_t(c)));
  return model::build_prompt(model::PromptStyle::rass, names, "");
}

torch::Tensor RasStage::encode_prompt(const std::string& text) {
  std::lock_guard<std::mutex> lock(prompt_mu_);
  auto it = prompt_cache_.find(text);
  if (it != prompt_cache_.end()) return it->second;
  torch::NoGradGuard ng;
  torch::Tensor e = model_->encode_prompt(text).detach();
  if (prompt_cache_.size() >= 4096) prompt_cache_.clear();  // bounded: class sets vary per crop
  prompt_cache_[text] = e;
  return e;
}

nn::MaskFormerOutput RasStage::forward(const torch::Tensor& x, const torch::Tensor& context, const torch::Tensor& noise) {
  model::SegmentModel& m = *model_;
  std::vector<torch::Tensor> down;
  torch::Tensor z;
  {
    // The VAE is frozen and its input is data: no graph through it (its taps
    // feed the trainable projection as constants).
    torch::NoGradGuard ng;
    const nn::LatentDistribution dist = m.vae->encode(x.to(m.device, m.vae_dtype), &down);
    z = noise.defined() ? dist.mean.to(torch::kFloat) + dist.std.to(torch::kFloat) * noise.to(m.device, torch::kFloat)
                        : dist.mean.to(torch::kFloat);
    z = z * m.vae->config.scaling_factor;
  }
  nn::UNetCaptures cap;
  cap.up_blocks = true;
  const torch::Tensor t = torch::full({x.size(0)}, double(m.config.timestep), torch::TensorOptions().device(m.device));
  m.unet->forward(z.to(m.dtype), t, context.to(m.device, m.dtype), &cap);
  std::vector<torch::Tensor> taps;
  for (size_t i : m.vae_taps) taps.push_back(down.at(i).to(m.head_dtype));
  for (const torch::Tensor& u : cap.up_block_outputs) taps.push_back(u.to(m.head_dtype));
  const auto feats = m.heads->projection->forward(taps, x.size(2), x.size(3));
  return m.heads->sem_seg_head->forward(feats);
}

StepLoss RasStage::compute_loss(const StepContext& ctx) {
  const int64_t B = ctx.local_batch;
  std::vector<RasSample> samples(static_cast<size_t>(B));
  // Samples are independent pure functions of (seed, step, index): decode,
  // augment and degrade them in parallel.
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t g = ctx.sample_offset + b;
      samples[size_t(b)] = data_->sample(order_->item(ctx.step, ctx.global_batch, g), ctx.step, g);
    }
  });
  std::vector<const Image*> lq;
  std::vector<torch::Tensor> ctxs, noises;
  std::vector<SegTarget> targets;
  std::vector<int64_t> keys;
  const int64_t S = s_.data.crop_size, f = model_->vae_factor;
  for (int64_t b = 0; b < B; ++b) {
    const RasSample& s = samples[size_t(b)];
    const int64_t g = ctx.sample_offset + b;
    lq.push_back(&s.lq);
    ctxs.push_back(encode_prompt(prompt_text(s.classes)));
    const std::string draw_key = "step " + std::to_string(ctx.step) + " sample " + std::to_string(g);
    torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(stream_seed(env_.seed, draw_key, "vae-sample"));
    noises.push_back(torch::randn({1, model_->vae->config.latent_channels, S / f, S / f}, gen, torch::kFloat));
    const torch::Tensor lab =
        torch::from_blob(const_cast<int32_t*>(s.label.v.data()), {S, S}, torch::kInt).to(torch::kLong).to(model_->device);
    targets.push_back(target_from_label_map(lab, model_->config.head.num_classes, s_.data.ignore));
    keys.push_back(g);
  }
  const torch::Tensor x = to_tensor_rgb(lq).to(model_->device);
  const nn::MaskFormerOutput out = forward(x, torch::cat(ctxs), torch::cat(noises));
  // The criterion normalises with targets and class weights summed over the
  // processes (Mask2Former's num_masks / world), so N processes equal one.
  CriterionContext cc;
  cc.seed = env_.seed;
  cc.step = ctx.step;
  cc.sample_keys = keys;
  cc.world = ctx.world;
  cc.allreduce_sum = ctx.allreduce_sum;
  CriterionResult r = mask2former_loss(out, targets, s_.criterion, cc);
  StepLoss l;
  l.loss = r.loss;
  for (const auto& [name, t] : r.terms) l.terms.emplace_back(name, t.item<double>());
  l.images = B;
  return l;
}

void RasStage::export_model(const std::string& dir) {
  model::SegmentModel& m = *model_;
  std::error_code ec;
  if (fs::exists(dir, ec) && fs::equivalent(dir, s_.model, ec))
    throw_usage("the export folder " + dir + " is the start folder (ras.model): choose another");
  // Replaces an older export only once the new one is complete.
  model::FolderWriter w(dir, model::FolderWriter::Existing::replace);
  const fs::path tmp = w.tmp();
  const fs::path src = s_.model;
  // Everything frozen is linked from the start folder; the trained parts are written.
  w.link_tree(src.string(), "", {"unet", "seg_lora.safetensors", "seg_head.safetensors", "segment.json"});
  torch::NoGradGuard ng;
  auto save = [](const std::vector<std::pair<std::string, torch::Tensor>>& named, const std::string& path,
                 const std::map<std::string, std::string>& meta) {
    std::vector<torch::Tensor> keep;
    std::vector<TensorToWrite> out;
    for (const auto& [name, t] : named) {
      keep.push_back(t.detach().to(torch::kCPU, torch::kFloat).contiguous());
      const torch::Tensor& c = keep.back();
      out.push_back({name, DType::f32, c.sizes().vec(), c.data_ptr(), size_t(c.nbytes())});
    }
    write_safetensors(path, out, meta);
  };
  // unet/: the frozen base with the trained conv_in (the Seg LoRA stays a file).
  w.copy_component_extras((src / "unet").string(), "unet");
  std::vector<std::pair<std::string, torch::Tensor>> base;
  for (const auto& p : m.unet->named_parameters(true))
    if (!nn::is_lora_parameter(p.key())) base.emplace_back(p.key(), p.value());
  save(base, (tmp / "unet" / "diffusion_pytorch_model.safetensors").string(),
       {{"format", "pt"}, {"rass", "rass-train ras: the start folder's UNet with the trained conv_in"}});
  // The Seg LoRA with the start file's alpha (every adapter layer keeps it).
  double alpha = 0;
  int64_t rank = 0;
  for (auto& [path, layer] : nn::lora_layers(*m.unet))
    for (const auto& [name, a] : layer->adapters) {
      if (alpha == 0) alpha = a.alpha, rank = a.rank;
      else if (a.alpha != alpha || a.rank != rank)
        throw_runtime("the Seg LoRA's layers differ in rank or alpha; the export writes one lora_alpha");
    }
  std::string names;
  for (const auto& n : m.seg_lora_adapters) names += (names.empty() ? "" : ",") + n;
  model::save_named_adapters(*m.unet, m.seg_lora_adapters, (tmp / "seg_lora.safetensors").string(),
                             {{"format", "pt"}, {"lora_alpha", std::to_string(alpha)}, {"rank", std::to_string(rank)},
                              {"adapters", names}, {"rass", "trained by rass-train ras"}});
  std::vector<std::pair<std::string, torch::Tensor>> heads;
  for (const auto& p : m.heads->named_parameters(true)) heads.emplace_back(p.key(), p.value());
  save(heads, (tmp / "seg_head.safetensors").string(), {{"format", "pt"}, {"rass", "trained by rass-train ras"}});
  ojson seg = read_json_file(m.config.path);
  seg["source"] = std::string("rass-train ras ") + rass::version() + " from " + s_.model;
  // The test scale follows the training crop as in the released config
  // (crop 512: shortest edge 512, long side at most 2048), so a model trained
  // on 128 crops segments at 128 rather than at 4x its training scale.
  seg["input"]["min_size_test"] = s_.data.crop_size;
  seg["input"]["max_size_test"] = 4 * s_.data.crop_size;
  write_file_atomic((tmp / "segment.json").string(), json_file_text(seg, (tmp / "segment.json").string(), 2) + "\n");
  w.commit();
}

StageInfo ras_stage_info() {
  StageInfo i;
  i.gradient_checkpointing = true;
  i.name = "ras";
  i.summary = "RASS stage 2: Seg LoRA + conv_in + projection + Mask2Former head on LQ crops (Mask2Former criterion)";
  i.defaults = ras_defaults;
  i.loop_defaults = ras_loop_defaults;
  i.make = [](const ojson& cfg, const StageEnv& env) -> std::unique_ptr<Stage> {
    return std::make_unique<RasStage>(parse_ras_settings(cfg), env);
  };
  return i;
}

}  // namespace rass::train
