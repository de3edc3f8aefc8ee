#include "rass/model/lora_inventory.hpp"

#include <cerrno>
#include <cstdlib>
#include <regex>

#include "rass/core/decimal.hpp"
#include "rass/core/error.hpp"
#include "rass/model/lora_io.hpp"

namespace rass::model {

std::string module_kind(const std::string& path) {
  for (const char* tail : {"to_out.0", "ff.net.0.proj", "ff.net.2"}) {
    const std::string t = std::string(".") + tail;
    if (path.size() > t.size() && path.compare(path.size() - t.size(), t.size(), t) == 0) return tail;
  }
  const size_t dot = path.rfind('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

std::string module_region(const std::string& path) { return path.substr(0, path.find('.')); }

LoraInventory lora_inventory(const SafeTensorsFile& file) {
  if (file.tensors().empty()) throw_bad_input(file.path(), "holds no tensors (not a LoRA file)");
  LoraLoadOptions opt;
  detect_lora_layout(file, opt);
  LoraInventory inv;
  inv.file = file.path();
  inv.prefix = opt.prefix;
  static const std::regex peft(R"(^(.*)\.lora_([AB])(?:\.([^.]+))?\.weight$)");
  static const std::regex legacy(R"(^(.*)\.lora\.(down|up)\.weight$)");
  static const std::regex processor(R"(^(.*)\.processor\.(to_q|to_k|to_v|to_out)_lora\.(down|up)\.weight$)");
  static const std::regex alpha_key(R"(^(.*)\.alpha$)");
  std::map<std::pair<std::string, std::string>, size_t> index;  // (path, adapter) -> layers[i]
  std::map<std::string, double> layer_alpha;
  std::set<std::string> layouts;
  auto layer = [&](const std::string& path, const std::string& adapter) -> LoraInventory::Layer& {
    auto [it, fresh] = index.emplace(std::make_pair(path, adapter), inv.layers.size());
    if (fresh) inv.layers.push_back({path, adapter, {}, {}, {}, {}});
    return inv.layers[it->second];
  };
  for (const TensorView& t : file.tensors()) {
    if (t.name.compare(0, opt.prefix.size(), opt.prefix) != 0) {
      inv.other.push_back(t.name);
      continue;
    }
    std::string key = t.name.substr(opt.prefix.size());
    const size_t bl = key.find(".base_layer.");
    std::smatch m;
    if (bl == std::string::npos && std::regex_match(key, m, peft)) {
      layouts.insert(m[3].matched ? "PEFT (adapter names)" : "PEFT save_pretrained (no adapter names)");
      auto& l = layer(m[1], m[3].matched ? m[3].str() : "default");
      (m[2] == "A" ? l.a_shape : l.b_shape) = t.shape;
      (m[2] == "A" ? l.a_name : l.b_name) = t.name;
    } else if (std::regex_match(key, m, legacy)) {
      layouts.insert("diffusers legacy (lora.down/lora.up)");
      auto& l = layer(m[1], "default");
      (m[2] == "down" ? l.a_shape : l.b_shape) = t.shape;
      (m[2] == "down" ? l.a_name : l.b_name) = t.name;
    } else if (std::regex_match(key, m, processor)) {
      layouts.insert("diffusers attention processors");
      auto& l = layer(m[1].str() + "." + (m[2] == "to_out" ? std::string("to_out.0") : m[2].str()), "default");
      (m[3] == "down" ? l.a_shape : l.b_shape) = t.shape;
      (m[3] == "down" ? l.a_name : l.b_name) = t.name;
    } else if (bl == std::string::npos && std::regex_match(key, m, alpha_key) && t.numel() == 1) {
      layer_alpha[m[1]] = 0;  // read below, once the value is needed
    } else if (bl != std::string::npos || key.find("lora") == std::string::npos) {
      if (bl != std::string::npos) key.erase(bl, std::string(".base_layer").size());
      inv.full_weights.emplace_back(key, t.numel());
    } else {
      inv.other.push_back(t.name);
    }
  }
  inv.layout.clear();
  for (const auto& l : layouts) inv.layout += (inv.layout.empty() ? "" : ", ") + l;
  for (auto& [path, v] : layer_alpha) {
    const TensorView* t = file.find(opt.prefix + path + ".alpha");
    if (t->dtype == DType::f32) v = *reinterpret_cast<const float*>(t->data);
    else if (t->dtype == DType::f64) v = *reinterpret_cast<const double*>(t->data);
    else if (t->dtype == DType::i64) v = double(*reinterpret_cast<const int64_t*>(t->data));
    else if (t->dtype == DType::i32) v = double(*reinterpret_cast<const int32_t*>(t->data));
    else v = -1;  // f16/bf16 alphas: shown as unreadable here; load_lora reads them
  }
  double meta_alpha = 0;
  if (auto it = file.metadata().find("lora_alpha"); it != file.metadata().end()) {
    // Not a decimal: load_lora refuses the file; listed here as no alpha (0).
    if (!parse_decimal(it->second, &meta_alpha)) meta_alpha = 0;
  }
  for (const auto& l : inv.layers) {
    if (l.a_name.empty() || l.b_name.empty())
      throw_bad_input(file.path(), "LoRA for '" + l.path + "' has only one of lora_A / lora_B");
    check_lora_pair_shapes(file.path(), l.path, l.a_name, l.a_shape, l.b_name, l.b_shape);  // as load_lora refuses
    auto& a = inv.adapters[l.adapter];
    const int64_t r = l.a_shape[0];
    a.ranks.insert(r);
    a.layers.push_back(l.path);
    int64_t n = 1, m = 1;
    for (int64_t d : l.a_shape) n *= d;
    for (int64_t d : l.b_shape) m *= d;
    a.parameters += n + m;
    // load_lora's precedence: adapter_config.json, the layer's alpha tensor, metadata, rank.
    if (opt.alpha > 0) {
      a.alphas.insert(opt.alpha);
      a.alpha_source = "adapter_config.json";
    } else if (layer_alpha.count(l.path)) {
      a.alphas.insert(layer_alpha[l.path]);
      a.alpha_source = "per-layer alpha tensors";
    } else if (meta_alpha > 0) {
      a.alphas.insert(meta_alpha);
      if (a.alpha_source.empty()) a.alpha_source = "metadata lora_alpha";
    } else {
      a.alphas.insert(double(r));
      a.alpha_source = "none recorded: alpha = rank assumed; PEFT's own default is 8";
    }
  }
  return inv;
}

nlohmann::ordered_json inventory_json(const LoraInventory& inv) {
  using json = nlohmann::ordered_json;
  json j = {{"file", inv.file}, {"prefix", inv.prefix}, {"layout", inv.layout}};
  json ads = json::object();
  for (const auto& [name, a] : inv.adapters) {
    std::map<std::string, int> kinds, regions;
    for (const auto& p : a.layers) {
      kinds[module_kind(p)]++;
      regions[module_region(p)]++;
    }
    ads[name] = {{"ranks", a.ranks},       {"alphas", a.alphas},   {"alpha_source", a.alpha_source},
                 {"layers", a.layers.size()}, {"parameters", a.parameters}, {"by_module", kinds},
                 {"by_region", regions},   {"targets", a.layers}};
  }
  j["adapters"] = ads;
  json full = json::array();
  for (const auto& [name, n] : inv.full_weights) full.push_back({{"name", name}, {"elements", n}});
  j["full_weights"] = full;
  j["other"] = inv.other;
  return j;
}

}  // namespace rass::model
