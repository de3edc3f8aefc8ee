#include "rass/train/sinsr_stage.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/folder_check.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/printable.hpp"
#include "rass/core/rng.hpp"
#include "rass/core/version.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/model_folder.hpp"
#include "rass/model/sam_model.hpp"
#include "rass/nn/autocast.hpp"
#include "rass/train/trained_weights.hpp"

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace rass::train {

namespace {

ojson sinsr_defaults() {
  // The released SinSR.yaml / SamSR.yaml (learn_xT True, finetune_use_gt 1).
  ojson d{{"teacher", ""}, {"student", ""}, {"noise", "gaussian"}, {"sam", ""}};
  d.update(sinsr_data_defaults());
  d.update(ojson{{"distill_weight", 1.0}, {"xT_weight", 1.0}, {"gt_weight", 1.0}});
  return d;
}

}  // namespace

SinsrSettings parse_sinsr_settings(const ojson& in) {
  const StageSettings j{"sinsr", in, sinsr_defaults()};
  j.check_keys();
  SinsrSettings s;
  s.teacher = j.str("teacher");
  if (s.teacher.empty())
    throw_usage("sinsr.teacher: give the ResShift teacher's rass-samsr folder (scripts/convert_samsr.py "
                "resshift_realsrx4_s15_v1.pth --method resshift -o DIR)");
  s.student = j.str("student");
  s.noise = j.str("noise");
  if (s.noise != "gaussian" && s.noise != "sam")
    throw_usage("sinsr.noise must be gaussian (SinSR) or sam (SAMSR), got '" + s.noise + "'");
  s.sam = j.str("sam");
  if (!s.sam.empty() && s.noise != "sam")
    throw_usage("sinsr.sam is set but sinsr.noise is " + s.noise + ": SAM's folder is for noise sam (SAMSR)");
  s.data = parse_sinsr_data(j);
  s.distill_weight = j.num("distill_weight", 0, 1e6);
  s.xT_weight = j.num("xT_weight", 0, 1e6);
  s.gt_weight = j.num("gt_weight", 0, 1e6);
  if (s.distill_weight + s.gt_weight <= 0)
    throw_usage("sinsr.distill_weight and gt_weight are both 0: nothing teaches the one step");
  return s;
}

SinsrTerms sinsr_terms(nn::ResShiftUNetImpl& student, const model::SamsrModel& teacher, const SinsrInputs& in,
                       const SinsrSettings& s) {
  const model::SamsrFolderConfig& c = teacher.config;
  const int64_t T = c.steps, B = in.lq.size(0);
  const double kappa = c.kappa;
  std::vector<double> etas;
  for (double v : teacher.sqrt_etas) etas.push_back(v * v);
  // _scale_input: x / sqrt(eta_t kappa^2 + 1) (latent_flag).
  auto scale = [&](int64_t t) { return c.normalize_input ? std::sqrt(etas[size_t(t)] * kappa * kappa + 1) : 1.0; };
  auto steps = [&](int64_t t) {
    return torch::full({B}, t, torch::TensorOptions().dtype(torch::kLong).device(in.lq.device()));
  };
  auto mean_flat = [](const torch::Tensor& d) { return d.pow(2).flatten(1).mean(1); };
  const torch::Tensor z_y = in.z_y.to(torch::kFloat), noise = in.noise.to(torch::kFloat);
  const double se = teacher.sqrt_etas[size_t(T - 1)];
  SinsrTerms out;
  // The teacher's deterministic chain (ddim_sample_loop, clip off) from the
  // unmodified prior, both methods.
  // The teacher's x_0 is used by the distillation and inverse-map terms only.
  const bool need_teacher = s.distill_weight > 0 || s.xT_weight > 0;
  {
    torch::NoGradGuard ng;
    const nn::AutocastPause frozen;  // the teacher in its own dtype, not loop.amp's
    torch::Tensor x = z_y + float(kappa * se) * noise;
    for (int64_t t = need_teacher ? T - 1 : -1; t >= 0; --t) {
      const torch::Tensor x0 =
          teacher.unet.ptr()->forward((x / scale(t)).to(teacher.dtype), steps(t), in.lq.to(teacher.dtype)).to(torch::kFloat);
      if (t == 0) {
        x = x0;
        break;
      }
      const double e = etas[size_t(t)], ep = etas[size_t(t - 1)];
      const double m = std::sqrt(ep / e), j = ep - std::sqrt(ep * e), k = 1 - ep + std::sqrt(ep * e) - m;
      x = float(k) * x0 + float(m) * x + float(j) * z_y;
    }
    if (need_teacher) out.z_teacher = x;
    if (in.weight.defined()) {  // SAMSR's prior_sample_train
      const torch::Tensor w = in.weight.to(torch::kFloat) / c.weight_divisor;
      out.z_t = z_y + ((1.0 - w) * float(kappa)) * ((1.0 + w) * float(se)) * noise;
    } else {
      out.z_t = z_y + float(kappa * se) * noise;
    }
  }
  const double sT = scale(T - 1);
  auto f = [&](const torch::Tensor& x, int64_t t) { return student.forward(x / sT, steps(t), in.lq); };
  if (s.distill_weight > 0) out.mse = mean_flat(out.z_teacher - f(out.z_t, T - 1));
  if (s.xT_weight > 0) out.mse_xT = mean_flat(out.z_t - f(out.z_teacher, 0));
  if (s.gt_weight > 0) {
    torch::Tensor z_gt, xT_gt;
    {
      torch::NoGradGuard ng;
      {
        const nn::AutocastPause frozen;
        z_gt = teacher.encode(in.gt);
      }
      xT_gt = f(z_gt, 0).detach();
    }
    out.mse_gt = mean_flat(z_gt - f(xT_gt, T - 1));
  }
  return out;
}

SinsrStage::SinsrStage(const SinsrSettings& s, const StageEnv& env) : s_(s), env_(env) {
  if (env_.threads > 0) torch::set_num_threads(env_.threads);
  require_folder(s_.teacher, "sinsr.teacher takes a rass-samsr folder (scripts/convert_samsr.py -o DIR)");
  if (!s_.student.empty()) require_folder(s_.student, "sinsr.student takes a rass-samsr folder");
  // The data before the weights: a bad setting or input stops the run at once.
  s_.data.seed = env_.seed;
  data_ = std::make_unique<SinsrData>(s_.data);
  if (s_.data.check_data) data_->check();
  model::SamsrModelOptions o;
  o.dir = s_.teacher;
  o.device = env_.device.str();
  // The frozen teacher and autoencoder in loop.dtype (fp32 by default; the
  // reference runs its teacher in fp32 and its autoencoder in fp16); the
  // student's weights are fp32 masters (loop.amp casts its compute).
  o.dtype = env_.dtype == torch::kBFloat16 ? "bf16" : env_.dtype == torch::kHalf ? "fp16" : "fp32";
  o.noise = s_.noise;
  o.steps = 1;
  if (s_.noise == "sam") {
    sam_dir_ = s_.sam.empty() ? s_.teacher + "/sam" : s_.sam;
    if (!file_exists(sam_dir_ + "/sam.json"))
      throw_bad_input(sam_dir_, "has no sam.json: sinsr.noise sam needs SAM ViT-B's folder (scripts/convert_sam.py -o DIR) "
                                "in sinsr.sam or as the teacher's sam/; sinsr.noise gaussian trains without SAM");
    o.sam_dir = sam_dir_;
  }
  teacher_ = std::make_unique<model::SamsrModel>(o);
  check_crop_multiple("sinsr", s_.data.crop, teacher_->size_multiple(), "the network's");
  for (auto& p : teacher_->unet->parameters()) p.set_requires_grad(false);
  for (auto& p : teacher_->vq->parameters()) p.set_requires_grad(false);
  const std::string from = s_.student.empty() ? s_.teacher : s_.student;
  const model::SamsrFolderConfig scfg = s_.student.empty() ? teacher_->config : model::read_samsr_config(s_.student);
  student_ = model::load_samsr_unet(scfg, from);
  check_crop_multiple("sinsr", s_.data.crop, student_->size_multiple(), "the student's");
  student_->to(env_.device, torch::kFloat);
  student_->train();
  for (auto& p : student_->parameters()) p.set_requires_grad(true);
  order_ = std::make_unique<DataOrder>(data_->size(), env_.seed);
  // The export links the teacher's other files: a loop or a dangling link
  // there is found now, not after the last step.
  model::FolderWriter::check_tree(s_.teacher);
  if (!sam_dir_.empty()) model::FolderWriter::check_tree(sam_dir_);
  // A warning, not a refusal: any ResShift-family network runs the chain,
  // but a one-step model's chain is not what it was trained for.
  if (teacher_->config.method != "resshift" && env_.rank == 0)
    std::fprintf(stderr, "%s: warning: sinsr.teacher %s is a method %s folder (a one-step model); the released "
                 "teacher is ResShift's %lld-step model (scripts/convert_samsr.py --method resshift)\n",
                 env_.prog.c_str(), printable_message(s_.teacher).c_str(), teacher_->config.method.c_str(),
                 (long long)teacher_->config.steps);
  if (env_.rank == 0 && !env_.quiet)
    std::fprintf(stderr, "%s: sinsr: %zu %s, crop %lld, noise %s, teacher %lld steps\n", env_.prog.c_str(),
                 data_->size(), data_->paired() ? "LQ/HQ pairs" : "images", (long long)s_.data.crop, s_.noise.c_str(),
                 (long long)teacher_->config.steps);
}

std::vector<ParamGroup> SinsrStage::param_groups() {
  ParamGroup g{"unet", {}, 1.0, -1};
  for (const auto& p : student_->named_parameters(true)) g.params.emplace_back("unet." + p.key(), p.value());
  return {g};
}

StepLoss SinsrStage::compute_loss(const StepContext& ctx) {
  const int64_t B = ctx.local_batch;
  const torch::Device dev = teacher_->device;
  const SinsrBatch batch = load_sinsr_batch(*data_, *order_, ctx, dev);
  const std::vector<SinsrSample>& samples = batch.samples;
  SinsrInputs in;
  in.gt = batch.gt;
  in.lq = batch.lq;
  {
    torch::NoGradGuard ng;
    const nn::AutocastPause frozen;
    in.z_y = teacher_->encode_lq(in.lq);
  }
  const int64_t h = in.z_y.size(2), w = in.z_y.size(3);
  std::vector<torch::Tensor> noise, weight;
  for (int64_t b = 0; b < B; ++b) {
    // Keyed by the sample's draw (stage.hpp's contract), not the process.
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(stream_seed(env_.seed, samples[size_t(b)].draw, "noise"));
    if (s_.noise == "sam") {
      torch::NoGradGuard ng;
      const nn::AutocastPause frozen;  // SAM's masks pass sharp thresholds: float32, as the reference runs it
      const model::SamsrNoise n = model::samsr_noise_from_masks(teacher_->sam_masks(in.z_y.slice(0, b, b + 1)), gen);
      noise.push_back(n.noise);
      weight.push_back(n.weight);
    } else {
      noise.push_back(at::randn({1, 3, h, w}, gen, torch::TensorOptions().dtype(torch::kFloat)));
    }
  }
  in.noise = torch::cat(noise).to(dev);
  if (!weight.empty()) in.weight = torch::cat(weight).to(dev);
  const SinsrTerms t = sinsr_terms(*student_, *teacher_, in, s_);
  StepLoss out;
  torch::Tensor loss = torch::zeros({B}, torch::TensorOptions().device(dev));
  auto add = [&](const torch::Tensor& term, double wgt, const char* name) {
    if (!term.defined()) return;
    loss = loss + wgt * term;
    out.terms.emplace_back(name, term.mean().item<double>());
  };
  add(t.mse, s_.distill_weight, "mse");
  add(t.mse_xT, s_.xT_weight, "mse_xT");
  add(t.mse_gt, s_.gt_weight, "mse_gt");
  out.loss = loss.mean();
  out.images = B;
  return out;
}

void SinsrStage::export_model(const std::string& dir) {
  std::error_code ec;
  for (const std::string& input : {s_.teacher, s_.student, sam_dir_})
    if (!input.empty() && fs::exists(dir, ec) && fs::equivalent(dir, input, ec))
      throw_usage("the export folder " + dir + " is an input folder (" + input + "): choose another");
  ojson cfg = read_json_file(s_.teacher + "/samsr.json");
  // The schedule and autoencoder are the teacher's; the network the student's
  // (sinsr.student may have another size than the teacher).
  if (!s_.student.empty()) {
    const ojson st = read_json_file(s_.student + "/samsr.json");
    if (st.is_object() && st.contains("unet")) cfg["unet"] = st["unet"];
    else cfg.erase("unet");
  }
  cfg["method"] = s_.noise == "sam" ? "samsr" : "sinsr";
  const std::string start_dir = s_.student.empty() ? s_.teacher : s_.student;
  export_samsr_folder(dir, s_.teacher, sam_dir_, start_dir + "/unet.safetensors", cpu_float_parameters(*student_), cfg,
                      teacher_->config.cap_etas_start, "sinsr");
}

StageInfo sinsr_stage_info() {
  StageInfo i;
  i.name = "sinsr";
  i.summary = "SinSR / SAMSR: a one-step x4 network distilled from a ResShift teacher (noise gaussian or sam)";
  i.defaults = sinsr_defaults;
  i.loop_defaults = resshift_family_loop_defaults;
  i.make = [](const ojson& cfg, const StageEnv& env) -> std::unique_ptr<Stage> {
    return std::make_unique<SinsrStage>(parse_sinsr_settings(cfg), env);
  };
  return i;
}

}  // namespace rass::train
