#include "rass/model/iqa_maniqa.hpp"

#include <cfloat>
#include <cmath>
#include <set>

#include <torch/nn/functional/upsampling.h>
#include <torch/torch.h>

#include "rass/core/decimal.hpp"
#include "rass/core/error.hpp"
#include "rass/core/rng.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/iqa_common.hpp"

namespace F = torch::nn::functional;

namespace rass::model {

namespace {

constexpr const char* kManiqaConverter = "scripts/convert_iqa_maniqa.py";

const TensorView& need(const SafeTensorsFile& f, const std::string& name, size_t rank) {
  const TensorView* v = f.find(name);
  if (!v) throw_bad_input(f.path(), "has no tensor " + name + " (not made by " + std::string(kManiqaConverter) + "?)");
  if (v->shape.size() != rank) throw_bad_input(f.path(), name + " has rank " + std::to_string(v->shape.size()));
  return *v;
}

// Number of blocks `prefix`<i>. (numbered 0..n-1).
int64_t count_numbered_blocks(const SafeTensorsFile& f, const std::string& prefix) {
  std::set<int64_t> seen;
  for (const TensorView& t : f.tensors()) {
    if (t.name.compare(0, prefix.size(), prefix) != 0) continue;
    try {
      seen.insert(std::stoll(t.name.substr(prefix.size(), t.name.find('.', prefix.size()) - prefix.size())));
    } catch (const std::exception&) {
      throw_bad_input(f.path(), "unexpected tensor " + t.name);
    }
  }
  if (seen.empty() || *seen.rbegin() != int64_t(seen.size()) - 1)
    throw_bad_input(f.path(), "the blocks " + prefix + "* are not numbered 0..n-1");
  return int64_t(seen.size());
}

std::string meta(const SafeTensorsFile& f, const std::string& key) {
  auto it = f.metadata().find(key);
  if (it == f.metadata().end())
    throw_bad_input(f.path(), "has no metadata '" + key + "' (convert it with " + std::string(kManiqaConverter) + ")");
  return it->second;
}

double meta_number(const SafeTensorsFile& f, const std::string& key) {
  const std::string s = meta(f, key);
  double v = 0;
  // Within float32's normal range: 1e39 became infinity there and every
  // score NaN (exit 0).
  if (parse_decimal(s, &v) && v >= double(FLT_MIN) && v <= double(FLT_MAX)) return v;
  throw_bad_input(f.path(), "metadata " + key + " = '" + s + "' is not a positive number in float32's range");
}

torch::Tensor scores_weighted(const nn::ManiqaPatches& p) { return p.score * p.weight; }

}  // namespace

nn::Maniqa load_maniqa(const std::string& weights, torch::Device device) {
  const auto file = open_iqa_weights(weights);
  const SafeTensorsFile& f = *file;
  nn::ManiqaConfig c;
  c.vit_dim = need(f, "vit.cls_token", 3).shape[2];
  c.patch_size = need(f, "vit.patch_embed.proj.weight", 4).shape[2];
  const int64_t tokens = need(f, "vit.pos_embed", 3).shape[1] - 1;
  const auto grid = int64_t(std::lround(std::sqrt(double(tokens))));
  if (grid * grid != tokens) throw_bad_input(f.path(), "vit.pos_embed is not a square grid plus a class token");
  c.img_size = grid * c.patch_size;
  c.vit_mlp = need(f, "vit.blocks.0.mlp.fc1.weight", 2).shape[0];
  {
    const std::string h = meta(f, "vit_heads");
    double v = 0;  // a whole number ("1.5" was cast to 1, 1e30 past int64)
    if (!parse_decimal(h, &v) || v < 1 || v > 4096 || v != std::floor(v))
      throw_bad_input(f.path(), "metadata vit_heads = '" + h + "' is not a whole number in 1..4096");
    c.vit_heads = int64_t(v);
  }
  if (count_numbered_blocks(f, "vit.blocks.") != 10)
    throw_bad_input(f.path(), "expected ViT blocks 0..9 (the converter keeps those the score uses)");
  c.embed_dim = need(f, "conv1.weight", 4).shape[0];
  c.num_tab = count_numbered_blocks(f, "tablock1.");
  const int64_t layers = count_numbered_blocks(f, "swintransformer1.layers.");
  c.depths.clear();
  c.num_heads.clear();
  for (int64_t i = 0; i < layers; ++i) {
    const std::string p = "swintransformer1.layers." + std::to_string(i) + ".blocks.";
    c.depths.push_back(count_numbered_blocks(f, p));
    const TensorView& table = need(f, p + "0.attn.relative_position_bias_table", 2);
    c.num_heads.push_back(table.shape[1]);
    // The table has (2w - 1)^2 rows for window w (the grid's side when smaller).
    const auto side = int64_t(std::lround(std::sqrt(double(table.shape[0]))));
    c.window_size = (side + 1) / 2;
  }
  c.dim_mlp = need(f, "swintransformer1.layers.0.blocks.0.mlp.fc1.weight", 2).shape[0];
  c.scale = meta_number(f, "scale");
  // The network's own check says what is inconsistent but not where.
  if (c.vit_heads < 1 || c.vit_dim % c.vit_heads != 0)
    throw_bad_input(f.path(), "metadata vit_heads = " + std::to_string(c.vit_heads) + " does not divide the ViT width " +
                                  std::to_string(c.vit_dim));
  nn::Maniqa net(nullptr);
  try {
    net = nn::Maniqa(c);
  } catch (const Error& e) {
    if (e.code() != ExitCode::bad_input) throw;
    throw_bad_input(f.path(), e.what());
  }
  load_state_dict(*net, f, true);
  check_finite_weights(*net, f);
  net->eval();
  net->to(device);
  return net;
}

torch::Tensor maniqa_score_pyiqa(nn::ManiqaImpl& net, const torch::Tensor& images, int crops) {
  torch::InferenceMode guard;
  const int64_t s = net.config.img_size;
  torch::Tensor x = (images.to(torch::kFloat) - 0.5) / 0.5;
  int64_t h = x.size(2), w = x.size(3);
  if (std::min(h, w) <= s) {
    // F.interpolate(x, scale_factor=f, mode='bilinear'): output floor(side * f),
    // sampled with the given factor (not the size ratio).
    const double factor = double(s + 1) / double(std::min(h, w));
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .scale_factor(std::vector<double>{factor, factor})
                              // false is the default; saying so keeps LibTorch's
                              // "default behavior changed in 1.6.0" warning off stderr.
                              .recompute_scale_factor(false)
                              .mode(torch::kBilinear)
                              .align_corners(false));
    h = x.size(2), w = x.size(3);
  }
  const auto root = int64_t(std::sqrt(double(crops)));
  const auto side = int64_t(std::ceil(std::sqrt(double(crops))));
  const int64_t step_h = (h - s) / root, step_w = (w - s) / root;
  std::vector<torch::Tensor> out;
  for (int64_t n = 0; n < x.size(0); ++n) {
    std::vector<torch::Tensor> tiles;
    for (int64_t i = 0; i < side && int64_t(tiles.size()) < crops; ++i)
      for (int64_t j = 0; j < side && int64_t(tiles.size()) < crops; ++j)
        tiles.push_back(x[n].slice(1, i * step_h, i * step_h + s).slice(2, j * step_w, j * step_w + s));
    const nn::ManiqaPatches p = net.forward(torch::stack(tiles));
    // pyiqa pools the patches of all crops of an image into one weighted mean.
    out.push_back(scores_weighted(p).sum() / (p.weight.sum() + 1e-8));
  }
  return torch::stack(out).to(torch::kCPU);
}

