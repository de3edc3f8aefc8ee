#include "rass/model/iqa_dists.hpp"

#include <algorithm>

#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/degrade/pil_resize.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/iqa_common.hpp"

namespace rass::model {

nn::Dists load_dists(const std::string& path, torch::Device device) {
  const auto file = open_iqa_weights(path);
  nn::Dists net(stored_trunk_widths(*file, path, "stage", nn::vgg16_slices(nn::vgg16_widths(), true)));
  load_state_dict(*net, *file);
  check_finite_weights(*net, *file);
  net->to(device);
  return net;
}

namespace {

// The DISTS repository's prepare_image(resize=True): an image whose smaller
// side exceeds 256 is resized (PIL bilinear, through torchvision's resize) to
// 256 on that side and int(256 * long / short) on the other.
std::vector<Image> official_resize(const std::vector<const Image*>& images) {
  std::vector<Image> out;
  for (const Image* im : images) {
    const int w = im->width, h = im->height, s = std::min(w, h), l = std::max(w, h);
    if (s <= 256) {
      out.push_back(*im);
      continue;
    }
    const int long_side = int(256.0 * l / s);
    out.push_back(pil_resize(*im, w <= h ? 256 : long_side, w <= h ? long_side : 256, PilFilter::bilinear));
  }
  return out;
}

class DistsScorer : public metrics::DeepIqaScorer {
 public:
  DistsScorer(nn::Dists net, torch::Device device, bool resize)
      : net_(std::move(net)), device_(device), resize_(resize) {}

  std::vector<metrics::IqaValue> score(const std::vector<const Image*>& pred_in, const std::vector<const Image*>& gt_in,
                                       const std::vector<std::string>&) const override {
    std::vector<Image> resized_pred, resized_gt;
    std::vector<const Image*> pred = pred_in, gt = gt_in;
    if (resize_) {
      resized_pred = official_resize(pred_in);
      resized_gt = official_resize(gt_in);
      for (size_t i = 0; i < pred.size(); ++i) pred[i] = &resized_pred[i], gt[i] = &resized_gt[i];
    }
    torch::InferenceMode guard;
    // RGB / 255 (torchvision's to_tensor), at full resolution unless resize_.
    const torch::Tensor x = images_to_tensor(pred).to(device_);
    const torch::Tensor y = images_to_tensor(gt).to(device_);
    const torch::Tensor d = net_->forward(x, y).to(torch::kCPU, torch::kDouble).contiguous();
    std::vector<metrics::IqaValue> out(pred.size());
    for (size_t i = 0; i < out.size(); ++i) out[i].value = d[int64_t(i)].item<double>();
    return out;
  }

 private:
  mutable nn::Dists net_;  // forward() changes no state (InferenceMode): shared by the workers
  torch::Device device_;
  bool resize_;
};

template <bool kResize>
std::unique_ptr<metrics::DeepIqaScorer> load_scorer(const metrics::DeepIqaOptions& opt) {
  const torch::Device device = iqa_device(opt);
  const std::string path = iqa_weights_file(opt, "dists.safetensors", "scripts/convert_iqa_dists.py");
  return std::make_unique<DistsScorer>(load_dists(path, device), device, kResize);
}

}  // namespace

void register_dists_metric() {
  metrics::register_deep_iqa_metric({"dists", true,
                                     "DISTS, pyiqa 'dists' = DISTS-pytorch 0.1 (pip) script: RGB/255, full resolution",
                                     "dists.safetensors", true, &load_scorer<false>});
  metrics::register_deep_iqa_metric(
      {"dists@official", true,
       "DISTS, the DISTS repository's test script: smaller side > 256 resized to 256 (PIL bilinear), RGB/255",
       "dists.safetensors", true, &load_scorer<true>});
}

}  // namespace rass::model
