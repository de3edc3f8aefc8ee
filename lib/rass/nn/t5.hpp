// T5's encoder (transformers models/t5/modeling_t5.py, T5EncoderModel): what
// PixArt and DreamClear encode captions with (T5 v1.1 XXL). Module names are
// the checkpoint's keys: shared (the token embedding),
// encoder.block.N.layer.0.SelfAttention.{q,k,v,o} (+ relative_attention_bias
// in block 0), encoder.block.N.layer.0.layer_norm,
// encoder.block.N.layer.1.DenseReluDense.{wi_0,wi_1,wo} (gated) or {wi,wo},
// encoder.block.N.layer.1.layer_norm, encoder.final_layer_norm.
// Pre-norm blocks with T5's RMS norm (no mean, no bias, the variance in
// float32), unscaled attention scores plus the bucketed relative position
// bias of block 0 (shared by every block) and the padding mask, no biases.
#pragma once
#include <string>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>

namespace rass::nn {

struct T5Config {
  int64_t vocab_size = 32128, d_model = 4096, d_kv = 64, d_ff = 10240, num_layers = 24, num_heads = 64;
  int64_t relative_attention_num_buckets = 32, relative_attention_max_distance = 128;
  double layer_norm_epsilon = 1e-6;
  // T5Config: "gated-gelu" (v1.1: gelu_new, the tanh form), "relu" (T5 1.0),
  // "gelu", "gated-relu", "gated-silu", ...: gated or not, and the activation.
  std::string feed_forward_proj = "gated-gelu";
  // transformers' is_gated_act and dense_act_fn: derived from
  // feed_forward_proj unless the config.json gives them (they then win, as
  // transformers 4.x reads them). "": derived.
  std::string dense_act_fn;
  int is_gated_act = -1;  // -1 derived, 0 no, 1 yes
  bool gated() const;
  std::string activation() const;  // relu, gelu, gelu_new or silu
};

// T5's relative position buckets [q, k] (bidirectional, as the encoder uses).
torch::Tensor t5_relative_position_bucket(int64_t query_length, int64_t key_length, int64_t num_buckets,
                                          int64_t max_distance);

struct T5LayerNormImpl : torch::nn::Module {
  explicit T5LayerNormImpl(int64_t d, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(T5LayerNorm);

struct T5EncoderModelImpl : torch::nn::Module {
  explicit T5EncoderModelImpl(const T5Config& c);
  // input_ids, attention_mask [B, L] (int64; mask 1 = token, 0 = padding) -> last_hidden_state [B, L, d_model].
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask);
  T5Config config;
  torch::nn::Embedding shared{nullptr};
  std::shared_ptr<torch::nn::Module> encoder;
  torch::nn::ModuleList block{nullptr};
  T5LayerNorm final_layer_norm{nullptr};
};
TORCH_MODULE(T5EncoderModel);

}  // namespace rass::nn
