#include "rass/model/checkpoint.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/found_file.hpp"
#include "rass/core/json_file.hpp"

namespace rass::model {

std::string shape_str(c10::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  return o.str() + "]";
}

namespace {

}  // namespace

torch::ScalarType torch_dtype(DType t) {
  switch (t) {
    case DType::f32: return torch::kFloat;
    case DType::f16: return torch::kHalf;
    case DType::bf16: return torch::kBFloat16;
    case DType::f64: return torch::kDouble;
    case DType::i64: return torch::kLong;
    case DType::i32: return torch::kInt;
    case DType::i16: return torch::kShort;
    case DType::i8: return torch::kChar;
    case DType::u8: return torch::kByte;
    case DType::b1: return torch::kBool;
    default: return torch::ScalarType::Undefined;
  }
}

DType file_dtype(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat: return DType::f32;
    case torch::kHalf: return DType::f16;
    case torch::kBFloat16: return DType::bf16;
    case torch::kDouble: return DType::f64;
    case torch::kLong: return DType::i64;
    case torch::kInt: return DType::i32;
    case torch::kShort: return DType::i16;
    case torch::kChar: return DType::i8;
    case torch::kByte: return DType::u8;
    case torch::kBool: return DType::b1;
    default: throw_runtime(std::string("torch dtype ") + c10::toString(t) + " has no file dtype");
  }
}

namespace {
// diffusers' deprecated attention block names (the SD 2.x VAE files on the hub
// still use them; diffusers renames them on load, and so do we):
// query/key/value/proj_attn -> to_q/to_k/to_v/to_out.0.
std::string modern_key(const std::string& key) {
  static const std::pair<const char*, const char*> renames[] = {
      {".query.", ".to_q."}, {".key.", ".to_k."}, {".value.", ".to_v."}, {".proj_attn.", ".to_out.0."}};
  if (key.find(".attentions.") == std::string::npos) return key;
  for (const auto& [from, to] : renames) {
    const size_t p = key.rfind(from);
    if (p != std::string::npos && key.find('.', p + std::strlen(from)) == std::string::npos)
      return key.substr(0, p) + to + key.substr(p + std::strlen(from));
  }
  return key;
}

// A file tensor fits a parameter of the same shape, or a [C, C] linear weight
// stored as a [C, C, 1, 1] 1x1 convolution (older attention blocks).
bool fits(c10::IntArrayRef file, c10::IntArrayRef target) {
  if (file == target) return true;
  return file.size() == 4 && target.size() == 2 && file[2] == 1 && file[3] == 1 && file[0] == target[0] &&
         file[1] == target[1];
}
}  // namespace

std::string LoadReport::summary(size_t max_names) const {
  std::ostringstream o;
  auto list = [&](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    o << " " << v.size() << " " << what << ":";
    for (size_t i = 0; i < v.size() && i < max_names; ++i) o << " " << v[i];
    if (v.size() > max_names) o << " ...";
    o << ";";
  };
  list("missing", missing);
  list("unexpected", unexpected);
  list("mis-shaped", mismatched);
  return o.str();
}

torch::Tensor to_tensor(const TensorView& v, const std::string& file) {
  const torch::ScalarType st = torch_dtype(v.dtype);
  if (st == torch::ScalarType::Undefined)
    throw_bad_input(file, "tensor '" + v.name + "' has dtype " + dtype_name(v.dtype) + ", which LibTorch 1.13 cannot hold");
  // from_blob does not copy: clone so the tensor outlives the mapping.
  return torch::from_blob(const_cast<uint8_t*>(v.data), v.shape, torch::TensorOptions().dtype(st)).clone();
}

namespace {
// An ignorable entry ending in '*' names every key it begins ("decoder.*").
bool ignored_by_pattern(const std::string& key, const std::set<std::string>& ignorable) {
  for (const std::string& p : ignorable)
    if (!p.empty() && p.back() == '*' && key.compare(0, p.size() - 1, p, 0, p.size() - 1) == 0) return true;
  return false;
}
}  // namespace

