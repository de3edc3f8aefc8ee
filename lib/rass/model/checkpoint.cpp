#include "rass/model/checkpoint.hpp"

#include <cstring>
#include <map>
#include <sstream>

#include <torch/torch.h>

#include "rass/core/error.hpp"

namespace rass::model {

namespace {
std::string shape_str(c10::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  return o.str() + "]";
}

torch::ScalarType scalar_type(StDType t) {
  switch (t) {
    case StDType::F32: return torch::kFloat;
    case StDType::F16: return torch::kHalf;
    case StDType::BF16: return torch::kBFloat16;
    case StDType::F64: return torch::kDouble;
    case StDType::I64: return torch::kLong;
    case StDType::I32: return torch::kInt;
    case StDType::I16: return torch::kShort;
    case StDType::I8: return torch::kChar;
    case StDType::U8: return torch::kByte;
    case StDType::BOOL: return torch::kBool;
    default: return torch::ScalarType::Undefined;
  }
}
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
  const torch::ScalarType st = scalar_type(v.dtype);
  if (st == torch::ScalarType::Undefined)
    throw_bad_input(file, "tensor '" + v.name + "' has dtype " + st_dtype_name(v.dtype) + ", which LibTorch 1.13 cannot hold");
  // from_blob does not copy: clone so the tensor outlives the mapping.
  return torch::from_blob(const_cast<uint8_t*>(v.data), v.shape, torch::TensorOptions().dtype(st)).clone();
}

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
    if (ignorable.count(key)) continue;
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

}  // namespace rass::model
