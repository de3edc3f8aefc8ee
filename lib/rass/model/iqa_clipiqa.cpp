#include "rass/model/iqa_clipiqa.hpp"

#include <set>

#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/iqa_common.hpp"
#include "rass/nn/clip_text.hpp"
#include "rass/nn/linear.hpp"
#include "rass/text/clip_tokenizer.hpp"

namespace rass::model {

namespace {

constexpr const char* kWeights = "clipiqa_rn50.safetensors";
constexpr const char* kTokenizer = "clipiqa_rn50_tokenizer";
constexpr const char* kClipIqaConverter = "scripts/convert_iqa_clipiqa.py";

// OpenAI CLIP's preprocessing constants (clip/clip.py _transform).
const float kMean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
const float kStd[3] = {0.26862954f, 0.26130258f, 0.27577711f};

const TensorView& need(const SafeTensorsFile& f, const std::string& name) {
  const TensorView* v = f.find(name);
  if (!v) throw_bad_input(f.path(), "has no tensor " + name + " (not made by " + std::string(kClipIqaConverter) + "?)");
  return *v;
}

int64_t dim(const SafeTensorsFile& f, const std::string& name, size_t rank, size_t i) {
  const TensorView& v = need(f, name);
  if (v.shape.size() != rank) throw_bad_input(f.path(), name + " has rank " + std::to_string(v.shape.size()));
  return v.shape[i];
}

// Number of blocks `prefix`<i>. for consecutive i from 0.
int64_t count_blocks(const SafeTensorsFile& f, const std::string& prefix) {
  std::set<int64_t> seen;
  for (const TensorView& t : f.tensors()) {
    if (t.name.compare(0, prefix.size(), prefix) != 0) continue;
    const size_t dot = t.name.find('.', prefix.size());
    try {
      seen.insert(std::stoll(t.name.substr(prefix.size(), dot - prefix.size())));
    } catch (const std::exception&) {
      throw_bad_input(f.path(), "unexpected tensor " + t.name);
    }
  }
  if (seen.empty() || *seen.rbegin() != int64_t(seen.size()) - 1)
    throw_bad_input(f.path(), "the blocks " + prefix + "* are not numbered 0..n-1");
  return int64_t(seen.size());
}

// An integer from the converter's metadata, or `fallback` (OpenAI's rule).
int64_t meta_int(const SafeTensorsFile& f, const std::string& key, int64_t fallback) {
  auto it = f.metadata().find(key);
  if (it == f.metadata().end()) return fallback;
  try {
    size_t used = 0;
    const long long v = std::stoll(it->second, &used);
    if (used == it->second.size() && v > 0) return v;
  } catch (const std::exception&) {
  }
  throw_bad_input(f.path(), "metadata " + key + " = '" + it->second + "' is not a positive integer");
}

}  // namespace

// The file's parameters as one module tree: visual.*, text_model.*,
// text_projection.weight, logit_scale (the converter's names). Outside the
// anonymous namespace: ClipIqa::Impl (declared in the header) holds one.
struct ClipIqaNetImpl : torch::nn::Module {
  nn::ClipResNet visual{nullptr};
  nn::ClipTextModel text{nullptr};
  rass::nn::Linear text_projection{nullptr};
  torch::Tensor logit_scale;
  ClipIqaNetImpl(const nn::ClipResNetConfig& vc, const nn::ClipTextConfig& tc, int64_t embed) {
    visual = register_module("visual", nn::ClipResNet(vc));
    text = nn::ClipTextModel(tc);
    register_module("text_model", text->text_model);
    text_projection = register_module(
        "text_projection", rass::nn::Linear(torch::nn::LinearOptions(tc.hidden_size, embed).bias(false)));
    logit_scale = register_parameter("logit_scale", torch::zeros({}));
  }
};
TORCH_MODULE(ClipIqaNet);

ClipIqaPrompts clipiqa_pyiqa_prompts() {
  return {{"Good image", "bad image", "Sharp image", "blurry image", "sharp edges", "blurry edges",
           "High resolution image", "low resolution image", "Noise-free image", "noisy image"},
          nn::ClipPositional::none};
}

ClipIqaPrompts clipiqa_paper_prompts() { return {{"Good photo.", "Bad photo."}, nn::ClipPositional::interpolate}; }

struct ClipIqa::Impl {
  ClipIqaNet net{nullptr};
  nn::ClipPositional positional;
  torch::Device device{torch::kCPU};
  torch::Tensor ids;            // [P, context], CPU
  torch::Tensor text_features;  // [P, E], unit rows, on device
  torch::Tensor mean, std;      // [1,3,1,1] on device
  double scale = 1;             // exp(logit_scale)
};

ClipIqa::ClipIqa(const std::string& weights, const std::string& tokenizer_dir, const ClipIqaPrompts& prompts,
                 torch::Device device)
    : impl_(std::make_shared<Impl>()) {
  if (prompts.pairs.empty() || prompts.pairs.size() % 2) throw_runtime("CLIPIQA: prompts must come in pairs");
  const auto file = open_iqa_weights(weights);
  const SafeTensorsFile& f = *file;

  nn::ClipResNetConfig vc;
  for (int s = 0; s < 4; ++s) vc.layers[s] = count_blocks(f, "visual.layer" + std::to_string(s + 1) + ".");
  vc.width = dim(f, "visual.layer1.0.conv1.weight", 4, 0);
  vc.heads = meta_int(f, "vision_heads", vc.width * 32 / 64);
  vc.output_dim = dim(f, "visual.attnpool.c_proj.weight", 2, 0);
  vc.positions = dim(f, "visual.attnpool.positional_embedding", 2, 0);

  nn::ClipTextConfig tc;
  tc.vocab_size = dim(f, "text_model.embeddings.token_embedding.weight", 2, 0);
  tc.hidden_size = dim(f, "text_model.embeddings.token_embedding.weight", 2, 1);
  tc.max_position_embeddings = dim(f, "text_model.embeddings.position_embedding.weight", 2, 0);
  tc.intermediate_size = dim(f, "text_model.encoder.layers.0.mlp.fc1.weight", 2, 0);
  tc.num_hidden_layers = count_blocks(f, "text_model.encoder.layers.");
  tc.num_attention_heads = meta_int(f, "text_heads", tc.hidden_size / 64);
  // The defaults (OpenAI's build_model) are 0 for a text width under 64; a
  // head count of 0 or one that does not divide the width would divide by
  // zero or fail deep in the network without naming the file.
  if (vc.heads < 1 || vc.width * 32 % vc.heads != 0)
    throw_bad_input(weights, "metadata vision_heads = " + std::to_string(vc.heads) +
                                 " does not divide the attention pool width " + std::to_string(vc.width * 32) +
                                 " (write it with " + kClipIqaConverter + ")");
  if (tc.num_attention_heads < 1 || tc.hidden_size % tc.num_attention_heads != 0)
    throw_bad_input(weights, "metadata text_heads = " + std::to_string(tc.num_attention_heads) +
                                 " does not divide the text width " + std::to_string(tc.hidden_size) +
                                 " (write it with " + kClipIqaConverter + " --text-heads N)");
  auto act = f.metadata().find("text_act");
  tc.hidden_act = act == f.metadata().end() ? "quick_gelu" : act->second;
  if (tc.hidden_act != "gelu" && tc.hidden_act != "quick_gelu")
    throw_bad_input(weights, "metadata text_act = '" + tc.hidden_act + "' is not an activation CLIP's text encoder "
                             "has (gelu, quick_gelu)");
  const int64_t embed = dim(f, "text_projection.weight", 2, 0);

  const text::ClipTokenizer tok = text::ClipTokenizer::load(tokenizer_dir);
  tc.eos_token_id = tok.eos();
  if (tok.vocab_size() > tc.vocab_size)
    throw_bad_input(tokenizer_dir, "has " + std::to_string(tok.vocab_size()) + " tokens, the text encoder of " +
                                       weights + " " + std::to_string(tc.vocab_size));

  Impl& m = *impl_;
  m.net = ClipIqaNet(vc, tc, embed);
  load_state_dict(*m.net, f, true);
  check_finite_weights(*m.net, f);
  m.net->eval();
  m.net->to(device);
  m.positional = prompts.positional;
  m.device = device;
  m.ids = torch::empty({int64_t(prompts.pairs.size()), tc.max_position_embeddings}, torch::kLong);
  for (size_t p = 0; p < prompts.pairs.size(); ++p) {
    const std::vector<int> ids = tok.encode_padded(prompts.pairs[p], int(tc.max_position_embeddings));
    for (size_t i = 0; i < ids.size(); ++i) m.ids[int64_t(p)][int64_t(i)] = int64_t(ids[i]);
  }
  m.mean = torch::from_blob(const_cast<float*>(kMean), {1, 3, 1, 1}, torch::kFloat).to(device);
  m.std = torch::from_blob(const_cast<float*>(kStd), {1, 3, 1, 1}, torch::kFloat).to(device);
  torch::InferenceMode guard;
  // OpenAI's encode_text: the final-norm state at the end-of-text token, projected.
  const torch::Tensor pooled = m.net->text->forward(m.ids.to(device)).pooled;
  const torch::Tensor t = m.net->text_projection(pooled);
  m.text_features = t / t.norm(2, -1, true);
  m.scale = m.net->logit_scale.exp().item<double>();
}

ClipIqa::~ClipIqa() = default;

const torch::Tensor& ClipIqa::prompt_ids() const { return impl_->ids; }

torch::Tensor ClipIqa::image_features(const torch::Tensor& images) const {
  torch::InferenceMode guard;
  Impl& m = *impl_;  // the modules are not changed: forward only
  const torch::Tensor x = (images.to(m.device, torch::kFloat) - m.mean) / m.std;
  return m.net->visual->forward(x, m.positional);
}

torch::Tensor ClipIqa::score(const torch::Tensor& images) const {
  torch::InferenceMode guard;
  Impl& m = *impl_;  // the modules are not changed: forward only
  torch::Tensor f = image_features(images);
  f = f / f.norm(2, -1, true);
  const torch::Tensor logits = m.scale * torch::matmul(f, m.text_features.t());  // [N, P]
  // Each (positive, negative) pair through a softmax; the positive's
  // probability averaged over the pairs.
  const torch::Tensor probs = logits.view({logits.size(0), -1, 2}).softmax(-1);
  return probs.select(2, 0).mean(1).to(torch::kCPU);
}

namespace {

class ClipIqaScorer : public metrics::DeepIqaScorer {
 public:
  explicit ClipIqaScorer(std::shared_ptr<ClipIqa> net) : net_(std::move(net)) {}
  std::vector<metrics::IqaValue> score(const std::vector<const Image*>& pred, const std::vector<const Image*>&,
                                       const std::vector<std::string>&) const override {
    const torch::Tensor s = net_->score(images_to_tensor(pred)).contiguous();
    std::vector<metrics::IqaValue> out(pred.size());
    for (size_t i = 0; i < out.size(); ++i) out[i].value = double(s[int64_t(i)].item<float>());
    return out;
  }

