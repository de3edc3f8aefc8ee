#include "rass/train/sam_decoder_stage.hpp"

#include <filesystem>
#include <cstdio>
#include <map>
#include <set>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "rass/batch/report.hpp"
#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/folder_check.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/version.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/model_folder.hpp"
#include "rass/train/pretrain_data.hpp"
#include "rass/train/trained_weights.hpp"

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace rass::train {

namespace {

ojson sam_decoder_defaults() {
  // The released values (train_glesam_decoder.py, its dataset and loss).
  return ojson{{"model", ""},         {"enhance", "auto"},  {"trainable", "decoder"},  {"images", ""},      {"labels", ""},
               {"manifest", ""},      {"label_suffix", ""}, {"match_stem", false}, {"masks", "labels"},
               {"skip", {255}},       {"size", 512},        {"preset", "glesam"}, {"severity", 3},       {"prompt", "points"},
               {"points", 3},         {"check_data", true}, {"focal_weight", 1.0}, {"dice_weight", 1.0},
               {"focal_alpha", 0.25}, {"focal_gamma", 2.0}, {"dice_smooth", 1e-6}};
}

ojson sam_decoder_loop_defaults() {
  // torch.optim.Adam(lr=1e-4, weight_decay=1e-5); StepLR(step_size=10) over
  // 6 epochs never decays; the decoder's optimizer is not clipped; batch 1.
  return ojson{{"optimizer", "adam"}, {"lr", 1e-4}, {"weight_decay", 1e-5}, {"schedule", "constant"},
               {"clip_grad_norm", 0.0}, {"batch", 1}};
}

}  // namespace

SamDecoderSettings parse_sam_decoder_settings(const ojson& in) {
  const StageSettings j{"sam-decoder", in, sam_decoder_defaults()};
  j.check_keys();
  SamDecoderSettings s;
  s.model = j.str("model");
  if (s.model.empty()) throw_usage("sam-decoder.model: give the SAM or GleSAM folder to start from (scripts/convert_sam.py -o DIR)");
  s.enhance = j.str("enhance");
  if (s.enhance != "auto" && s.enhance != "on" && s.enhance != "off")
    throw_usage("sam-decoder.enhance must be auto, on or off, got '" + s.enhance + "'");
  s.trainable = j.str("trainable");
  if (s.trainable != "decoder" && s.trainable != "tokens")
    throw_usage("sam-decoder.trainable must be decoder (every tensor but the IoU token and head, as released) or tokens "
                "(the mask tokens and their hypernetwork MLPs), got '" + s.trainable + "'");
  s.data.images = j.str("images");
  s.data.labels = j.str("labels");
  s.data.manifest = j.str("manifest");
  s.data.label_suffix = j.str("label_suffix");
  s.data.match_stem = j.flag("match_stem");
  s.data.masks = j.str("masks");
  if (!j.at("skip").is_array()) throw_usage("sam-decoder.skip must be a list of label values (0..65535)");
  s.data.skip.clear();
  for (const auto& e : j.at("skip")) {
    if (!e.is_number_integer() || e.get<int64_t>() < 0 || e.get<int64_t>() > 65535)
      throw_usage("sam-decoder.skip must hold label values 0..65535");
    s.data.skip.push_back(e.get<int>());
  }
  s.data.size = int(j.integer("size", 16, 4096));
  s.data.preset = j.str("preset");
  s.data.severity = int(j.integer("severity", 1, 5));
  s.data.prompt = j.str("prompt");
  s.data.points = int(j.integer("points", 1, 64));
  s.check_data = j.flag("check_data");
  s.focal_weight = j.num("focal_weight", 0, 1e6);
  s.dice_weight = j.num("dice_weight", 0, 1e6);
  if (s.focal_weight + s.dice_weight <= 0) throw_usage("sam-decoder.focal_weight and dice_weight are both 0: nothing to train on");
  s.focal_alpha = j.num("focal_alpha", 0, 1);
  s.focal_gamma = j.num("focal_gamma", 0, 100);
  s.dice_smooth = j.num("dice_smooth", 0, 1e6);
  return s;
}

SamMaskLoss sam_mask_loss(const torch::Tensor& logits, const torch::Tensor& targets, double alpha, double gamma,
                          double smooth) {
  // FocalLoss(gamma=2, alpha=0.25): the alpha of every pixel is the constant
  // (its float branch), not alpha / 1 - alpha by class.
  const torch::Tensor x = logits.to(torch::kFloat), t = targets.to(torch::kFloat);
  const torch::Tensor ce = torch::binary_cross_entropy_with_logits(x, t, {}, {}, at::Reduction::None);
  const torch::Tensor pt = torch::exp(-ce);
  SamMaskLoss l;
  l.focal = (alpha * torch::pow(1 - pt, gamma) * ce).mean();
  // DiceLoss(smooth=1e-6): per mask, then the mean.
  const torch::Tensor p = torch::sigmoid(x).flatten(1), tf = t.flatten(1);
  const torch::Tensor inter = (p * tf).sum(1), uni = p.sum(1) + tf.sum(1);
  l.dice = (1 - (2 * inter + smooth) / (uni + smooth)).mean();
  return l;
}

SamDecoderStage::SamDecoderStage(const SamDecoderSettings& s, const StageEnv& env) : s_(s), env_(env) {
  require_folder(s_.model, "sam-decoder.model takes a SAM folder (scripts/convert_sam.py -o DIR)");
  const model::SamFolderConfig cfg = model::read_sam_config(s_.model);
  if (cfg.architecture == "sam2")
    throw_usage(cfg.path + " is a SAM 2 folder: rass-train sam-decoder fine-tunes SAM v1's decoder (SAM, GleSAM)");
  if (cfg.sam.robust || cfg.sam.hq)
    throw_usage(cfg.path + " is a " + std::string(cfg.sam.robust ? "RobustSAM" : "HQ-SAM") +
                " folder: rass-train sam-decoder fine-tunes SAM's own decoder (SAM, GleSAM)");
  if (s_.enhance == "on" && !cfg.enhancer)
    throw_usage("sam-decoder.enhance on: " + cfg.path + " has no enhancer (only GleSAM's folders have one)");
  // The data before the weights: a bad setting or pair stops the run at once.
  data_ = std::make_unique<SamDecoderData>(s_.data, env_.seed);
  if (s_.check_data) {
    const std::string warning = data_->check();
    if (!warning.empty() && env_.rank == 0 && !env_.quiet)
      std::fprintf(stderr, "%s: warning: %s\n", env_.prog.c_str(), warning.c_str());
  }
  model::SamModelOptions o;
  o.dir = s_.model;
  o.enhance = s_.enhance;
  o.robust = "off";
  o.hq = "off";
  o.device = env_.device.str();
  o.dtype = "fp32";  // trainable weights are fp32 masters; the loop's AMP casts the compute
  if (env_.dtype != torch::kFloat && env_.rank == 0 && !env_.quiet)
    std::fprintf(stderr, "%s: sam-decoder: SAM (and its enhancer) run in float32, its decoder's weights being the "
                         "trained ones (loop.amp for bf16 compute on CUDA); loop.dtype is not used\n",
                 env_.prog.c_str());
  model_ = std::make_unique<model::SamModel>(o);
  order_ = std::make_unique<DataOrder>(data_->size(), env_.seed);
  // The export links the start folder's other files: a loop or a dangling
  // link there is found now, not after the last step.
  model::FolderWriter::check_tree(s_.model);
  nn::SamImpl& sam = *model_->sam;
  for (auto& p : sam.parameters()) p.set_requires_grad(false);
  if (model_->unet)
    for (auto& p : model_->unet->parameters()) p.set_requires_grad(false);
  for (const auto& p : sam.mask_decoder->named_parameters(true)) {
    const std::string& n = p.key();
    const bool train = s_.trainable == "tokens"
                           ? n.rfind("mask_tokens.", 0) == 0 || n.rfind("output_hypernetworks_mlps.", 0) == 0
                           : n.find("iou") == std::string::npos;
    p.value().set_requires_grad(train);
  }
}

std::vector<ParamGroup> SamDecoderStage::param_groups() {
  ParamGroup g{"decoder", {}, 1.0, -1};
  for (const auto& p : model_->sam->mask_decoder->named_parameters(true))
    if (p.value().requires_grad()) g.params.emplace_back("mask_decoder." + p.key(), p.value());
  return {g};
}

torch::Tensor SamDecoderStage::embed(const model::SamInput& in) const {
  torch::NoGradGuard ng;
  return model_->embed(in).detach();
}

torch::Tensor SamDecoderStage::decode(const torch::Tensor& embedding, const model::SamInput& in,
                                      const std::vector<std::array<double, 2>>& points,
                                      const std::optional<std::array<double, 4>>& box) const {
  model::SamObject o;  // positive clicks and the box, as rass-sam prompts them
  o.points = points;
  o.point_labels.assign(points.size(), 1);
  o.box = box;
  return model_->sam->decode(embedding, model_->prompt_tensors({o}, 0, 1, in), /*multimask=*/false).first;
}

StepLoss SamDecoderStage::compute_loss(const StepContext& ctx) {
  const int64_t B = ctx.local_batch;
  std::vector<SamDecoderSample> samples(static_cast<size_t>(B));
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t g = ctx.sample_offset + b;
      samples[size_t(b)] = data_->sample(order_->item(ctx.step, ctx.global_batch, g), ctx.step, g);
    }
  });
  const int64_t S = s_.data.size;
  std::vector<torch::Tensor> logits, targets;
  for (const SamDecoderSample& smp : samples) {
    const model::SamInput in = model_->prepare(smp.lq);
    const torch::Tensor low = decode(embed(in), in, smp.points, smp.box);
    logits.push_back(torch::upsample_bilinear2d(low.to(torch::kFloat), {S, S}, false));
    targets.push_back(torch::from_blob(const_cast<uint8_t*>(smp.target.u8()), {1, 1, S, S}, torch::kUInt8)
                          .to(model_->device, torch::kFloat)
                          .div(255.0));
  }
  const SamMaskLoss l = sam_mask_loss(torch::cat(logits), torch::cat(targets), s_.focal_alpha, s_.focal_gamma,
                                      s_.dice_smooth);
  StepLoss out;
  out.loss = s_.focal_weight * l.focal + s_.dice_weight * l.dice;
  out.terms = {{"loss_focal", l.focal.item<double>()}, {"loss_dice", l.dice.item<double>()}};
  out.images = B;
  return out;
}

