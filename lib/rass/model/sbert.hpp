// A sentence-transformers folder run in LibTorch: BERT WordPiece tokenizer,
// BertModel, the pooling its 1_Pooling/config.json names (mean with the
// attention mask, cls or max) and the optional Normalize module, so
// encode() equals SentenceTransformer(dir).encode(texts) for BERT models
// (all-MiniLM-L6-v2, all-mpnet is not BERT). Folder layout read:
//   modules.json                 module list (Transformer, Pooling, Normalize);
//                                absent: a plain BERT folder with mean pooling
//   config.json                  BertConfig (model_type "bert")
//   model.safetensors            weights, BertModel state-dict names; a folder
//                                with only pytorch_model.bin is refused with advice
//   vocab.txt, tokenizer_config.json (do_lower_case)
//   sentence_bert_config.json    max_seq_length, do_lower_case
//   1_Pooling/config.json        pooling_mode_{cls_token,mean_tokens,max_tokens}
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "rass/nn/bert.hpp"
#include "rass/text/wordpiece.hpp"

namespace rass::model {

class SentenceEncoder {
 public:
  // Throws Error(bad_input) naming the file for a missing or malformed part.
  static std::unique_ptr<SentenceEncoder> load(const std::string& dir, const std::string& device = "cpu");
  // Embeddings [N, H] (float32, on the CPU), each text alone (no padding effects).
  torch::Tensor encode(const std::vector<std::string>& texts);
  // The token ids of one text as the model sees it ([CLS] ... [SEP], truncated).
  std::vector<int> token_ids(const std::string& text) const;
  const std::string& pooling() const { return pooling_; }
  bool normalizes() const { return normalize_; }

 private:
  SentenceEncoder(text::WordPiece tok, nn::BertModel bert) : tok_(std::move(tok)), bert_(std::move(bert)) {}
  text::WordPiece tok_;
  nn::BertModel bert_;
  std::string pooling_ = "mean";
  bool normalize_ = false, lower_text_ = false;
  int max_seq_length_ = 512;
  torch::Device device_{torch::kCPU};
};

}  // namespace rass::model
