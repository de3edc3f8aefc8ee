// T5 caption features as PixArt's T5Embedder.get_text_embeddings makes them
// (what DreamClear's tools/extract_t5_features.py saves): the caption
// cleaned (text_preprocessing), tokenized (SentencePiece, 120 tokens with
// </s> and padding), encoded by T5's encoder; features [1, L, d_model]
// float32 and the token mask [1, L].
//
// The model folder is a transformers T5 encoder folder: config.json and
// model.safetensors or its shards (model.safetensors.index.json), as
// PixArt's diffusers pipelines ship under text_encoder/. The tokenizer's
// spiece.model is in the folder, in ../tokenizer/ (the diffusers layout),
// or given.
#pragma once
#include <memory>
#include <string>

#include <torch/types.h>

#include "rass/nn/t5.hpp"
#include "rass/text/sentencepiece.hpp"

namespace rass::model {

struct T5EncoderOptions {
  std::string dir;
  std::string tokenizer;  // spiece.model; "": dir/spiece.model, else dir/../tokenizer/spiece.model
  std::string device = "cpu";
  std::string dtype = "fp32";  // fp32, or bf16 (the reference's: T5Embedder loads T5 in bfloat16)
  int max_length = 120;        // T5Embedder's model_max_length for PixArt and DreamClear
};

// How a caption is cleaned before tokenizing.
enum class CaptionClean {
  pixart,  // T5Embedder.text_preprocessing: clean_caption twice (the reference's default)
  lower,   // use_text_preprocessing=False: lower().strip()
  none,    // as given
};
CaptionClean parse_caption_clean(const std::string& s);  // pixart | lower | none, else Error(usage)
std::string clean_caption(const std::string& caption, CaptionClean how);

nn::T5Config read_t5_config(const std::string& config_json);
// The tokenizer file the options name (Error(bad_input) naming the places tried).
std::string t5_tokenizer_path(const T5EncoderOptions& opt);

struct T5Features {
  torch::Tensor features;  // [1, max_length, d_model] float32, CPU
  torch::Tensor mask;      // [1, max_length] int64, CPU
  text::T5Tokens tokens;
  std::string text;  // what was tokenized (the cleaned caption)
};

class T5TextEncoder {
 public:
  explicit T5TextEncoder(const T5EncoderOptions& opt);
  // The features of a caption that is already cleaned.
  T5Features encode(const std::string& cleaned) const;
  const text::SentencePiece& tokenizer() const { return sp_; }
  const nn::T5Config& config() const { return model_->config; }

 private:
  T5EncoderOptions opt_;
  text::SentencePiece sp_;  // loaded in the constructor, after the folder is checked
  mutable nn::T5EncoderModel model_{nullptr};  // forward is not const in LibTorch
  c10::Device device_{torch::kCPU};
};

}  // namespace rass::model
