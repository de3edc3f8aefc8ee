#include "rass/model/iqa_musiq.hpp"

#include <algorithm>
#include <cmath>
#include <memory>

#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/metrics/deep_iqa.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/iqa_common.hpp"
#include "rass/nn/group_norm.hpp"

namespace rass::model {

namespace {

constexpr int64_t kPatch = 32, kGrid = 10;
const char* const kMusiqConverter = "scripts/convert_iqa_musiq.py";

// Row-major patches of one scale, zero-padded "SAME" (half before): [B, n, 3, 32, 32].
torch::Tensor cut_patches(const torch::Tensor& x, int64_t& rows, int64_t& cols) {
  const int64_t h = x.size(2), w = x.size(3);
  rows = (h + kPatch - 1) / kPatch;
  cols = (w + kPatch - 1) / kPatch;
  const int64_t ph = rows * kPatch - h, pw = cols * kPatch - w;
  const torch::Tensor p =
      torch::nn::functional::pad(x, torch::nn::functional::PadFuncOptions({pw / 2, pw - pw / 2, ph / 2, ph - ph / 2}));
  // [B, 3, rows, cols, 32, 32] -> [B, rows, cols, 3, 32, 32]
  return p.unfold(2, kPatch, kPatch).unfold(3, kPatch, kPatch).permute({0, 2, 3, 1, 4, 5}).reshape(
      {x.size(0), rows * cols, 3, kPatch, kPatch});
}

// The hash-grid index of each patch: TF's legacy nearest-neighbour resize of
// 0..grid-1 to the patch counts, i.e. floor(i * grid / count) (exact in integers).
std::vector<int64_t> hashed_positions(int64_t rows, int64_t cols) {
  std::vector<int64_t> out;
  out.reserve(size_t(rows * cols));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) out.push_back(i * kGrid / rows * kGrid + j * kGrid / cols);
  return out;
}

}  // namespace

std::pair<int64_t, int64_t> musiq_scaled_size(int64_t h, int64_t w, int64_t longer_side) {
  const double ratio = double(longer_side) / double(std::max(h, w));
  // nearbyint rounds half to even in the default mode, as Python's round().
  return {int64_t(std::nearbyint(double(h) * ratio)), int64_t(std::nearbyint(double(w) * ratio))};
}

MusiqTokens musiq_tokens(const torch::Tensor& images, const std::string& what,
                         const std::vector<int64_t>& longer_sides) {
  const int64_t h = images.size(2), w = images.size(3);
  const torch::Tensor x = images * 2 - 1;
  std::vector<int64_t> sides = longer_sides;
  std::sort(sides.begin(), sides.end());
  std::vector<torch::Tensor> patches;
  std::vector<int64_t> spatial, scale;
  auto add = [&](const torch::Tensor& img, int64_t id) {
    int64_t rows = 0, cols = 0;
    patches.push_back(cut_patches(img, rows, cols));
    const std::vector<int64_t> pos = hashed_positions(rows, cols);
    spatial.insert(spatial.end(), pos.begin(), pos.end());
    scale.insert(scale.end(), pos.size(), id);
  };
  for (size_t s = 0; s < sides.size(); ++s) {
    const auto [rh, rw] = musiq_scaled_size(h, w, sides[s]);
    if (rh < 1 || rw < 1)
      throw_bad_input(what, "a " + std::to_string(w) + "x" + std::to_string(h) + " image is too elongated for MUSIQ (its " +
                                std::to_string(sides[s]) + "-pixel scale would be " + std::to_string(rw) + "x" +
                                std::to_string(rh) + ")");
    const torch::Tensor r = torch::nn::functional::interpolate(
        x, torch::nn::functional::InterpolateFuncOptions()
               .size(std::vector<int64_t>{rh, rw})
               .mode(torch::kBicubic)
               .align_corners(false));
    add(r, int64_t(s));
  }
  add(x, int64_t(sides.size()));
  return {torch::cat(patches, 1), torch::tensor(spatial, torch::kLong), torch::tensor(scale, torch::kLong)};
}

