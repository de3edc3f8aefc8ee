#include "rass/nn/bert.hpp"

#include <cmath>
#include <limits>

#include <torch/nn/functional/activation.h>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/nn/linear.hpp"

namespace F = torch::nn::functional;

namespace rass::nn {

namespace {

torch::nn::LayerNorm layer_norm(const BertConfig& c) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps));
}

struct BertLayerImpl : torch::nn::Module {
  rass::nn::Linear query{nullptr}, key{nullptr}, value{nullptr}, attn_dense{nullptr}, inter_dense{nullptr},
      out_dense{nullptr};
  torch::nn::LayerNorm attn_norm{nullptr}, out_norm{nullptr};
  int64_t heads, head_dim;
  bool relu;
  explicit BertLayerImpl(const BertConfig& c)
      : heads(c.num_attention_heads), head_dim(c.hidden_size / c.num_attention_heads), relu(c.hidden_act == "relu") {
    auto attention = register_module("attention", std::make_shared<torch::nn::Module>());
    auto self = attention->register_module("self", std::make_shared<torch::nn::Module>());
    query = self->register_module("query", rass::nn::Linear(c.hidden_size, c.hidden_size));
    key = self->register_module("key", rass::nn::Linear(c.hidden_size, c.hidden_size));
    value = self->register_module("value", rass::nn::Linear(c.hidden_size, c.hidden_size));
    auto attn_out = attention->register_module("output", std::make_shared<torch::nn::Module>());
    attn_dense = attn_out->register_module("dense", rass::nn::Linear(c.hidden_size, c.hidden_size));
    attn_norm = attn_out->register_module("LayerNorm", layer_norm(c));
    auto inter = register_module("intermediate", std::make_shared<torch::nn::Module>());
    inter_dense = inter->register_module("dense", rass::nn::Linear(c.hidden_size, c.intermediate_size));
    auto out = register_module("output", std::make_shared<torch::nn::Module>());
    out_dense = out->register_module("dense", rass::nn::Linear(c.intermediate_size, c.hidden_size));
    out_norm = out->register_module("LayerNorm", layer_norm(c));
  }
  torch::Tensor forward(const torch::Tensor& h, const torch::Tensor& mask) {
    const int64_t b = h.size(0), n = h.size(1), d = h.size(2);
    auto split = [&](const torch::Tensor& t) { return t.view({b, n, heads, head_dim}).permute({0, 2, 1, 3}); };
    const torch::Tensor q = split(query(h)), k = split(key(h)), v = split(value(h));
    torch::Tensor scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(double(head_dim)) + mask;
    torch::Tensor ctx = torch::matmul(scores.softmax(-1), v).permute({0, 2, 1, 3}).reshape({b, n, d});
    const torch::Tensor a = attn_norm(attn_dense(ctx) + h);
    torch::Tensor m = inter_dense(a);
    m = relu ? torch::relu(m) : F::gelu(m);  // exact erf GELU, transformers' "gelu"
    return out_norm(out_dense(m) + a);
  }
};
TORCH_MODULE(BertLayer);

}  // namespace

BertModelImpl::BertModelImpl(const BertConfig& c) : config(c) {
  if (c.hidden_act != "gelu" && c.hidden_act != "relu")
    throw Error(ExitCode::bad_input, "BERT config: hidden_act '" + c.hidden_act + "' is not supported (gelu, relu)");
  if (c.num_attention_heads <= 0 || c.hidden_size % c.num_attention_heads != 0)
    throw Error(ExitCode::bad_input, "BERT config: hidden_size is not divisible by num_attention_heads");
  embeddings = register_module("embeddings", std::make_shared<torch::nn::Module>());
  word_embeddings = embeddings->register_module("word_embeddings", torch::nn::Embedding(c.vocab_size, c.hidden_size));
  position_embeddings =
      embeddings->register_module("position_embeddings", torch::nn::Embedding(c.max_position_embeddings, c.hidden_size));
  token_type_embeddings =
      embeddings->register_module("token_type_embeddings", torch::nn::Embedding(c.type_vocab_size, c.hidden_size));
  embeddings_norm = embeddings->register_module("LayerNorm", layer_norm(c));
  encoder = register_module("encoder", std::make_shared<torch::nn::Module>());
  layers = encoder->register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(BertLayer(c));
  if (c.with_pooler) {
    auto pooler = register_module("pooler", std::make_shared<torch::nn::Module>());
    pooler->register_module("dense", rass::nn::Linear(c.hidden_size, c.hidden_size));
  }
}

torch::Tensor BertModelImpl::forward(const torch::Tensor& ids, const torch::Tensor& attention_mask) {
  const int64_t n = ids.size(1);
  if (n > config.max_position_embeddings)
    throw Error(ExitCode::bad_input, "BERT input has " + std::to_string(n) + " tokens, more than " +
                                         std::to_string(config.max_position_embeddings));
  if (ids.numel() > 0 && (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= config.vocab_size))
    throw Error(ExitCode::bad_input, "token id outside the BERT vocabulary of " + std::to_string(config.vocab_size) +
                                         " (tokenizer and model do not match)");
  const torch::Tensor pos = torch::arange(n, ids.options().dtype(torch::kLong));
  torch::Tensor h = word_embeddings(ids) + token_type_embeddings(torch::zeros_like(ids)) +
                    position_embeddings(pos).unsqueeze(0);
  h = embeddings_norm(h);
  // (1 - mask) * lowest, broadcast over heads and query positions.
  const double lowest = h.scalar_type() == torch::kFloat ? double(std::numeric_limits<float>::lowest())
                        : h.scalar_type() == torch::kDouble ? std::numeric_limits<double>::lowest()
                                                            : -65504.0;
  const torch::Tensor mask = (1.0 - attention_mask.to(h.scalar_type())).view({ids.size(0), 1, 1, n}) * lowest;
  for (auto& layer : *layers) h = layer->as<BertLayer>()->forward(h, mask);
  return h;
}

}  // namespace rass::nn