std::vector<std::pair<int64_t, int64_t>> maniqa_official_crops(int64_t h, int64_t w, int64_t size, uint64_t seed,
                                                               const std::string& key, int crops) {
  Rng rng(seed, key, "maniqa-crops");
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int k = 0; k < crops; ++k) {
    const int64_t top = h > size ? int64_t(rng.below(uint64_t(h - size))) : 0;
    const int64_t left = w > size ? int64_t(rng.below(uint64_t(w - size))) : 0;
    out.emplace_back(top, left);
  }
  return out;
}

double maniqa_score_official(nn::ManiqaImpl& net, const torch::Tensor& image,
                             const std::vector<std::pair<int64_t, int64_t>>& crops) {
  torch::InferenceMode guard;
  const int64_t s = net.config.img_size;
  if (image.size(2) < s || image.size(3) < s)
    throw Error(ExitCode::bad_input, "image of " + std::to_string(image.size(3)) + "x" + std::to_string(image.size(2)) +
                                         " is too small for maniqa@official (crops of " + std::to_string(s) +
                                         ", never resized; pyiqa's maniqa resizes)");
  const torch::Tensor x = (image[0].to(torch::kFloat) - 0.5) / 0.5;
  std::vector<torch::Tensor> tiles;
  for (const auto& [top, left] : crops) tiles.push_back(x.slice(1, top, top + s).slice(2, left, left + s));
  return net.crop_scores(torch::stack(tiles)).mean().item<double>();
}

