#include "rass/model/iqa_common.hpp"

#include <sys/stat.h>

#include <torch/cuda.h>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/folder_check.hpp"
#include "rass/model/device.hpp"
#include "rass/nn/threads.hpp"

namespace rass::model {

torch::Device iqa_device(const metrics::DeepIqaOptions& options) {
  const torch::Device d = parse_device(options.device);
  nn::set_cpu_threads(options.threads);
  return d;
}

std::shared_ptr<SafeTensorsFile> open_iqa_weights(const std::string& path) {
  auto file = SafeTensorsFile::open(path);
  for (const TensorView& t : file->tensors())
    if (!dtype_is_float(t.dtype))
      throw_bad_input(path, "tensor '" + t.name + "' is " + dtype_name(t.dtype) +
                                "; a metric's weights are floats (F32, F16, BF16 or F64)");
  return file;
}

void check_finite_weights(const torch::nn::Module& module, const SafeTensorsFile& file) {
  torch::NoGradGuard no_grad;
  auto check = [&](const std::string& name, const torch::Tensor& t) {
    if (file.find(name) && t.is_floating_point() && !torch::isfinite(t).all().item<bool>())
      throw_bad_input(file.path(), "tensor '" + name + "' holds NaN or infinity: a damaged weight file");
  };
  for (const auto& p : module.named_parameters()) check(p.key(), p.value());
  for (const auto& b : module.named_buffers()) check(b.key(), b.value());
}

std::string iqa_weights_file(const metrics::DeepIqaOptions& options, const std::string& file,
                             const std::string& converter) {
  const std::string& dir = options.weights_dir;
  require_folder(dir, "--weights or RASS_IQA_WEIGHTS: the folder of the metrics' weight files");
  const std::string path = dir.back() == '/' ? dir + file : dir + "/" + file;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    throw_bad_input(path, "missing; make it from the official weights with " + converter + " (see the README)");
  return path;
}

torch::Tensor images_to_tensor(const std::vector<const Image*>& images) {
  if (images.empty()) throw_runtime("images_to_tensor: no images");
  const int w = images[0]->width, h = images[0]->height;
  torch::Tensor out = torch::empty({int64_t(images.size()), 3, h, w}, torch::kFloat);
  for (size_t n = 0; n < images.size(); ++n) {
    const Image& im = *images[n];
    if (im.width != w || im.height != h) throw_runtime("images_to_tensor: images of different sizes in one batch");
    if (im.depth != 8 || (im.channels != 1 && im.channels != 3))
      throw_runtime("images_to_tensor: expected 8-bit gray or RGB images");
    const torch::Tensor u8 = torch::from_blob(const_cast<uint8_t*>(im.u8()), {h, w, im.channels}, torch::kUInt8);
    // value / 255 in float, as torchvision's to_tensor (pyiqa's loader) divides.
    out[int64_t(n)].copy_(u8.permute({2, 0, 1}).expand({3, h, w}).to(torch::kFloat).div(255));
  }
  return out;
}

std::vector<int64_t> stored_trunk_widths(const SafeTensorsFile& file, const std::string& path,
                                         const std::string& prefix,
                                         const std::vector<std::vector<nn::TrunkLayer>>& layout) {
  std::vector<int64_t> widths;
  for (size_t k = 0; k < layout.size(); ++k)
    for (const nn::TrunkLayer& l : layout[k]) {
      if (l.kind != nn::TrunkLayer::conv) continue;
      const std::string key = prefix + std::to_string(k + 1) + "." + std::to_string(l.index) + ".weight";
      const TensorView* v = file.find(key);
      if (!v || v->shape.size() != 4)
        throw_bad_input(path, "has no 4-d tensor '" + key + "' (not a converted weight file of this metric?)");
      widths.push_back(v->shape[0]);
    }
  return widths;
}

}  // namespace rass::model
