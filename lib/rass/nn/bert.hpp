// BertModel (transformers models/bert/modeling_bert.py, 4.36) with the
// reference's state-dict names: embeddings.{word,position,token_type}_embeddings,
// embeddings.LayerNorm, encoder.layer.N.attention.self.{query,key,value},
// encoder.layer.N.attention.output.{dense,LayerNorm},
// encoder.layer.N.intermediate.dense, encoder.layer.N.output.{dense,LayerNorm},
// and pooler.dense when the checkpoint has it (unused by sentence embeddings).
// Absolute position embeddings, token type 0, exact (erf) GELU, padding masked
// with the dtype's lowest value as the reference's extended attention mask.
#pragma once
#include <string>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

namespace rass::nn {

struct BertConfig {
  int64_t vocab_size = 30522, hidden_size = 768, num_hidden_layers = 12, num_attention_heads = 12;
  int64_t intermediate_size = 3072, max_position_embeddings = 512, type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  std::string hidden_act = "gelu";  // gelu (exact) or relu
  bool with_pooler = true;
};

struct BertModelImpl : torch::nn::Module {
  explicit BertModelImpl(const BertConfig& c);
  // input_ids, attention_mask [B, L] (int64; mask 1 = token, 0 = padding) -> last_hidden_state [B, L, H].
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask);
  BertConfig config;
  std::shared_ptr<torch::nn::Module> embeddings, encoder;
  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
  torch::nn::LayerNorm embeddings_norm{nullptr};
  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(BertModel);

}  // namespace rass::nn
