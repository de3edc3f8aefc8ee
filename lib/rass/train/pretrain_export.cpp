#include "rass/train/pretrain_export.hpp"

#include <filesystem>
#include <vector>

#include <unistd.h>

#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/component.hpp"
#include "rass/model/model_folder.hpp"

namespace fs = std::filesystem;

namespace rass::train {

void export_component_folder(const std::string& sd_dir, const std::string& dst, const std::string& component,
                             const torch::nn::Module& module, const std::string& writer) {
  std::error_code ec;
  if (fs::exists(dst, ec) && !fs::is_directory(dst, ec)) throw_usage("export folder " + dst + " is a file");
  fs::path target = fs::path(dst).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();  // "out/" names the folder "out"
  if (target.empty()) throw_usage("export folder '" + dst + "' names no folder");
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::string staged = (parent / ("." + target.filename().string() + ".export-" + std::to_string(::getpid()))).string();
  fs::remove_all(staged, ec);
  {
    model::FolderWriter w(staged);
    w.link_tree(sd_dir, "", {component});
    w.copy_component_extras((fs::path(sd_dir) / component).string(), component);
    std::vector<torch::Tensor> keep;
    std::vector<TensorToWrite> out;
    auto add = [&](const std::string& name, const torch::Tensor& t) {
      keep.push_back(t.detach().to(torch::kCPU, torch::kFloat).contiguous());
      out.push_back({name, DType::f32, keep.back().sizes().vec(), keep.back().data_ptr(), size_t(keep.back().nbytes())});
    };
    const auto params = module.named_parameters(true), buffers = module.named_buffers(true);
    keep.reserve(params.size() + buffers.size());
    for (const auto& p : params) add(p.key(), p.value());
    for (const auto& b : buffers) add(b.key(), b.value());
    write_safetensors((fs::path(w.tmp()) / component / model::canonical_weight_name(component)).string(), out,
                      {{"format", "pt"}, {"writer", writer}});
    w.commit();
  }
  try {
    if (fs::exists(target, ec)) {
      const std::string old = staged + ".old";
      fs::rename(target, old);
      fs::rename(staged, target);
      fs::remove_all(old, ec);
    } else {
      fs::rename(staged, target);
    }
  } catch (...) {
    fs::remove_all(staged, ec);
    throw;
  }
}

}  // namespace rass::train