void SamDecoderStage::export_model(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec) && fs::equivalent(dir, s_.model, ec))
    throw_usage("the export folder " + dir + " is the start folder (sam-decoder.model): choose another");
  model::FolderWriter w(dir, model::FolderWriter::Existing::replace);
  const fs::path tmp = w.tmp();
  // The enhancer and everything else is linked; the weights and sam.json
  // are written. A decoder trained on SAM's own embedding (enhance off on a
  // GleSAM folder) is exported as plain SAM: without the enhancer it was
  // not trained with.
  const bool drop_enhancer = model_->config.enhancer && !model_->enhancing;
  std::set<std::string> skip = {"sam.safetensors", "sam.json"};
  if (drop_enhancer) skip.insert({"unet", "text_encoder", "tokenizer", "scheduler"});
  w.link_tree(s_.model, "", skip);
  torch::NoGradGuard ng;
  std::map<std::string, torch::Tensor> trained;
  const std::vector<ParamGroup> groups = param_groups();
  for (const auto& [name, t] : groups.at(0).params) trained[name] = t.detach().to(torch::kCPU, torch::kFloat).contiguous();
  write_trained_weights(s_.model + "/sam.safetensors", trained, (tmp / "sam.safetensors").string(),
                        "rass-train sam-decoder: the mask decoder trained from " + s_.model, "sam-decoder");
  ojson cfg = read_json_file(s_.model + "/sam.json");
  if (drop_enhancer) cfg.erase("enhancer");
  cfg["source"] = std::string("rass-train sam-decoder ") + rass::version() + " from " + s_.model;
  write_file_atomic((tmp / "sam.json").string(), json_file_text(cfg, (tmp / "sam.json").string(), 1) + "\n");
  w.commit();
}

StageInfo sam_decoder_stage_info() {
  StageInfo i;
  i.name = "sam-decoder";
  i.summary = "GleSAM stage 2: SAM's mask decoder (not its IoU head) on LQ images, enhanced embeddings with a GleSAM folder "
              "(focal + Dice)";
  i.defaults = sam_decoder_defaults;
  i.loop_defaults = sam_decoder_loop_defaults;
  i.make = [](const ojson& cfg, const StageEnv& env) -> std::unique_ptr<Stage> {
    return std::make_unique<SamDecoderStage>(parse_sam_decoder_settings(cfg), env);
  };
  return i;
}

}  // namespace rass::train
