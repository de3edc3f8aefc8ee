// CLIPTextModel (transformers models/clip/modeling_clip.py) with the
// reference's names: text_model.{embeddings.{token_embedding,
// position_embedding}, encoder.layers.i.{self_attn.{q,k,v,out}_proj,
// layer_norm1, mlp.{fc1, fc2}, layer_norm2}, final_layer_norm}. Causal
// self-attention; SD 2.x's text encoder is OpenCLIP ViT-H's text tower in
// this form (23 layers, hidden 1024, gelu).
#pragma once
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>

namespace rass::nn {

struct ClipTextConfig {
  int64_t vocab_size = 49408, hidden_size = 1024, intermediate_size = 4096;
  int64_t num_hidden_layers = 23, num_attention_heads = 16, max_position_embeddings = 77;
  std::string hidden_act = "gelu";  // "gelu" (OpenCLIP, SD 2.x) or "quick_gelu" (OpenAI CLIP, SD 1.x)
  double layer_norm_eps = 1e-5;
  int64_t eos_token_id = 49407;
};

struct ClipTextOutput {
  torch::Tensor last_hidden_state;  // final_layer_norm applied
  torch::Tensor pooled;             // last_hidden_state at the (first) end-of-text token
  std::vector<torch::Tensor> hidden_states;  // embeddings, then every layer's output (when asked)
};

struct ClipTextModelImpl : torch::nn::Module {
  explicit ClipTextModelImpl(const ClipTextConfig& c);
  // input_ids [B, L] (int64). With clip_skip k > 0 the output is the final
  // layer norm of the hidden state k layers before the last (diffusers' clip_skip).
  ClipTextOutput forward(const torch::Tensor& input_ids, bool all_hidden_states = false, int clip_skip = 0);
  ClipTextConfig config;
  std::shared_ptr<torch::nn::Module> text_model, embeddings, encoder;
  torch::nn::Embedding token_embedding{nullptr}, position_embedding{nullptr};
  torch::nn::ModuleList layers{nullptr};
  torch::nn::LayerNorm final_layer_norm{nullptr};
};
TORCH_MODULE(ClipTextModel);

}  // namespace rass::nn