nn::MusiqNet load_musiq(const std::string& path, const torch::Device& device) {
  auto file = open_iqa_weights(path);
  auto shape = [&](const std::string& name) -> const std::vector<int64_t>& {
    const TensorView* t = file->find(name);
    if (!t)
      throw_bad_input(path, "no tensor '" + name + "': not a MUSIQ weight file (make one with " + kMusiqConverter + ")");
    return t->shape;
  };
  nn::MusiqConfig c;
  const std::vector<int64_t>& emb = shape("embedding.weight");
  if (emb.size() != 2 || emb[1] != 8 * 8 * 256)
    throw_bad_input(path, "embedding.weight should be [hidden, 16384] (32x32 patches through the ResNet stem)");
  c.hidden_size = emb[0];
  c.num_layers = 0;
  while (file->find("transformer_encoder.transformer.encoderblock_" + std::to_string(c.num_layers) + ".norm1.weight"))
    ++c.num_layers;
  if (c.num_layers == 0) throw_bad_input(path, "no encoder blocks (transformer_encoder.transformer.encoderblock_0...)");
  c.mlp_dim = shape("transformer_encoder.transformer.encoderblock_0.mlp.fc1.weight").at(0);
  const std::vector<int64_t>& pos = shape("transformer_encoder.posembed_input.position_emb");
  if (pos.size() != 3 || pos[1] != kGrid * kGrid)
    throw_bad_input(path, "position_emb should be [1, 100, hidden] (the 10x10 hash grid)");
  if (shape("transformer_encoder.scaleembed_input.scale_emb").at(0) != 3)
    throw_bad_input(path, "scale_emb should have 3 scales (224, 384 and the native resolution)");
  if (file->find("head.weight")) {
    c.num_classes = shape("head.weight").at(0);
    if (c.num_classes != 1) throw_bad_input(path, "head.weight has several outputs; a distribution head is head.0");
  } else {
    c.num_classes = shape("head.0.weight").at(0);
  }
  c.num_heads = 6;
  const auto& meta = file->metadata();
  if (auto it = meta.find("num_heads"); it != meta.end()) {
    // The whole value must be digits: stoll alone reads "2x" as 2.
    const std::string& v = it->second;
    c.num_heads = !v.empty() && v.size() < 10 && v.find_first_not_of("0123456789") == std::string::npos
                      ? std::stoll(v)
                      : 0;
  }
  if (c.num_heads < 1 || c.hidden_size % c.num_heads != 0)
    throw_bad_input(path, "metadata num_heads must be a positive divisor of the hidden size " +
                              std::to_string(c.hidden_size));
  nn::MusiqNet net(c);
  load_state_dict(*net, *file);
  check_finite_weights(*net, *file);
  net->to(device);
  net->eval();
  return net;
}

namespace {

class MusiqScorer : public metrics::DeepIqaScorer {
 public:
  MusiqScorer(nn::MusiqNet net, torch::Device device) : net_(net.ptr()), device_(device) {}

  std::vector<metrics::IqaValue> score(const std::vector<const Image*>& pred, const std::vector<const Image*>&,
                                       const std::vector<std::string>& keys) const override {
    torch::InferenceMode guard;
    std::vector<metrics::IqaValue> out;
    if (pred.empty()) return out;
    const MusiqTokens t = musiq_tokens(images_to_tensor(pred).to(device_), keys.empty() ? "image" : keys[0]);
    const torch::Tensor spatial = t.spatial.to(device_), scale = t.scale.to(device_);
    // Images at a time so that a forward holds about 2048 tokens: the
    // attention of a large image is already quadratic in its own tokens.
    const int64_t n = t.patches.size(0), per = std::max<int64_t>(1, 2048 / t.patches.size(1));
    for (int64_t s = 0; s < n; s += per) {
      const torch::Tensor v =
          net_->score(t.patches.slice(0, s, std::min(n, s + per)), spatial, scale).to(torch::kDouble).cpu();
      for (int64_t i = 0; i < v.size(0); ++i) out.push_back({v[i].item<double>(), ""});
    }
    return out;
  }

 private:
  std::shared_ptr<nn::MusiqNetImpl> net_;
  torch::Device device_;
};

struct Variant {
  const char* name;
  const char* file;
  int64_t classes;
  const char* convention;
};

// The released heads (pyiqa's musiq, musiq-ava, musiq-spaq, musiq-paq2piq).
constexpr Variant kVariants[] = {
    {"musiq", "musiq_koniq.safetensors", 1, "pyiqa musiq (KonIQ-10k head, pyiqa's port of the official weights)"},
    {"musiq-ava", "musiq_ava.safetensors", 10, "pyiqa musiq-ava (AVA head: mean of the 10-bin distribution)"},
    {"musiq-spaq", "musiq_spaq.safetensors", 1, "pyiqa musiq-spaq (SPAQ head)"},
    {"musiq-paq2piq", "musiq_paq2piq.safetensors", 1, "pyiqa musiq-paq2piq (PaQ-2-PiQ head)"},
};

template <int V>
std::unique_ptr<metrics::DeepIqaScorer> load_variant(const metrics::DeepIqaOptions& options) {
  const Variant& v = kVariants[V];
  // A bad RASS_FUSED_NORM is a usage error here, once, as rass-restore's and
  // rass-segment's: read at the first CUDA GroupNorm it failed every item.
  nn::fused_group_norm_on();
  const torch::Device device = iqa_device(options);
  const std::string path = iqa_weights_file(options, v.file, kMusiqConverter);
  nn::MusiqNet net = load_musiq(path, device);
  if (net->config.num_classes != v.classes)
    throw_bad_input(path, std::string("has a ") + std::to_string(net->config.num_classes) + "-output head; " + v.name +
                              " expects " + std::to_string(v.classes) + " (a file of another MUSIQ variant?)");
  return std::make_unique<MusiqScorer>(net, device);
}

template <int V>
void register_variant() {
  const Variant& v = kVariants[V];
  metrics::DeepIqaMetric m;
  m.name = v.name;
  m.full_reference = false;
  m.convention = v.convention;
  m.weights_file = v.file;
  m.lower_is_better = false;
  m.load = &load_variant<V>;
  metrics::register_deep_iqa_metric(std::move(m));
}

}  // namespace

void register_musiq_metric() {
  register_variant<0>();
  register_variant<1>();
  register_variant<2>();
  register_variant<3>();
}

}  // namespace rass::model
