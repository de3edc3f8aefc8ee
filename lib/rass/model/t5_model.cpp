#include "rass/model/t5_model.hpp"

#include <filesystem>

#include <c10/core/DefaultDtype.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/found_file.hpp"
#include "rass/core/json_fields.hpp"
#include "rass/core/json_file.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/device.hpp"
#include "rass/text/pixart_caption.hpp"

namespace fs = std::filesystem;

namespace rass::model {

CaptionClean parse_caption_clean(const std::string& s) {
  if (s == "pixart") return CaptionClean::pixart;
  if (s == "lower") return CaptionClean::lower;
  if (s == "none") return CaptionClean::none;
  throw_usage("--clean " + s + ": pixart, lower or none");
}

std::string clean_caption(const std::string& caption, CaptionClean how) {
  switch (how) {
    case CaptionClean::pixart: return text::pixart_text_preprocessing(caption);
    case CaptionClean::lower: return text::lower_strip(caption);
    case CaptionClean::none: break;
  }
  return caption;
}

nn::T5Config read_t5_config(const std::string& path) {
  if (!file_exists(path)) throw_bad_input(path, "missing (a transformers T5 encoder folder has config.json)");
  const nlohmann::json j(read_found_json(path));
  if (!j.is_object()) throw_bad_input(path, "is not a JSON object");
  const JsonFields f(j, path);
  const std::string type = f.text("model_type", "t5");
  if (type != "t5" && type != "umt5" && type != "mt5")
    throw_bad_input(path, "model_type is '" + type + "'; a T5 encoder's config is expected");
  if (type == "umt5")
    throw_bad_input(path, "model_type umt5 (a relative position bias in every block) is not supported");
  nn::T5Config c;
  for (const char* key : {"d_model", "d_kv", "d_ff", "num_layers", "num_heads", "vocab_size"})
    if (!f.has(key)) throw_bad_input(path, std::string("has no ") + key);
  c.d_model = f.integer("d_model", c.d_model);
  c.d_kv = f.integer("d_kv", c.d_kv);
  c.d_ff = f.integer("d_ff", c.d_ff);
  c.num_layers = f.integer("num_layers", c.num_layers);
  c.num_heads = f.integer("num_heads", c.num_heads);
  c.vocab_size = f.integer("vocab_size", c.vocab_size);
  c.relative_attention_num_buckets = f.integer("relative_attention_num_buckets", 32);
  c.relative_attention_max_distance = f.integer("relative_attention_max_distance", 128);
  c.layer_norm_epsilon = f.number("layer_norm_epsilon", 1e-6);
  c.feed_forward_proj = f.text("feed_forward_proj", "relu");  // T5Config's default
  c.dense_act_fn = f.text("dense_act_fn", "");
  if (f.has("is_gated_act")) c.is_gated_act = f.flag("is_gated_act", false) ? 1 : 0;
  const std::string act = c.activation();
  if (act != "relu" && act != "gelu" && act != "gelu_new" && act != "silu")
    throw_bad_input(path, "the feed-forward activation '" + act + "' (feed_forward_proj '" + c.feed_forward_proj +
                              "') is not supported: relu, gelu, gelu_new, silu, gated or not");
  if (c.relative_attention_num_buckets < 4 || c.relative_attention_max_distance <= c.relative_attention_num_buckets / 4)
    throw_bad_input(path, "relative_attention_num_buckets " + std::to_string(c.relative_attention_num_buckets) +
                              " and relative_attention_max_distance " +
                              std::to_string(c.relative_attention_max_distance) + " make no buckets");
  // Sizes a real T5 never has are refused before anything is allocated.
  auto range = [&](const char* key, int64_t v, int64_t hi) {
    if (v < 1 || v > hi)
      throw_bad_input(path, std::string(key) + " = " + std::to_string(v) + " is outside 1.." + std::to_string(hi));
  };
  range("d_model", c.d_model, 65536), range("d_kv", c.d_kv, 4096), range("d_ff", c.d_ff, 262144);
  range("num_layers", c.num_layers, 1024), range("num_heads", c.num_heads, 1024), range("vocab_size", c.vocab_size, 1 << 22);
  range("relative_attention_num_buckets", c.relative_attention_num_buckets, 4096);
  range("relative_attention_max_distance", c.relative_attention_max_distance, 1 << 20);
  if (!(c.layer_norm_epsilon > 0 && c.layer_norm_epsilon < 1))
    throw_bad_input(path, "layer_norm_epsilon must be in (0, 1)");
  return c;
}

std::string t5_tokenizer_path(const T5EncoderOptions& opt) {
  if (!opt.tokenizer.empty()) {
    if (!file_exists(opt.tokenizer)) throw_bad_input(opt.tokenizer, "no such tokenizer file (T5's spiece.model)");
    return opt.tokenizer;
  }
  // Found here, not named: a FIFO or device in its place would block the run.
  const std::string here = path_join(opt.dir, "spiece.model");
  require_found_file(here, "T5's tokenizer (spiece.model)");
  if (file_exists(here)) return here;
  const std::string beside = path_join(path_join(opt.dir, ".."), "tokenizer/spiece.model");
  require_found_file(beside, "T5's tokenizer (spiece.model)");
  if (file_exists(beside)) return beside;
  throw_bad_input(opt.dir, "no spiece.model in the folder nor in ../tokenizer/ (pass --tokenizer FILE)");
}

// The folder's weights: model.safetensors or its shards, as transformers saves a T5 encoder.
void check_t5_weights(const std::string& dir) {
  if (file_exists(path_join(dir, "model.safetensors")) || file_exists(path_join(dir, "model.safetensors.index.json")))
    return;
  if (file_exists(path_join(dir, "pytorch_model.bin")) || file_exists(path_join(dir, "pytorch_model.bin.index.json")))
    throw_bad_input(dir, "holds pytorch_model.bin (pickles, which rass never loads): convert it once, e.g. "
                         "python -c \"import torch, safetensors.torch as s; s.save_file(torch.load('pytorch_model.bin'), "
                         "'model.safetensors')\" (each shard likewise, with its index)");
  throw_bad_input(dir, "has no model.safetensors nor model.safetensors.index.json (a transformers T5 encoder folder)");
}

T5TextEncoder::T5TextEncoder(const T5EncoderOptions& opt) : opt_(opt) {
  if (opt.dtype != "fp32" && opt.dtype != "bf16") throw_usage("--dtype " + opt.dtype + ": fp32 or bf16");
  if (opt.max_length < 2) throw_usage("--max-length must be at least 2 (a token and </s>)");
  std::error_code ec;
  if (!fs::is_directory(opt.dir, ec))
    throw_bad_input(opt.dir, fs::exists(opt.dir, ec) ? "is not a directory (-m takes a T5 encoder folder)"
                                                     : "no such folder (-m takes a T5 encoder folder)");
  const std::string tok = t5_tokenizer_path(opt);
  sp_ = text::SentencePiece::load(tok);
  if (sp_.piece_to_id("</s>") < 0 || sp_.piece_to_id("<pad>") < 0)
    throw_bad_input(tok, "the tokenizer has no </s> or <pad> piece (T5's has both)");
  const nn::T5Config cfg = read_t5_config(path_join(opt.dir, "config.json"));
  check_t5_weights(opt.dir);
  if (sp_.vocab_size() > cfg.vocab_size)
    throw_bad_input(tok, "has " + std::to_string(sp_.vocab_size()) + " pieces, more than the model's vocabulary of " +
                             std::to_string(cfg.vocab_size) + " (tokenizer and model do not match)");
  device_ = parse_device(opt.device);
  {
    // --dtype bf16: the parameters are bfloat16 from the start and the
    // file's weights are converted as they are copied in, so T5 v1.1 XXL's
    // encoder takes 9.5 GB, never its 19 GB of float32.
    const caffe2::TypeMeta before = c10::get_default_dtype();
    if (opt.dtype == "bf16") c10::set_default_dtype(caffe2::TypeMeta::Make<c10::BFloat16>());
    try {
      model_ = nn::T5EncoderModel(cfg);
    } catch (...) {
      c10::set_default_dtype(before);
      throw;
    }
    c10::set_default_dtype(before);
  }
  // The encoder's copy of the tied embedding, when a checkpoint keeps it, is
  // the same tensor as shared. A whole T5 (encoder and decoder, as
  // T5ForConditionalGeneration saves it) loads too: transformers'
  // T5EncoderModel passes over its decoder (_keys_to_ignore_on_load_unexpected)
  // and its language-model head.
  load_component(*model_, opt.dir, "", {"encoder.embed_tokens.weight", "decoder.*", "lm_head.weight"});
  check_finite_parameters(*model_, opt.dir);
  if (opt.dtype == "bf16") model_->to(torch::kBFloat16);
  model_->to(device_);
  model_->eval();
}

T5Features T5TextEncoder::encode(const std::string& cleaned) const {
  c10::InferenceMode guard;
  T5Features out;
  out.text = cleaned;
  out.tokens = text::t5_tokens(sp_, cleaned, opt_.max_length);
  const int64_t n = opt_.max_length;
  const torch::Tensor ids = torch::tensor(out.tokens.ids, torch::kLong).view({1, n});
  const torch::Tensor mask = torch::tensor(out.tokens.mask, torch::kLong).view({1, n});
  const torch::Tensor h = model_->forward(ids.to(device_), mask.to(device_));
  out.features = h.to(torch::kFloat).cpu().contiguous();
  out.mask = mask;
  if (!torch::isfinite(out.features).all().item<bool>())
    throw_runtime("T5 features hold non-finite values (the encoder overflowed; with --dtype bf16 try fp32)");
  return out;
}

}  // namespace rass::model
