#include "rass/train/resshift_stage.hpp"

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
#include "rass/core/rng.hpp"
#include "rass/core/version.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/iqa_lpips.hpp"
#include "rass/model/model_folder.hpp"
#include "rass/nn/autocast.hpp"
#include "rass/train/trained_weights.hpp"

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace rass::train {

namespace {

ojson resshift_defaults() {
  ojson d{{"model", ""}, {"init", "model"}};
  d.update(sinsr_data_defaults());
  d.update(ojson{{"lpips_weight", 0.0}, {"lpips_weights", ""}});
  return d;
}

}  // namespace

ResshiftSettings parse_resshift_settings(const ojson& in) {
  const StageSettings j{"resshift", in, resshift_defaults()};
  j.check_keys();
  ResshiftSettings s;
  s.model = j.str("model");
  if (s.model.empty())
    throw_usage("resshift.model: give the rass-samsr folder to start from (scripts/convert_samsr.py "
                "resshift_realsrx4_s15_v1.pth --method resshift -o DIR)");
  s.init = j.str("init");
  if (s.init != "model" && s.init != "random")
    throw_usage("resshift.init must be model (the folder's network) or random (ResShift's initialisation, as its "
                "trainer starts), got '" + s.init + "'");
  s.data = parse_sinsr_data(j);
  s.lpips_weight = j.num("lpips_weight", 0, 1e6);
  s.lpips_weights = j.str("lpips_weights");
  if (s.lpips_weight > 0 && s.lpips_weights.empty())
    throw_usage("resshift.lpips_weight " + std::to_string(s.lpips_weight) +
                " needs resshift.lpips_weights (lpips_vgg.safetensors, scripts/convert_iqa_lpips.py)");
  return s;
}

ResshiftTerms resshift_terms(const model::SamsrModel& m, const ResshiftInputs& in, nn::LpipsImpl* lpips) {
  const model::SamsrFolderConfig& c = m.config;
  const int64_t B = in.lq.size(0);
  const torch::Tensor t = in.t.to(torch::kLong);
  // The schedule at each sample's step, in float64 then float32 (as the
  // reference's numpy arrays are extracted).
  const torch::Tensor s = torch::tensor(m.sqrt_etas, torch::kDouble).index_select(0, t.cpu()).view({B, 1, 1, 1});
  auto col = [&](const torch::Tensor& v) { return v.to(in.lq.device(), torch::kFloat); };
  const torch::Tensor eta = s * s, sqe = s * c.kappa;
  const torch::Tensor sd = c.normalize_input ? torch::sqrt(eta * (c.kappa * c.kappa) + 1) : torch::ones_like(s);
  torch::Tensor z0;
  {
    torch::NoGradGuard ng;
    const nn::AutocastPause frozen;
    z0 = m.encode(in.gt);
  }
  const torch::Tensor z_y = in.z_y.to(torch::kFloat);
  ResshiftTerms out;
  out.z_t = col(eta) * (z_y - z0) + z0 + col(sqe) * in.noise.to(torch::kFloat);
  const torch::Tensor pred = m.unet.ptr()->forward(out.z_t / col(sd), t.to(in.lq.device()), in.lq).to(torch::kFloat);
  out.mse = (z0 - pred).pow(2).flatten(1).mean(1);
  if (lpips) {
    const torch::Tensor x = m.vq.ptr()->decode((pred / c.scale_factor).to(m.dtype)).to(torch::kFloat).clamp(-1, 1);
    out.lpips = lpips->forward(x, in.gt.to(torch::kFloat)).view({-1});
  }
  return out;
}

ResshiftStage::ResshiftStage(const ResshiftSettings& s, const StageEnv& env) : s_(s), env_(env) {
  if (env_.threads > 0) torch::set_num_threads(env_.threads);
  require_folder(s_.model, "resshift.model takes a rass-samsr folder (scripts/convert_samsr.py -o DIR)");
  s_.data.seed = env_.seed;
  data_ = std::make_unique<SinsrData>(s_.data);
  if (s_.data.check_data) data_->check();
  model::SamsrModelOptions o;
  o.dir = s_.model;
  o.device = env_.device.str();
  o.dtype = "fp32";  // the trained network's weights are fp32 masters (loop.amp casts the compute)
  if (env_.dtype != torch::kFloat && env_.rank == 0 && !env_.quiet)
    std::fprintf(stderr, "%s: resshift: the network and its autoencoder train in float32 (loop.amp for bf16 compute); "
                         "loop.dtype is not used\n", env_.prog.c_str());
  o.noise = "gaussian";
  o.steps = 1;
  // The same seed in every process, so every rank starts from the same draw.
  if (s_.init == "random") o.init_seed = stream_seed(env_.seed, "resshift", "init");
  if (s_.init == "random" && env_.rank == 0 && !env_.quiet && file_exists(s_.model + "/unet.safetensors"))
    std::fprintf(stderr, "%s: resshift: resshift.init random: %s/unet.safetensors is not used; the network starts "
                         "from ResShift's initialisation\n", env_.prog.c_str(), s_.model.c_str());
  model_ = std::make_unique<model::SamsrModel>(o);
  check_crop_multiple("resshift", s_.data.crop, model_->size_multiple(), "the network's");
  for (auto& p : model_->vq->parameters()) p.set_requires_grad(false);
  model_->unet->train();
  for (auto& p : model_->unet->parameters()) p.set_requires_grad(true);
  if (s_.lpips_weight == 0 && !s_.lpips_weights.empty() && env_.rank == 0)
    std::fprintf(stderr, "%s: warning: resshift.lpips_weights is set but resshift.lpips_weight is 0: LPIPS is off\n",
                 env_.prog.c_str());
  if (s_.lpips_weight > 0) {
    const nn::LpipsTrunk vgg = nn::LpipsTrunk::vgg;
    lpips_ = model::load_lpips(s_.lpips_weights, env_.device, &vgg);
    for (auto& p : lpips_->parameters()) p.set_requires_grad(false);
  }
  order_ = std::make_unique<DataOrder>(data_->size(), env_.seed);
  model::FolderWriter::check_tree(s_.model);
  if (env_.rank == 0 && !env_.quiet)
    std::fprintf(stderr, "%s: resshift: %zu %s, crop %lld, %lld steps, LPIPS %s\n", env_.prog.c_str(), data_->size(),
                 data_->paired() ? "LQ/HQ pairs" : "images", (long long)s_.data.crop, (long long)model_->config.steps,
                 lpips_ ? "on" : "off");
}

std::vector<ParamGroup> ResshiftStage::param_groups() {
  ParamGroup g{"unet", {}, 1.0, -1};
  for (const auto& p : model_->unet->named_parameters(true)) g.params.emplace_back("unet." + p.key(), p.value());
  return {g};
}

StepLoss ResshiftStage::compute_loss(const StepContext& ctx) {
  const torch::Device dev = model_->device;
  const SinsrBatch batch = load_sinsr_batch(*data_, *order_, ctx, dev);
  std::vector<torch::Tensor> noise;
  std::vector<int64_t> ts;
  const int64_t T = model_->config.steps;
  for (const SinsrSample& smp : batch.samples) {
    // Keyed by the sample's draw (stage.hpp's contract), not the process.
    Rng trng(env_.seed, smp.draw, "timestep");
    ts.push_back(int64_t(trng.below(uint64_t(T))));
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(stream_seed(env_.seed, smp.draw, "noise"));
    noise.push_back(at::randn({1, 3, smp.lq.size(1), smp.lq.size(2)}, gen, torch::TensorOptions().dtype(torch::kFloat)));
  }
  ResshiftInputs in;
  in.gt = batch.gt;
  in.lq = batch.lq;
  in.t = torch::tensor(ts, torch::kLong).to(dev);
  in.noise = torch::cat(noise).to(dev);
  {
    torch::NoGradGuard ng;
    const nn::AutocastPause frozen;
    in.z_y = model_->encode_lq(in.lq);
  }
  const ResshiftTerms t = resshift_terms(*model_, in, lpips_ ? lpips_.get() : nullptr);
  StepLoss out;
  torch::Tensor loss = t.mse;
  out.terms.emplace_back("mse", t.mse.mean().item<double>());
  if (t.lpips.defined()) {
    // TrainerDifIRLPIPS: a NaN LPIPS (a degenerate decoded image) leaves the
    // batch's loss to the mse alone, logged as 0.
    if (torch::isnan(t.lpips).any().item<bool>()) {
      out.terms.emplace_back("lpips", 0.0);
    } else {
      loss = loss + s_.lpips_weight * t.lpips;
      out.terms.emplace_back("lpips", t.lpips.mean().item<double>());
    }
  }
  out.loss = loss.mean();
  out.images = ctx.local_batch;
  return out;
}

void ResshiftStage::export_model(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec) && fs::equivalent(dir, s_.model, ec))
    throw_usage("the export folder " + dir + " is the start folder (resshift.model): choose another");
  ojson cfg = read_json_file(s_.model + "/samsr.json");
  cfg["method"] = "resshift";
  // A start folder's sam/ (SAMSR's noise) goes along: sinsr noise sam takes the export as its teacher.
  const std::string sam = file_exists(s_.model + "/sam/sam.json") ? s_.model + "/sam" : "";
  // From random weights the start folder may have no network: the export
  // writes the trained tensors alone.
  const std::string start = s_.init == "random" ? "" : s_.model + "/unet.safetensors";
  export_samsr_folder(dir, s_.model, sam, start, cpu_float_parameters(*model_->unet), cfg,
                      model_->config.cap_etas_start, "resshift");
}

StageInfo resshift_stage_info() {
  StageInfo i;
  i.name = "resshift";
  i.summary = "ResShift: the x4 network on its whole chain (random step, x_0 loss; sinsr's teacher), from a rass-samsr "
              "folder or from ResShift's random initialisation";
  i.defaults = resshift_defaults;
  i.loop_defaults = resshift_family_loop_defaults;
  i.make = [](const ojson& cfg, const StageEnv& env) -> std::unique_ptr<Stage> {
    return std::make_unique<ResshiftStage>(parse_resshift_settings(cfg), env);
  };
  return i;
}

}  // namespace rass::train