namespace {

class ManiqaScorer : public metrics::DeepIqaScorer {
 public:
  ManiqaScorer(nn::Maniqa net, torch::Device device, bool official, uint64_t seed)
      : net_(net.ptr()), device_(device), official_(official), seed_(seed) {}
  std::vector<metrics::IqaValue> score(const std::vector<const Image*>& pred, const std::vector<const Image*>&,
                                       const std::vector<std::string>& keys) const override {
    const torch::Tensor x = images_to_tensor(pred).to(device_);
    std::vector<metrics::IqaValue> out(pred.size());
    if (!official_) {
      const torch::Tensor s = maniqa_score_pyiqa(*net_, x);
      for (size_t i = 0; i < out.size(); ++i) out[i].value = double(s[int64_t(i)].item<float>());
      return out;
    }
    for (size_t i = 0; i < out.size(); ++i) {
      const auto crops = maniqa_official_crops(x.size(2), x.size(3), net_->config.img_size, seed_,
                                               i < keys.size() ? keys[i] : std::to_string(i));
      out[i].value = maniqa_score_official(*net_, x.slice(0, int64_t(i), int64_t(i) + 1), crops);
    }
    return out;
  }

 private:
  std::shared_ptr<nn::ManiqaImpl> net_;  // forward only: shared by the worker threads
  torch::Device device_;
  bool official_;
  uint64_t seed_;
};

std::unique_ptr<metrics::DeepIqaScorer> load_with(const metrics::DeepIqaOptions& o, const char* file, bool official) {
  const torch::Device device = iqa_device(o);
  return std::make_unique<ManiqaScorer>(load_maniqa(iqa_weights_file(o, file, kManiqaConverter), device), device, official,
                                        o.seed);
}

}  // namespace

void register_maniqa_metric() {
  metrics::DeepIqaMetric m;
  m.full_reference = false;
  m.lower_is_better = false;
  m.name = "maniqa";
  m.weights_file = "maniqa_koniq.safetensors";
  m.convention = "pyiqa (KonIQ-10k weights; 20 uniform-grid 224 crops, patches pooled)";
  m.load = [](const metrics::DeepIqaOptions& o) { return load_with(o, "maniqa_koniq.safetensors", false); };
  metrics::register_deep_iqa_metric(m);
  m.name = "maniqa-kadid";
  m.weights_file = "maniqa_kadid.safetensors";
  m.convention = "pyiqa (KADID-10k weights; 20 uniform-grid 224 crops, patches pooled)";
  m.load = [](const metrics::DeepIqaOptions& o) { return load_with(o, "maniqa_kadid.safetensors", false); };
  metrics::register_deep_iqa_metric(m);
  m.name = "maniqa-pipal";
  m.weights_file = "maniqa_pipal.safetensors";
  m.convention = "pyiqa (PIPAL weights; 20 uniform-grid 224 crops, patches pooled)";
  m.load = [](const metrics::DeepIqaOptions& o) { return load_with(o, "maniqa_pipal.safetensors", false); };
  metrics::register_deep_iqa_metric(m);
  m.name = "maniqa@official";
  m.weights_file = "maniqa_koniq.safetensors";
  m.convention = "official predict_one_image (KonIQ-10k weights; 20 random 224 crops keyed by item and --seed, averaged)";
  m.load = [](const metrics::DeepIqaOptions& o) { return load_with(o, "maniqa_koniq.safetensors", true); };
  metrics::register_deep_iqa_metric(m);
}

}  // namespace rass::model
