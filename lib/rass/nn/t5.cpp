#include "rass/nn/t5.hpp"

#include <cmath>
#include <limits>

#include <torch/nn/functional/activation.h>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/nn/linear.hpp"

namespace F = torch::nn::functional;

namespace rass::nn {

bool T5Config::gated() const {
  if (is_gated_act >= 0) return is_gated_act == 1;
  return feed_forward_proj.rfind("gated-", 0) == 0;
}

std::string T5Config::activation() const {
  if (!dense_act_fn.empty()) return dense_act_fn;
  // transformers' T5Config: "gated-gelu" means gelu_new (backwards compatibility with v1.1 checkpoints).
  if (feed_forward_proj == "gated-gelu") return "gelu_new";
  const size_t dash = feed_forward_proj.rfind('-');
  return dash == std::string::npos ? feed_forward_proj : feed_forward_proj.substr(dash + 1);
}

torch::Tensor t5_relative_position_bucket(int64_t query_length, int64_t key_length, int64_t num_buckets,
                                          int64_t max_distance) {
  const torch::Tensor ctx = torch::arange(query_length, torch::kLong).unsqueeze(1);
  const torch::Tensor mem = torch::arange(key_length, torch::kLong).unsqueeze(0);
  torch::Tensor rel = mem - ctx;  // memory - query
  // Bidirectional: half of the buckets for positive offsets.
  const int64_t half = num_buckets / 2;
  torch::Tensor buckets = (rel > 0).to(torch::kLong) * half;
  rel = rel.abs();
  const int64_t max_exact = half / 2;
  const torch::Tensor is_small = rel < max_exact;
  // Logarithmic bins up to max_distance: float32 log, as the reference.
  torch::Tensor large = max_exact + (torch::log(rel.to(torch::kFloat) / float(max_exact)) /
                                     float(std::log(double(max_distance) / double(max_exact))) * float(half - max_exact))
                                        .to(torch::kLong);
  large = torch::minimum(large, torch::full_like(large, half - 1));
  return buckets + torch::where(is_small, rel, large);
}

T5LayerNormImpl::T5LayerNormImpl(int64_t d, double e) : eps(e) {
  weight = register_parameter("weight", torch::ones({d}));
}

torch::Tensor T5LayerNormImpl::forward(const torch::Tensor& x) {
  const torch::Tensor variance = x.to(torch::kFloat).pow(2).mean(-1, true);
  torch::Tensor h = x * torch::rsqrt(variance + eps);
  if (weight.scalar_type() == torch::kHalf || weight.scalar_type() == torch::kBFloat16) h = h.to(weight.scalar_type());
  return weight * h;
}

namespace {

struct T5AttentionImpl : torch::nn::Module {
  rass::nn::Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
  torch::nn::Embedding relative_attention_bias{nullptr};
  int64_t heads, d_kv;
  T5AttentionImpl(const T5Config& c, bool has_bias) : heads(c.num_heads), d_kv(c.d_kv) {
    const int64_t inner = c.num_heads * c.d_kv;
    auto lin = [](int64_t i, int64_t o) { return rass::nn::Linear(torch::nn::LinearOptions(i, o).bias(false)); };
    q = register_module("q", lin(c.d_model, inner));
    k = register_module("k", lin(c.d_model, inner));
    v = register_module("v", lin(c.d_model, inner));
    o = register_module("o", lin(inner, c.d_model));
    if (has_bias)
      relative_attention_bias =
          register_module("relative_attention_bias", torch::nn::Embedding(c.relative_attention_num_buckets, c.num_heads));
  }
  // bias: [1 or B, heads, L, L], the position bias plus the padding mask.
  torch::Tensor forward(const torch::Tensor& h, const torch::Tensor& bias) {
    const int64_t b = h.size(0), n = h.size(1);
    auto split = [&](const torch::Tensor& t) { return t.view({b, n, heads, d_kv}).transpose(1, 2); };
    const torch::Tensor qs = split(q(h)), ks = split(k(h)), vs = split(v(h));
    torch::Tensor scores = torch::matmul(qs, ks.transpose(-1, -2)) + bias;  // T5 does not scale by 1/sqrt(d)
    const torch::Tensor w = scores.to(torch::kFloat).softmax(-1).to(scores.scalar_type());
    return o(torch::matmul(w, vs).transpose(1, 2).reshape({b, n, heads * d_kv}));
  }
};
TORCH_MODULE(T5Attention);

struct T5FeedForwardImpl : torch::nn::Module {
  rass::nn::Linear wi{nullptr}, wi_0{nullptr}, wi_1{nullptr}, wo{nullptr};
  std::string act;
  bool gated;
  explicit T5FeedForwardImpl(const T5Config& c) : act(c.activation()), gated(c.gated()) {
    auto lin = [](int64_t i, int64_t o) { return rass::nn::Linear(torch::nn::LinearOptions(i, o).bias(false)); };
    if (gated) {
      wi_0 = register_module("wi_0", lin(c.d_model, c.d_ff));
      wi_1 = register_module("wi_1", lin(c.d_model, c.d_ff));
    } else {
      wi = register_module("wi", lin(c.d_model, c.d_ff));
    }
    wo = register_module("wo", lin(c.d_ff, c.d_model));
  }
  torch::Tensor activate(const torch::Tensor& x) const {
    if (act == "relu") return torch::relu(x);
    if (act == "gelu") return F::gelu(x);
    if (act == "silu") return F::silu(x);
    // gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    return 0.5 * x * (1.0 + torch::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * torch::pow(x, 3.0))));
  }
  torch::Tensor forward(const torch::Tensor& h) {
    torch::Tensor m = gated ? activate(wi_0(h)) * wi_1(h) : activate(wi(h));
    if (m.scalar_type() != wo->weight.scalar_type()) m = m.to(wo->weight.scalar_type());
    return wo(m);
  }
};
TORCH_MODULE(T5FeedForward);

// encoder.block.N: layer.0 {SelfAttention, layer_norm}, layer.1 {DenseReluDense, layer_norm}.
struct T5BlockImpl : torch::nn::Module {
  T5Attention attention{nullptr};
  T5FeedForward ff{nullptr};
  T5LayerNorm norm0{nullptr}, norm1{nullptr};
  T5BlockImpl(const T5Config& c, bool has_bias) {
    auto layer = register_module("layer", torch::nn::ModuleList());
    auto l0 = std::make_shared<torch::nn::Module>();
    attention = l0->register_module("SelfAttention", T5Attention(c, has_bias));
    norm0 = l0->register_module("layer_norm", T5LayerNorm(c.d_model, c.layer_norm_epsilon));
    auto l1 = std::make_shared<torch::nn::Module>();
    ff = l1->register_module("DenseReluDense", T5FeedForward(c));
    norm1 = l1->register_module("layer_norm", T5LayerNorm(c.d_model, c.layer_norm_epsilon));
    layer->push_back(l0);
    layer->push_back(l1);
  }
  torch::Tensor forward(torch::Tensor h, const torch::Tensor& bias) {
    h = h + attention(norm0(h), bias);
    return h + ff(norm1(h));
  }
};
TORCH_MODULE(T5Block);

}  // namespace

T5EncoderModelImpl::T5EncoderModelImpl(const T5Config& c) : config(c) {
  auto positive = [](int64_t v, const char* name) {
    if (v <= 0) throw Error(ExitCode::bad_input, std::string("T5 config: ") + name + " must be positive");
  };
  positive(c.vocab_size, "vocab_size"), positive(c.d_model, "d_model"), positive(c.d_kv, "d_kv");
  positive(c.d_ff, "d_ff"), positive(c.num_layers, "num_layers"), positive(c.num_heads, "num_heads");
  positive(c.relative_attention_num_buckets, "relative_attention_num_buckets");
  if (c.relative_attention_num_buckets < 4 || c.relative_attention_max_distance <= c.relative_attention_num_buckets / 4)
    throw Error(ExitCode::bad_input, "T5 config: relative_attention_num_buckets " +
                                         std::to_string(c.relative_attention_num_buckets) + " and max_distance " +
                                         std::to_string(c.relative_attention_max_distance) + " do not make buckets");
  const std::string act = c.activation();
  if (act != "relu" && act != "gelu" && act != "gelu_new" && act != "silu")
    throw Error(ExitCode::bad_input, "T5 config: feed_forward_proj '" + c.feed_forward_proj +
                                         "' is not supported (gated-gelu, relu, gelu, gated-relu, gated-silu, ...)");
  shared = register_module("shared", torch::nn::Embedding(c.vocab_size, c.d_model));
  encoder = register_module("encoder", std::make_shared<torch::nn::Module>());
  block = encoder->register_module("block", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i) block->push_back(T5Block(c, i == 0));
  final_layer_norm = encoder->register_module("final_layer_norm", T5LayerNorm(c.d_model, c.layer_norm_epsilon));
}

torch::Tensor T5EncoderModelImpl::forward(const torch::Tensor& ids, const torch::Tensor& attention_mask) {
  const int64_t b = ids.size(0), n = ids.size(1);
  if (ids.numel() > 0 && (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= config.vocab_size))
    throw Error(ExitCode::bad_input, "token id outside the T5 vocabulary of " + std::to_string(config.vocab_size) +
                                         " (tokenizer and model do not match)");
  torch::Tensor h = shared(ids);
  const auto dtype = h.scalar_type();
  // The position bias of block 0 [1, heads, n, n] plus the extended mask (1 - mask) * lowest [B, 1, 1, n].
  auto* first = block[0]->as<T5BlockImpl>();
  const torch::Tensor buckets =
      t5_relative_position_bucket(n, n, config.relative_attention_num_buckets, config.relative_attention_max_distance)
          .to(ids.device());
  const torch::Tensor pos = first->attention->relative_attention_bias(buckets).permute({2, 0, 1}).unsqueeze(0);
  const double lowest = dtype == torch::kFloat    ? double(std::numeric_limits<float>::lowest())
                        : dtype == torch::kDouble ? std::numeric_limits<double>::lowest()
                        : dtype == torch::kHalf   ? -65504.0
                                                  : -3.3895313892515355e38;  // bfloat16's lowest
  const torch::Tensor mask = (1.0 - attention_mask.to(dtype)).view({b, 1, 1, n}) * lowest;
  const torch::Tensor bias = pos.to(dtype) + mask;
  for (auto& blk : *block) h = blk->as<T5BlockImpl>()->forward(h, bias);
  return final_layer_norm(h);
}

}  // namespace rass::nn
