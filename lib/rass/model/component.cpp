#include "rass/model/component.hpp"

#include <filesystem>
#include <map>
#include <mutex>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/found_file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/config.hpp"
#include "rass/model/torch_error.hpp"
#include "rass/nn/clip_text.hpp"
#include "rass/nn/unet.hpp"
#include "rass/nn/vae.hpp"

namespace fs = std::filesystem;

namespace rass::model {

namespace {
const nlohmann::ordered_json& user_config(const std::string& path) {
  static std::mutex lock;
  static std::map<std::string, nlohmann::ordered_json> read;
  const std::lock_guard<std::mutex> g(lock);
  auto it = read.find(path);
  if (it == read.end()) it = read.emplace(path, read_json_file(path)).first;
  return it->second;
}

std::string kind_of(const nlohmann::ordered_json& j, const std::string& config_path) {
  const std::string cls = j.is_object() ? j.value("_class_name", std::string()) : std::string();
  if (cls == "UNet2DConditionModel") return "unet";
  if (cls == "AutoencoderKL") return "vae";
  if (j.is_object() && j.contains("architectures") && j["architectures"].is_array())
    for (const auto& a : j["architectures"])
      if (a.is_string() && a.get<std::string>() == "CLIPTextModel") return "text_encoder";
  if (j.is_object() && j.value("model_type", std::string()) == "clip_text_model") return "text_encoder";
  throw_bad_input(config_path, "the config names no class this tool builds (UNet2DConditionModel, AutoencoderKL, "
                               "CLIPTextModel)" + (cls.empty() ? std::string() : ": _class_name is " + cls));
}
}  // namespace

std::string canonical_weight_name(const std::string& kind) {
  return kind == "text_encoder" ? "model.safetensors" : "diffusion_pytorch_model.safetensors";
}

ComponentFiles find_component(const ComponentSource& src) {
  ComponentFiles f;
  std::error_code ec;
  if (src.path.empty()) throw_usage("no base weights given");
  if (!fs::exists(src.path, ec)) throw_bad_input(src.path, "no such file or folder");
  if (fs::is_directory(src.path, ec)) {
    if (file_exists(path_join(src.path, "config.json")) && !fs::is_directory(path_join(src.path, src.component), ec)) {
      f.dir = src.path;  // a component folder itself
    } else {
      f.dir = path_join(src.path, src.component);
      if (!fs::is_directory(f.dir, ec))
        throw_bad_input(src.path, "no " + src.component + "/ component folder (and no config.json: not a component folder)");
      f.model_dir = src.path;
    }
    f.config_path = src.config.empty() ? path_join(f.dir, "config.json") : src.config;
    if (!file_exists(f.config_path)) throw_bad_input(f.dir, "no config.json");
    f.weights = component_weight_files(f.dir);
  } else {
    f.weights = {src.path};
    f.config_path = src.config;
    if (f.config_path.empty()) {
      const std::string sibling = (fs::path(src.path).parent_path() / "config.json").string();
      if (!file_exists(sibling))
        throw_usage(src.path + ": a lone weights file needs --config CONFIG.json (no config.json beside it)");
      f.config_path = sibling;
    }
  }
  // The config a folder holds is found (a FIFO there would block: refused);
  // one the user names (--config) is read as given, once per run: a tool
  // resolves its base more than once (guarding its outputs, then loading),
  // and `--config <(...)` is a pipe.
  f.config = src.config.empty() ? read_found_json(f.config_path) : user_config(f.config_path);
  f.kind = kind_of(f.config, f.config_path);
  return f;
}

LoadedComponent load_component_module(const ComponentSource& src) {
  LoadedComponent c;
  c.files = find_component(src);
  const std::string& cfg = c.files.config_path;
  const nlohmann::json j(c.files.config);
  if (c.files.kind == "unet") c.module = for_config(cfg, [&] { return nn::UNet2DCondition(read_unet_config(j, cfg)).ptr(); });
  else if (c.files.kind == "vae") c.module = for_config(cfg, [&] { return nn::AutoencoderKL(read_vae_config(j, cfg)).ptr(); });
  else {
    c.module = for_config(cfg, [&] { return nn::ClipTextModel(read_clip_text_config(j, cfg)).ptr(); });
    c.ignorable = {"text_model.embeddings.position_ids"};  // a buffer older transformers saved
  }
  // Every parameter from some file, nothing unexpected (the checks of load_component).
  std::set<std::string> seen;
  for (const std::string& w : c.files.weights) {
    c.opened.push_back(SafeTensorsFile::open(w));
    LoadReport r = load_state_dict(*c.module, *c.opened.back(), false, "", c.ignorable);
    if (!r.unexpected.empty() || !r.mismatched.empty()) {
      LoadReport bad;
      bad.unexpected = r.unexpected;
      bad.mismatched = r.mismatched;
      throw_bad_input(w, "does not fit the " + c.files.kind + " of " + cfg + ": " + bad.summary());
    }
    for (const TensorView& t : c.opened.back()->tensors()) seen.insert(t.name);
  }
  std::vector<std::string> missing;
  for (const auto& p : c.module->named_parameters(true))
    if (!seen.count(p.key())) missing.push_back(p.key());
  for (const auto& b : c.module->named_buffers(true))
    if (!seen.count(b.key())) missing.push_back(b.key());
  if (!missing.empty())
    throw_bad_input(c.files.weights.front(), std::to_string(missing.size()) + " tensor(s) of the " + c.files.kind +
                                                 " missing, e.g. '" + missing.front() + "'");
  c.module->eval();
  return c;
}

DType output_float_dtype(const std::string& name, DType original) {
  if (!dtype_is_float(original) || name.empty()) return original;
  if (name == "fp32") return DType::f32;
  if (name == "fp16") return DType::f16;
  if (name == "bf16") return DType::bf16;
  throw_usage("--dtype " + name + ": expected fp32, fp16 or bf16");
}

void write_component_weights(const LoadedComponent& c, const std::string& path, const std::string& dtype,
                             const std::map<std::string, std::string>& metadata) {
  std::map<std::string, torch::Tensor> own;
  for (const auto& p : c.module->named_parameters(true)) own[p.key()] = p.value();
  for (const auto& b : c.module->named_buffers(true)) own[b.key()] = b.value();
  std::vector<torch::Tensor> keep;
  std::vector<TensorToWrite> out;
  for (const auto& f : c.opened)
    for (const TensorView& t : f->tensors()) {
      auto it = own.find(t.name);
      if (it == own.end()) {  // ignorable: as it was
        out.push_back({t.name, t.dtype, t.shape, t.data, t.nbytes});
        continue;
      }
      const DType dt = output_float_dtype(dtype, t.dtype);
      const torch::ScalarType st = torch_dtype(dt);
      if (st == torch::ScalarType::Undefined)
        throw_bad_input(f->path(), "tensor '" + t.name + "' is " + dtype_name(dt) + ", which this tool cannot write back");
      torch::Tensor x = it->second.detach().to(torch::kCPU).to(st).contiguous();
      // Only what the conversion broke: a value already inf in the input stays so.
      // fp16 is the one output dtype narrower in range than the float32 weights.
      if (dt == DType::f16 && !torch::isfinite(x.to(torch::kFloat)).all().item<bool>() &&
          torch::isfinite(it->second).all().item<bool>())
        throw_bad_input(f->path(), "tensor '" + t.name + "' has values that are not finite in " + dtype_name(dt) +
                                       " (beyond its range); write bf16 or fp32 with --dtype");
      keep.push_back(x);
      out.push_back({t.name, dt, t.shape, x.data_ptr(), size_t(x.nbytes())});
    }
  write_safetensors(path, out, metadata);
}

}  // namespace rass::model
