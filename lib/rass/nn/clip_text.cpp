#include "rass/nn/clip_text.hpp"

#include <limits>

#include <torch/nn/functional/activation.h>
#include <torch/nn/modules/linear.h>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/nn/linear.hpp"
#include "rass/nn/transfer.hpp"

namespace F = torch::nn::functional;

namespace rass::nn {

namespace {

struct ClipAttentionImpl : torch::nn::Module {
  rass::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
  int64_t heads, head_dim;
  ClipAttentionImpl(int64_t dim, int64_t h) : heads(h), head_dim(dim / h) {
    k_proj = register_module("k_proj", rass::nn::Linear(dim, dim));
    v_proj = register_module("v_proj", rass::nn::Linear(dim, dim));
    q_proj = register_module("q_proj", rass::nn::Linear(dim, dim));
    out_proj = register_module("out_proj", rass::nn::Linear(dim, dim));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& causal_mask) {
    const int64_t b = x.size(0), n = x.size(1), d = x.size(2);
    auto split = [&](const torch::Tensor& t) { return t.view({b, n, heads, head_dim}).transpose(1, 2).reshape({b * heads, n, head_dim}); };
    // The reference scales q before the product.
    torch::Tensor q = split(q_proj(x) * (1.0 / std::sqrt(double(head_dim))));
    torch::Tensor k = split(k_proj(x)), v = split(v_proj(x));
    torch::Tensor w = torch::bmm(q, k.transpose(1, 2));
    w = (w.view({b, heads, n, n}) + causal_mask).view({b * heads, n, n});
    torch::Tensor o = torch::bmm(w.softmax(-1), v);
    o = o.view({b, heads, n, head_dim}).transpose(1, 2).reshape({b, n, d});
    return out_proj(o);
  }
};
TORCH_MODULE(ClipAttention);

struct ClipEncoderLayerImpl : torch::nn::Module {
  ClipAttention self_attn{nullptr};
  torch::nn::LayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
  std::shared_ptr<torch::nn::Module> mlp;
  rass::nn::Linear fc1{nullptr}, fc2{nullptr};
  bool quick_gelu;
  ClipEncoderLayerImpl(const ClipTextConfig& c) : quick_gelu(c.hidden_act == "quick_gelu") {
    self_attn = register_module("self_attn", ClipAttention(c.hidden_size, c.num_attention_heads));
    layer_norm1 = register_module("layer_norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps)));
    mlp = register_module("mlp", std::make_shared<torch::nn::Module>());
    fc1 = mlp->register_module("fc1", rass::nn::Linear(c.hidden_size, c.intermediate_size));
    fc2 = mlp->register_module("fc2", rass::nn::Linear(c.intermediate_size, c.hidden_size));
    layer_norm2 = register_module("layer_norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps)));
  }
  torch::Tensor forward(torch::Tensor h, const torch::Tensor& mask) {
    h = h + self_attn(layer_norm1(h), mask);
    torch::Tensor m = fc1(layer_norm2(h));
    m = quick_gelu ? m * torch::sigmoid(1.702 * m) : F::gelu(m);
    return h + fc2(m);
  }
};
TORCH_MODULE(ClipEncoderLayer);

}  // namespace

ClipTextModelImpl::ClipTextModelImpl(const ClipTextConfig& c) : config(c) {
  if (c.hidden_act != "gelu" && c.hidden_act != "quick_gelu")
    throw Error(ExitCode::bad_input, "CLIP text config: hidden_act '" + c.hidden_act + "' is not supported");
  if (c.hidden_size % c.num_attention_heads != 0)
    throw Error(ExitCode::bad_input, "CLIP text config: hidden_size is not divisible by num_attention_heads");
  text_model = register_module("text_model", std::make_shared<torch::nn::Module>());
  embeddings = text_model->register_module("embeddings", std::make_shared<torch::nn::Module>());
  token_embedding = embeddings->register_module("token_embedding", torch::nn::Embedding(c.vocab_size, c.hidden_size));
  position_embedding = embeddings->register_module("position_embedding", torch::nn::Embedding(c.max_position_embeddings, c.hidden_size));
  encoder = text_model->register_module("encoder", std::make_shared<torch::nn::Module>());
  layers = encoder->register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(ClipEncoderLayer(c));
  final_layer_norm = text_model->register_module(
      "final_layer_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps)));
}

ClipTextOutput ClipTextModelImpl::forward(const torch::Tensor& ids_in, bool all_hidden, int clip_skip) {
  const int64_t n = ids_in.size(1);
  if (n > config.max_position_embeddings)
    throw Error(ExitCode::bad_input, "CLIP text input has " + std::to_string(n) + " tokens, more than " +
                                         std::to_string(config.max_position_embeddings));
  if (clip_skip < 0 || clip_skip >= config.num_hidden_layers) throw Error(ExitCode::usage, "clip_skip out of range");
  // Checked where the ids are: host ids (the tools' case) are checked on the
  // host and then sent up without a wait; ids already on a GPU cost one wait.
  if (ids_in.numel() > 0 && (ids_in.min().item<int64_t>() < 0 || ids_in.max().item<int64_t>() >= config.vocab_size))
    throw Error(ExitCode::bad_input, "token id " + std::to_string(ids_in.max().item<int64_t>()) + " is outside the text encoder's vocabulary of " +
                                         std::to_string(config.vocab_size) + " (tokenizer and text encoder do not match)");
  const torch::Tensor ids = host_to_device(ids_in, token_embedding->weight.device(), torch::kLong);
  torch::Tensor pos = torch::arange(n, torch::TensorOptions().dtype(torch::kLong).device(ids.device()));
  torch::Tensor h = token_embedding(ids) + position_embedding(pos).unsqueeze(0);
  // Causal mask: the dtype's lowest value above the diagonal, as the reference.
  torch::Tensor mask = torch::full({n, n}, std::numeric_limits<float>::lowest(), h.options());
  if (h.scalar_type() != torch::kFloat) mask.fill_(-65504.0);  // fp16/bf16 lowest finite, close enough to -inf
  mask = mask.triu(1).view({1, 1, n, n});
  ClipTextOutput out;
  if (all_hidden || clip_skip > 0) out.hidden_states.push_back(h);
  for (auto& layer : *layers) {
    h = layer->as<ClipEncoderLayer>()->forward(h, mask);
    if (all_hidden || clip_skip > 0) out.hidden_states.push_back(h);
  }
  torch::Tensor chosen = clip_skip > 0 ? out.hidden_states[out.hidden_states.size() - 1 - clip_skip] : h;
  out.last_hidden_state = final_layer_norm(chosen);
  // Pooled: the first end-of-text token of each row; configs written before
  // transformers PR #24773 say eos_token_id 2 and mean the highest id (argmax).
  torch::Tensor eos = config.eos_token_id == 2 ? ids.to(torch::kInt).argmax(-1)
                                               : (ids == config.eos_token_id).to(torch::kInt).argmax(-1);
  out.pooled = out.last_hidden_state.index({torch::arange(ids.size(0), eos.options().dtype(torch::kLong)), eos});
  if (!all_hidden) out.hidden_states.clear();
  return out;
}

}  // namespace rass::nn
