#include "rass/train/pretrain_export.hpp"

#include <filesystem>
#include <vector>

#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/component.hpp"
#include "rass/model/model_folder.hpp"

namespace fs = std::filesystem;

namespace rass::train {

void export_component_folder(const std::string& sd_dir, const std::string& dst, const std::string& component,
                             const torch::nn::Module& module, const std::string& writer) {
  model::FolderWriter w(dst, model::FolderWriter::Existing::replace);
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
  w.commit();  // replaces an earlier export only once this one is complete
}

}  // namespace rass::train
