#include "rass/model/lora_io.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include <torch/torch.h>

#include "rass/core/decimal.hpp"
#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/nn/lora.hpp"

namespace rass::model {

namespace {
// A finite positive alpha, or Error(bad_input) naming the file and where it came from.
double checked_alpha(double v, const std::string& file, const std::string& where) {
  if (!std::isfinite(v) || v <= 0)
    throw_bad_input(file, where + " = " + std::to_string(v) + " is not a finite positive number");
  if (v > std::numeric_limits<float>::max())  // applied in float32: 1e300 failed inside LibTorch, no file named
    throw_bad_input(file, where + " = " + std::to_string(v) + " is beyond the float32 range");
  return v;
}

// The tensor's values, refused (Error(bad_input) naming the file and tensor)
// when it is not floating point or any value is NaN or infinite: merged into
// weights they would poison every output without a visible error.
torch::Tensor finite_tensor(const TensorView& t, const std::string& file) {
  torch::Tensor x = to_tensor(t, file);
  if (!x.is_floating_point())  // BOOL or I64 "weights" merged as 0/1 or integers, silently
    throw_bad_input(file, "tensor '" + t.name + "' is " + c10::toString(x.scalar_type()) +
                              "; LoRA and model weights are floating point");
  if (!torch::isfinite(x).all().item<bool>())
    throw_bad_input(file, "tensor '" + t.name + "' holds non-finite values (NaN or infinity)");
  return x;
}
}  // namespace

void check_lora_pair_shapes(const std::string& file, const std::string& layer, const std::string& a_name,
                            const std::vector<int64_t>& a_shape, const std::string& b_name,
                            const std::vector<int64_t>& b_shape) {
  for (const auto& [name, shape] : {std::pair{&a_name, &a_shape}, std::pair{&b_name, &b_shape}})
    if (shape->size() < 2)
      throw_bad_input(file, "LoRA for '" + layer + "': " + *name + " is a " + std::to_string(shape->size()) +
                                "-d tensor (a matrix or a convolution kernel is expected)");
  if (a_shape[0] == 0) throw_bad_input(file, "LoRA for '" + layer + "' has rank 0 (" + a_name + " is empty)");
  if (b_shape[1] != a_shape[0])
    throw_bad_input(file, "LoRA for '" + layer + "': " + b_name + " has " + std::to_string(b_shape[1]) +
                              " input columns for the rank " + std::to_string(a_shape[0]) + " of " + a_name);
}

void detect_lora_layout(const SafeTensorsFile& file, LoraLoadOptions& options) {
  if (options.prefix.empty())
    for (const std::string p : {"unet.", "base_model.model.unet.", "base_model.model."}) {
      bool all = !file.tensors().empty();
      for (const TensorView& t : file.tensors())
        if (t.name.compare(0, p.size(), p) != 0) all = false;
      if (all) {
        options.prefix = p;
        break;
      }
    }
  namespace fs = std::filesystem;
  const std::string config = (fs::path(file.path()).parent_path() / "adapter_config.json").string();
  if (options.alpha == 0 && fs::path(file.path()).filename() == "adapter_model.safetensors" && file_exists(config))
    options.alpha = peft_config_alpha(config);
}

double peft_config_alpha(const std::string& path) {
  const nlohmann::ordered_json j = read_json_file(path);
  if (!j.is_object() || !j.contains("lora_alpha") || !j["lora_alpha"].is_number())
    throw_bad_input(path, "no numeric lora_alpha (not a PEFT LoRA adapter_config.json)");
  for (const char* key : {"rank_pattern", "alpha_pattern"})
    if (j.contains(key) && !j[key].is_null() && !j[key].empty())
      throw_bad_input(path, std::string(key) + " (per-layer ranks or alphas) is not supported");
  for (const char* key : {"use_rslora", "use_dora"})
    if (j.value(key, false)) throw_bad_input(path, std::string(key) + " is not supported");
  return checked_alpha(j["lora_alpha"].get<double>(), path, "lora_alpha");
}

LoraLoadReport load_lora(torch::nn::Module& root, const SafeTensorsFile& file, const LoraLoadOptions& opt) {
  std::map<std::string, nn::LoraLayer*> layers;
  for (auto& [path, layer] : nn::lora_layers(root)) layers[path] = layer;
  std::map<std::string, torch::Tensor> params;
  for (const auto& p : root.named_parameters(true)) params[p.key()] = p.value();

  // (layer path, adapter) -> {A, B}
  struct Pair {
    const TensorView* a = nullptr;
    const TensorView* b = nullptr;
  };
  std::map<std::pair<std::string, std::string>, Pair> pairs;
  static const std::regex peft(R"(^(.*)\.lora_([AB])(?:\.([^.]+))?\.weight$)");
  static const std::regex legacy(R"(^(.*)\.lora\.(down|up)\.weight$)");
  static const std::regex processor(R"(^(.*)\.processor\.(to_q|to_k|to_v|to_out)_lora\.(down|up)\.weight$)");
  static const std::regex alpha_key(R"(^(.*)\.alpha$)");
  if (file.tensors().empty()) throw_bad_input(file.path(), "holds no tensors (not a LoRA file)");
  std::map<std::string, const TensorView*> alphas;  // layer path -> alpha tensor
  LoraLoadReport rep;
  for (const TensorView& t : file.tensors()) {
    if (t.name.compare(0, opt.prefix.size(), opt.prefix) != 0) {
      rep.unmatched.push_back(t.name);
      continue;
    }
    std::string key = t.name.substr(opt.prefix.size());
    // PEFT stores a wrapped layer's own weights as <module>.base_layer.weight
    // (OSEDiff/SCR train conv_in fully this way).
    const size_t bl = key.find(".base_layer.");
    if (bl != std::string::npos) key.erase(bl, std::string(".base_layer").size());
    std::smatch m;
    if (std::regex_match(key, m, peft)) {
      const std::string adapter = m[3].matched ? m[3].str() : opt.adapter;
      (m[2] == "A" ? pairs[{m[1], adapter}].a : pairs[{m[1], adapter}].b) = &t;
    } else if (std::regex_match(key, m, legacy)) {
      (m[2] == "down" ? pairs[{m[1], opt.adapter}].a : pairs[{m[1], opt.adapter}].b) = &t;
    } else if (std::regex_match(key, m, processor)) {
      const std::string layer = m[1].str() + "." + (m[2] == "to_out" ? std::string("to_out.0") : m[2].str());
      (m[3] == "down" ? pairs[{layer, opt.adapter}].a : pairs[{layer, opt.adapter}].b) = &t;
    } else if (std::regex_match(key, m, alpha_key) && layers.count(m[1])) {
      alphas[m[1]] = &t;
    } else if (opt.apply_full_weights && params.count(key)) {
      torch::Tensor& dst = params[key];
      if (c10::IntArrayRef(t.shape) != dst.sizes())
        throw_bad_input(file.path(), "tensor '" + t.name + "' does not fit the model's " + key);
      torch::NoGradGuard ng;
      dst.copy_(finite_tensor(t, file.path()).to(dst.scalar_type()));
      rep.full_weights.push_back(key);
    } else {
      rep.unmatched.push_back(t.name);
    }
  }
  double file_alpha = 0;
  auto meta = file.metadata().find("lora_alpha");
  if (meta != file.metadata().end()) {
    const std::string& text = meta->second;
    double v = 0;
    if (!parse_decimal(text, &v))  // PEFT writes a decimal (strtod alone would take "0x10" = 16)
      throw_bad_input(file.path(), "metadata lora_alpha = '" + text + "' is not a number");
    file_alpha = checked_alpha(v, file.path(), "metadata lora_alpha");
  }
  for (const auto& [path, view] : alphas) {
    if (view->numel() != 1 || (!dtype_is_float(view->dtype) && view->dtype != DType::i64 && view->dtype != DType::i32))
      throw_bad_input(file.path(), "tensor '" + view->name + "' should hold one number (the layer's alpha)");
    if (pairs.lower_bound({path, ""}) == pairs.end() || pairs.lower_bound({path, ""})->first.first != path)
      throw_bad_input(file.path(), "tensor '" + view->name + "' is an alpha for a layer without lora_A/lora_B");
  }
  for (const auto& [where, pr] : pairs) {
    const auto& [path, adapter] = where;
    auto it = layers.find(path);
    if (it == layers.end()) throw_bad_input(file.path(), "LoRA for '" + path + "': no such LoRA-capable layer in the model");
    if (!pr.a || !pr.b) throw_bad_input(file.path(), "LoRA for '" + path + "' has only one of lora_A / lora_B");
    nn::LoraLayer* layer = it->second;
    check_lora_pair_shapes(file.path(), path, pr.a->name, pr.a->shape, pr.b->name, pr.b->shape);
    const int64_t r = pr.a->shape[0];
    if (c10::IntArrayRef(pr.a->shape) != c10::IntArrayRef(layer->a_shape(r)) ||
        c10::IntArrayRef(pr.b->shape) != c10::IntArrayRef(layer->b_shape(r)))
      throw_bad_input(file.path(), "LoRA for '" + path + "': lora_A/lora_B shapes do not fit the layer");
    double layer_alpha = 0;
    if (auto al = alphas.find(path); al != alphas.end())
      layer_alpha = checked_alpha(to_tensor(*al->second, file.path()).to(torch::kDouble).item<double>(), file.path(),
                                  "tensor '" + al->second->name + "'");
    const double alpha = opt.alpha > 0 ? opt.alpha : layer_alpha > 0 ? layer_alpha : file_alpha > 0 ? file_alpha : double(r);
    if (opt.alpha <= 0 && layer_alpha <= 0 && file_alpha <= 0) rep.alpha_guessed = true;
    layer->add_adapter(adapter, r, alpha);
    nn::LoraAdapter& a = layer->adapters[adapter];
    torch::NoGradGuard ng;
    a.A.copy_(finite_tensor(*pr.a, file.path()).to(a.A.scalar_type()));
    a.B.copy_(finite_tensor(*pr.b, file.path()).to(a.B.scalar_type()));
    a.user_scale = opt.scale;
    rep.adapters[adapter]++;
  }
  return rep;
}

void save_lora(torch::nn::Module& root, const std::string& name, const std::string& path, const std::string& prefix) {
  // The adapter's parameters as the module names them ("<module>.lora_A.<name>.weight"),
  // written under PEFT's save_pretrained names ("<module>.lora_A.weight").
  std::vector<torch::Tensor> keep;  // contiguous float32 copies alive until written
  std::vector<TensorToWrite> out;
  const std::string tag = "." + name;
  for (const auto& p : root.named_parameters(true)) {
    std::string adapter;
    if (!nn::is_lora_parameter(p.key(), &adapter) || adapter != name) continue;
    std::string key = p.key();
    key.erase(key.size() - std::string(".weight").size() - tag.size(), tag.size());
    keep.push_back(p.value().detach().to(torch::kCPU, torch::kFloat).contiguous());
    const torch::Tensor& t = keep.back();
    out.push_back({prefix + key, DType::f32, std::vector<int64_t>(t.sizes().begin(), t.sizes().end()), t.data_ptr(),
                   size_t(t.numel()) * 4});
  }
  if (out.empty()) throw Error(ExitCode::usage, "no layer has a LoRA adapter named '" + name + "'");
  // alpha and rank: PEFT's config holds one of each; layers that differ
  // (e.g. loaded from a file with per-layer alphas) also get a "<module>.alpha"
  // tensor, which load_lora reads.
  std::vector<std::pair<std::string, double>> alphas;
  std::set<double> distinct_alpha;
  std::set<int64_t> distinct_rank;
  for (auto& [p, layer] : nn::lora_layers(root)) {
    auto it = layer->adapters.find(name);
    if (it == layer->adapters.end()) continue;
    alphas.emplace_back(p, it->second.alpha);
    distinct_alpha.insert(it->second.alpha);
    distinct_rank.insert(it->second.rank);
  }
  if (alphas.empty()) throw Error(ExitCode::usage, "save_lora: the adapters must sit in LoRA layers below the module given");
  const double alpha = alphas.front().second;
  std::vector<float> alpha_values;
  if (distinct_alpha.size() > 1) {
    alpha_values.reserve(alphas.size());  // no reallocation: `out` points into it
    for (const auto& [p, a] : alphas) {
      alpha_values.push_back(float(a));
      out.push_back({prefix + p + ".alpha", DType::f32, {}, &alpha_values.back(), 4});
    }
  }
  std::map<std::string, std::string> meta = {{"format", "pt"}, {"lora_alpha", std::to_string(alpha)}};
  if (distinct_rank.size() == 1) meta["rank"] = std::to_string(*distinct_rank.begin());
  write_safetensors(path, out, meta);
}

LoraLoadReport load_lora_file(torch::nn::Module& root, const std::string& path, double scale, int index,
                              const std::string& what, const std::string& prog,
                              const std::function<void(const SafeTensorsFile&)>& before_load) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw_bad_input(path, "is a folder; --lora takes a .safetensors file");
  auto f = SafeTensorsFile::open(path);
  LoraLoadOptions opt;
  opt.scale = scale;
  opt.adapter = "lora" + std::to_string(index);
  detect_lora_layout(*f, opt);
  if (before_load) before_load(*f);
  LoraLoadReport r = load_lora(root, *f, opt);
  if (!r.unmatched.empty())
    throw_bad_input(path, std::to_string(r.unmatched.size()) + " tensor(s) fit no " + what + " layer or parameter, e.g. '" +
                              r.unmatched[0] + "' (is this a LoRA of this " + what + "?)");
  if (r.adapters.empty() && r.full_weights.empty()) throw_bad_input(path, "holds no LoRA adapter and no " + what + " weight");
  if (r.alpha_guessed && !prog.empty())
    std::fprintf(stderr, "%s: %s has no lora_alpha (metadata, adapter_config.json or per-layer alpha); assuming alpha = "
                         "rank (PEFT's default is 8, as OSEDiff/SCR checkpoints need: convert those with "
                         "scripts/convert_osediff.py)\n", prog.c_str(), printable_message(path).c_str());
  return r;
}

}  // namespace rass::model
