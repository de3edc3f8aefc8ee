#include "rass/model/sbert.hpp"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_fields.hpp"
#include "rass/core/json_file.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/device.hpp"
#include "rass/model/sbert_register.hpp"
#include "rass/text/tag_similarity.hpp"
#include "rass/text/unicode.hpp"

namespace rass::model {

namespace {

nlohmann::json read_plain_json(const std::string& path) { return nlohmann::json(read_json_file(path)); }

nn::BertConfig read_bert_config(const std::string& path) {
  const nlohmann::json j = read_plain_json(path);
  nn::BertConfig c;
  const JsonFields f(j, path);
  try {
    const std::string type = f.text("model_type", "bert");
    if (type != "bert")
      throw_bad_input(path, "model_type is '" + type + "'; only BERT sentence-transformers models are supported");
    if (f.text("position_embedding_type", "absolute") != "absolute")
      throw_bad_input(path, "position_embedding_type must be absolute");
    c.vocab_size = f.integer("vocab_size", c.vocab_size);
    c.hidden_size = f.integer("hidden_size", c.hidden_size);
    c.num_hidden_layers = f.integer("num_hidden_layers", c.num_hidden_layers);
    c.num_attention_heads = f.integer("num_attention_heads", c.num_attention_heads);
    c.intermediate_size = f.integer("intermediate_size", c.intermediate_size);
    c.max_position_embeddings = f.integer("max_position_embeddings", c.max_position_embeddings);
    c.type_vocab_size = f.integer("type_vocab_size", c.type_vocab_size);
    c.layer_norm_eps = f.number("layer_norm_eps", c.layer_norm_eps);
    c.hidden_act = f.text("hidden_act", c.hidden_act);
  } catch (const nlohmann::json::exception& e) {
    throw_bad_input(path, std::string("bad field: ") + e.what());
  }
  return c;
}

// Sentence-BERT tag similarity: cosine of the embeddings; a class scores its best synonym.
class SbertSimilarity : public text::TagSimilarity {
 public:
  SbertSimilarity(std::unique_ptr<SentenceEncoder> enc, const std::vector<std::string>& classes)
      : enc_(std::move(enc)) {
    std::vector<std::string> names;
    for (size_t c = 0; c < classes.size(); ++c)
      for (const std::string& s : text::class_synonyms(classes[c])) {
        names.push_back(s);
        owner_.push_back(c);
      }
    count_ = classes.size();
    classes_ = unit(enc_->encode(names));
  }
  std::vector<double> scores(const std::string& tag) const override {
    std::lock_guard<std::mutex> lock(mu_);  // one forward at a time: LibTorch threads inside
    const torch::Tensor t = unit(enc_->encode({tag}));
    const torch::Tensor cos = torch::matmul(classes_, t.squeeze(0)).to(torch::kDouble).contiguous();
    std::vector<double> out(count_, std::numeric_limits<double>::quiet_NaN());
    const double* p = cos.data_ptr<double>();
    for (size_t i = 0; i < owner_.size(); ++i)
      if (std::isnan(out[owner_[i]]) || p[i] > out[owner_[i]]) out[owner_[i]] = p[i];
    return out;
  }
  std::string name() const override { return "sbert"; }

