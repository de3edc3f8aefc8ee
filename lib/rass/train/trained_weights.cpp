#include "rass/train/trained_weights.hpp"

#include <filesystem>
#include <vector>

#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/version.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/model_folder.hpp"

namespace fs = std::filesystem;

namespace rass::train {

std::map<std::string, torch::Tensor> cpu_float_parameters(torch::nn::Module& m, const std::string& prefix) {
  torch::NoGradGuard ng;
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : m.named_parameters(true))
    out[prefix + p.key()] = p.value().detach().to(torch::kCPU, torch::kFloat).contiguous();
  return out;
}

void write_trained_weights(const std::string& start_path, const std::map<std::string, torch::Tensor>& trained,
                           const std::string& out_path, const std::string& note, const std::string& what,
                           const std::map<std::string, std::string>& metadata) {
  if (start_path.empty()) {
    std::vector<TensorToWrite> out;
    for (const auto& [name, t] : trained)  // cpu_float_parameters': contiguous float32 on the CPU
      out.push_back({name, DType::f32, t.sizes().vec(), t.data_ptr(), size_t(t.nbytes())});
    std::map<std::string, std::string> meta = metadata;
    meta["format"] = "pt";
    meta["rass"] = note;
    write_safetensors(out_path, out, meta);
    return;
  }
  const auto start = SafeTensorsFile::open(start_path);
  std::vector<TensorToWrite> out;
  size_t replaced = 0;
  for (const TensorView& v : start->tensors()) {
    auto it = trained.find(v.name);
    if (it == trained.end()) {
      out.push_back({v.name, v.dtype, v.shape, v.data, v.nbytes});
      continue;
    }
    const torch::Tensor& t = it->second;
    if (t.sizes().vec() != v.shape) throw_runtime(what + " export: " + v.name + " has another shape than " + start_path + "'s");
    out.push_back({v.name, DType::f32, v.shape, t.data_ptr(), size_t(t.nbytes())});
    ++replaced;
  }
  if (replaced != trained.size())
    throw_runtime(what + " export: " + std::to_string(trained.size() - replaced) + " trained tensors are not in " +
                  start_path);
  std::map<std::string, std::string> meta = start->metadata();
  meta["rass"] = note;
  write_safetensors(out_path, out, meta);
}

void export_samsr_folder(const std::string& dir, const std::string& base, const std::string& sam_dir,
                         const std::string& unet_start, const std::map<std::string, torch::Tensor>& trained,
                         nlohmann::ordered_json config, bool cap_etas_start, const std::string& what) {
  model::FolderWriter w(dir, model::FolderWriter::Existing::replace);
  const fs::path tmp = w.tmp();
  w.link_tree(base, "", {"unet.safetensors", "samsr.json", "sam"});
  if (!sam_dir.empty()) w.link_tree(sam_dir, "sam");
  const std::string source = "rass-train " + what + " " + rass::version() + " from " + base;
  write_trained_weights(unet_start, trained, (tmp / "unet.safetensors").string(), source, what);
  if (!config.contains("diffusion") || !config["diffusion"].is_object()) config["diffusion"] = nlohmann::ordered_json::object();
  config["diffusion"]["cap_etas_start"] = cap_etas_start;
  config["source"] = source;
  write_file_atomic((tmp / "samsr.json").string(), json_file_text(config, (tmp / "samsr.json").string(), 1) + "\n");
  w.commit();
}

}  // namespace rass::train