LoadReport load_state_dict(torch::nn::Module& module, const SafeTensorsFile& file, bool strict, const std::string& prefix,
                           const std::set<std::string>& ignorable) {
  std::map<std::string, torch::Tensor> targets;
  for (const auto& p : module.named_parameters(true)) targets[p.key()] = p.value();
  for (const auto& b : module.named_buffers(true)) targets[b.key()] = b.value();
  LoadReport r;
  std::map<std::string, const TensorView*> source;
  for (const TensorView& t : file.tensors()) {
    if (t.name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string key = t.name.substr(prefix.size());
    if (ignorable.count(key) || ignored_by_pattern(key, ignorable)) continue;
    const std::string k = targets.count(key) ? key : modern_key(key);
    if (!targets.count(k)) r.unexpected.push_back(t.name);
    else source[k] = &t;
  }
  for (const auto& [key, tensor] : targets) {
    auto it = source.find(key);
    if (it == source.end()) {
      r.missing.push_back(prefix + key);
    } else if (!fits(it->second->shape, tensor.sizes())) {
      r.mismatched.push_back(prefix + key + ": file " + shape_str(it->second->shape) + " vs module " + shape_str(tensor.sizes()));
    }
  }
  if (strict && !r.complete()) throw_bad_input(file.path(), "does not fit the model:" + r.summary());
  torch::NoGradGuard no_grad;
  for (const auto& [key, view] : source) {
    torch::Tensor& dst = targets.at(key);
    if (!fits(view->shape, dst.sizes())) continue;
    dst.copy_(to_tensor(*view, file.path()).to(dst.scalar_type()).view(dst.sizes()));
    ++r.loaded;
  }
  return r;
}

void check_finite_parameters(torch::nn::Module& module, const std::string& file) {
  torch::NoGradGuard no_grad;
  auto check = [&](const std::string& name, const torch::Tensor& t) {
    if (t.defined() && t.is_floating_point() && !torch::isfinite(t).all().item<bool>())
      throw_bad_input(file, "tensor '" + name + "' holds non-finite values (NaN or infinity)");
  };
  for (const auto& p : module.named_parameters(true)) check(p.key(), p.value());
  for (const auto& b : module.named_buffers(true)) check(b.key(), b.value());
}

namespace {
namespace fs = std::filesystem;

std::vector<std::string> index_shards(const std::string& dir, const std::string& index_path) {
  const nlohmann::ordered_json index = read_found_json(index_path);
  std::set<std::string> shards;
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    throw_bad_input(index_path, "not a safetensors index: no \"weight_map\" object");
  for (const auto& [key, v] : index["weight_map"].items()) {
    if (!v.is_string()) throw_bad_input(index_path, "weight_map[\"" + key + "\"] is not a file name");
    const std::string name = v.get<std::string>();
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
      throw_bad_input(index_path, "weight_map[\"" + key + "\"] = \"" + name + "\" is not a file name in this folder");
    shards.insert(name);
  }
  if (shards.empty()) throw_bad_input(index_path, "weight_map names no shards");
  std::vector<std::string> out;
  for (const auto& s : shards) {
    const std::string p = dir + "/" + s;
    if (!file_exists(p)) throw_bad_input(index_path, "names shard " + s + ", which is not in " + dir);
    out.push_back(p);
  }
  // Each shard is read whole (here as by diffusers and transformers): a
  // tensor in two shards loaded from whichever came last, without a word.
  // The index and the shards must tell one story.
  const auto& map = index["weight_map"];
  std::map<std::string, std::string> holder;  // tensor -> the shard holding it
  for (const auto& s : shards) {
    const auto file = SafeTensorsFile::open(dir + "/" + s);  // alive while its tensors are read
    for (const TensorView& t : file->tensors()) {
      const auto [it, fresh] = holder.emplace(t.name, s);
      if (!fresh)
        throw_bad_input(index_path, "tensor '" + t.name + "' is in two shards, " + it->second + " and " + s +
                                        " (which one would load is a matter of order)");
      const auto w = map.find(t.name);
      if (w != map.end() && w->get<std::string>() != s)
        throw_bad_input(index_path, "weight_map places '" + t.name + "' in " + w->get<std::string>() + ", but " + s +
                                        " holds it (a damaged folder?)");
    }
  }
  for (const auto& [key, v] : map.items())
    if (!holder.count(key))
      throw_bad_input(index_path, "weight_map places '" + key + "' in " + v.get<std::string>() +
                                      ", which does not hold it (a damaged folder?)");
  return out;
}
}  // namespace

std::vector<std::string> component_weight_files(const std::string& dir, const std::string& variant) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw_bad_input(dir, "not a folder (expected a diffusers component folder)");
  const std::string v = variant.empty() ? "" : "." + variant;
  for (const char* base : {"diffusion_pytorch_model", "model"}) {
    const std::string single = dir + "/" + base + v + ".safetensors";
    if (file_exists(single)) return {single};
    // diffusers names a variant's index <base>.safetensors.index.<variant>.json.
    const std::string index = dir + "/" + base + ".safetensors.index" + v + ".json";
    if (file_exists(index)) return index_shards(dir, index);
  }
  std::vector<std::string> all;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".safetensors") all.push_back(e.path().filename().string());
  std::sort(all.begin(), all.end());
  if (!variant.empty())
    throw_bad_input(dir, "no weights of variant '" + variant + "' (diffusion_pytorch_model" + v +
                             ".safetensors, model" + v + ".safetensors or their .index" + v + ".json)");
  if (all.size() == 1) return {dir + "/" + all[0]};
  if (all.empty()) throw_bad_input(dir, "no .safetensors weights in this folder");
  std::string names;
  for (const auto& f : all) names += " " + f;
  throw_bad_input(dir, "several weight files and no canonical one (" + names.substr(1) +
                           "); choose one with --variant or rename it to diffusion_pytorch_model.safetensors");
}

void load_component(torch::nn::Module& m, const std::string& dir, const std::string& variant,
                    const std::set<std::string>& ignorable) {
  const auto files = component_weight_files(dir, variant);
  if (files.size() == 1) {
    load_state_dict(m, *SafeTensorsFile::open(files[0]), true, "", ignorable);
    return;
  }
  // Shards: each holds part of the model; a tensor is missing only if no shard has it.
  std::set<std::string> missing;
  bool first = true;
  LoadReport all;
  for (const auto& path : files) {
    LoadReport r = load_state_dict(m, *SafeTensorsFile::open(path), false, "", ignorable);
    std::set<std::string> ms(r.missing.begin(), r.missing.end());
    if (first) {
      missing = ms;
    } else {
      std::set<std::string> both;
      std::set_intersection(missing.begin(), missing.end(), ms.begin(), ms.end(), std::inserter(both, both.end()));
      missing = both;
    }
    first = false;
    all.unexpected.insert(all.unexpected.end(), r.unexpected.begin(), r.unexpected.end());
    all.mismatched.insert(all.mismatched.end(), r.mismatched.begin(), r.mismatched.end());
  }
  all.missing.assign(missing.begin(), missing.end());
  if (!all.complete()) throw_bad_input(dir, "the shards do not fit the model:" + all.summary());
}

}  // namespace rass::model