 private:
  // sentence_transformers.util.cos_sim: each row divided by max(norm, eps).
  static torch::Tensor unit(const torch::Tensor& x) {
    return torch::nn::functional::normalize(x, torch::nn::functional::NormalizeFuncOptions().p(2).dim(1));
  }
  std::unique_ptr<SentenceEncoder> enc_;
  torch::Tensor classes_;
  std::vector<size_t> owner_;
  size_t count_ = 0;
  mutable std::mutex mu_;
};

std::unique_ptr<text::TagSimilarity> make_sbert(const std::string& dir, const std::vector<std::string>& classes,
                                                const std::string& device) {
  return std::make_unique<SbertSimilarity>(SentenceEncoder::load(dir, device), classes);
}

}  // namespace

void register_sbert_similarity() { text::register_sbert_similarity(&make_sbert); }

std::unique_ptr<SentenceEncoder> SentenceEncoder::load(const std::string& dir, const std::string& device) {
  std::string transformer = dir, pooling_dir;
  bool normalize = false;
  const std::string modules = path_join(dir, "modules.json");
  if (file_exists(modules)) {
    const nlohmann::json j = read_plain_json(modules);
    if (!j.is_array()) throw_bad_input(modules, "expected a list of modules");
    for (const auto& m : j) {
      const std::string type = m.value("type", std::string()), path = m.value("path", std::string());
      const std::string leaf = type.substr(type.rfind('.') == std::string::npos ? 0 : type.rfind('.') + 1);
      if (leaf == "Transformer") transformer = path_join(dir, path);
      else if (leaf == "Pooling") pooling_dir = path_join(dir, path);
      else if (leaf == "Normalize") normalize = true;
      else throw_bad_input(modules, "module type '" + type + "' is not supported (Transformer, Pooling, Normalize)");
    }
  }
  if (transformer.empty() || transformer.back() == '/') transformer = transformer.empty() ? "." : transformer;
  const std::string weights = path_join(transformer, "model.safetensors");
  if (!file_exists(weights)) {
    if (file_exists(path_join(transformer, "pytorch_model.bin")))
      throw_bad_input(transformer, "holds only pytorch_model.bin; rass never unpickles: convert it once with "
                                   "python -c \"import torch, safetensors.torch as s; "
                                   "s.save_file(torch.load('pytorch_model.bin'), 'model.safetensors')\"");
    throw_bad_input(weights, "missing (the sentence-transformers model's weights)");
  }
  nn::BertConfig cfg = read_bert_config(path_join(transformer, "config.json"));
  auto file = SafeTensorsFile::open(weights);
  cfg.with_pooler = file->find("pooler.dense.weight") != nullptr;
  bool lower = true;
  const std::string tok_cfg = path_join(transformer, "tokenizer_config.json");
  if (file_exists(tok_cfg)) lower = read_plain_json(tok_cfg).value("do_lower_case", true);
  nn::BertModel bert(cfg);
  load_state_dict(*bert, *file, true, "", {"embeddings.position_ids"});
  std::unique_ptr<SentenceEncoder> enc(
      new SentenceEncoder(text::WordPiece::load(path_join(transformer, "vocab.txt"), lower), bert));
  enc->normalize_ = normalize;
  enc->max_seq_length_ = static_cast<int>(cfg.max_position_embeddings);
  const std::string st_cfg = path_join(transformer, "sentence_bert_config.json");
  if (file_exists(st_cfg)) {
    const nlohmann::json j = read_plain_json(st_cfg);
    if (j.contains("max_seq_length") && j["max_seq_length"].is_number_integer())
      enc->max_seq_length_ = std::min<int>(enc->max_seq_length_, j["max_seq_length"].get<int>());
    enc->lower_text_ = j.value("do_lower_case", false);
  }
  if (!pooling_dir.empty()) {
    const std::string pc = path_join(pooling_dir, "config.json");
    const nlohmann::json j = read_plain_json(pc);
    std::vector<std::string> modes;
    for (const char* m : {"cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens", "weightedmean_tokens",
                          "lasttoken"})
      if (j.value(std::string("pooling_mode_") + m, false)) modes.push_back(m);
    if (modes.size() != 1 || (modes[0] != "cls_token" && modes[0] != "mean_tokens" && modes[0] != "max_tokens"))
      throw_bad_input(pc, "exactly one of pooling_mode_cls_token, pooling_mode_mean_tokens, pooling_mode_max_tokens "
                          "must be true (other and combined poolings are not supported)");
    enc->pooling_ = modes[0] == "cls_token" ? "cls" : modes[0] == "mean_tokens" ? "mean" : "max";
  }
  enc->device_ = parse_device(device);
  enc->bert_->to(enc->device_);
  enc->bert_->eval();
  return enc;
}

std::vector<int> SentenceEncoder::token_ids(const std::string& text) const {
  return tok_.encode(lower_text_ ? text::utf8_encode(text::to_lower(text::utf8_decode(text))) : text, max_seq_length_);
}

torch::Tensor SentenceEncoder::encode(const std::vector<std::string>& texts) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> rows;
  for (const std::string& t : texts) {
    const std::vector<int> ids = token_ids(t);
    const torch::Tensor x =
        torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong).view({1, -1}).to(device_);
    const torch::Tensor mask = torch::ones_like(x);
    const torch::Tensor h = bert_->forward(x, mask).to(torch::kFloat);  // [1, L, H]
    torch::Tensor e;
    if (pooling_ == "cls") e = h.select(1, 0);
    else if (pooling_ == "max") e = std::get<0>(h.max(1));
    else e = h.sum(1) / std::max<double>(double(ids.size()), 1e-9);  // all tokens count: no padding here
    if (normalize_) e = torch::nn::functional::normalize(e, torch::nn::functional::NormalizeFuncOptions().p(2).dim(1));
    rows.push_back(e.cpu());
  }
  return rows.empty() ? torch::zeros({0, bert_->config.hidden_size}) : torch::cat(rows, 0);
}

}  // namespace rass::model