 private:
  std::shared_ptr<ClipIqa> net_;
};

std::unique_ptr<metrics::DeepIqaScorer> load_with(const metrics::DeepIqaOptions& options, const ClipIqaPrompts& p) {
  const torch::Device device = iqa_device(options);
  const std::string weights = iqa_weights_file(options, kWeights, kClipIqaConverter);
  const std::string tokenizer = iqa_weights_file(options, kTokenizer, kClipIqaConverter);
  return std::make_unique<ClipIqaScorer>(std::make_shared<ClipIqa>(weights, tokenizer, p, device));
}

}  // namespace

void register_clipiqa_metric() {
  metrics::DeepIqaMetric m;
  m.full_reference = false;
  m.lower_is_better = false;
  m.weights_file = kWeights;
  m.name = "clipiqa";
  m.convention = "pyiqa (5 antonym prompt pairs, no positional embedding, full resolution)";
  m.load = [](const metrics::DeepIqaOptions& o) { return load_with(o, clipiqa_pyiqa_prompts()); };
  metrics::register_deep_iqa_metric(m);
  m.name = "clipiqa@paper";
  m.convention = "CLIP-IQA paper prompts (Good photo./Bad photo.), positional embedding resized bicubically";
  m.load = [](const metrics::DeepIqaOptions& o) { return load_with(o, clipiqa_paper_prompts()); };
  metrics::register_deep_iqa_metric(m);
}

}  // namespace rass::model
