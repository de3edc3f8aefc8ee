#include "rass/model/iqa_lpips.hpp"

#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/iqa_common.hpp"

namespace rass::model {

nn::Lpips load_lpips(const std::string& path, torch::Device device, const nn::LpipsTrunk* expect) {
  const auto file = open_iqa_weights(path);
  if (!file->find("net.slice1.0.weight"))
    throw_bad_input(path, "is not an LPIPS weight file (no net.slice1.0.weight; scripts/convert_iqa_lpips.py writes one)");
  // VGG16's first slice has two convs (0 and 2); AlexNet's one.
  const nn::LpipsTrunk trunk = file->find("net.slice1.2.weight") ? nn::LpipsTrunk::vgg : nn::LpipsTrunk::alex;
  const auto name = [](nn::LpipsTrunk t) { return t == nn::LpipsTrunk::alex ? "AlexNet" : "VGG16"; };
  if (expect && *expect != trunk)
    throw_bad_input(path, std::string("holds an LPIPS ") + name(trunk) + " trunk; expected " + name(*expect));
  const auto layout = trunk == nn::LpipsTrunk::alex ? nn::alexnet_slices(nn::alexnet_widths())
                                                    : nn::vgg16_slices(nn::vgg16_widths(), false);
  nn::Lpips net(trunk, stored_trunk_widths(*file, path, "net.slice", layout));
  load_state_dict(*net, *file);
  check_finite_weights(*net, *file);
  net->to(device);
  return net;
}

namespace {

class LpipsScorer : public metrics::DeepIqaScorer {
 public:
  LpipsScorer(nn::Lpips net, torch::Device device, std::string name)
      : net_(std::move(net)), device_(device), name_(std::move(name)) {}

  std::vector<metrics::IqaValue> score(const std::vector<const Image*>& pred, const std::vector<const Image*>& gt,
                                       const std::vector<std::string>&) const override {
    const int w = pred.at(0)->width, h = pred[0]->height;
    if (std::min(w, h) < net_->min_side())
      throw Error(ExitCode::bad_input, "the image is " + std::to_string(w) + "x" + std::to_string(h) + "; " + name_ +
                                           " needs at least " + std::to_string(net_->min_side()) + " pixels a side");
    torch::InferenceMode guard;
    // pyiqa's convention: RGB / 255 in [0,1], then the official normalize=True: 2 v - 1.
    const torch::Tensor x = images_to_tensor(pred).to(device_) * 2 - 1;
    const torch::Tensor y = images_to_tensor(gt).to(device_) * 2 - 1;
    const torch::Tensor d = net_->forward(x, y).to(torch::kCPU, torch::kDouble).contiguous();
    std::vector<metrics::IqaValue> out(pred.size());
    for (size_t i = 0; i < out.size(); ++i) out[i].value = d[int64_t(i)].item<double>();
    return out;
  }

 private:
  mutable nn::Lpips net_;  // forward() changes no state (no batch norm, InferenceMode): shared by the workers
  torch::Device device_;
  std::string name_;
};

template <nn::LpipsTrunk kTrunk>
std::unique_ptr<metrics::DeepIqaScorer> load_scorer(const metrics::DeepIqaOptions& opt) {
  const bool alex = kTrunk == nn::LpipsTrunk::alex;
  const torch::Device device = iqa_device(opt);
  const std::string path = iqa_weights_file(opt, alex ? "lpips_alex.safetensors" : "lpips_vgg.safetensors",
                                            std::string("scripts/convert_iqa_lpips.py ") + (alex ? "alex" : "vgg"));
  const nn::LpipsTrunk want = kTrunk;
  return std::make_unique<LpipsScorer>(load_lpips(path, device, &want), device, alex ? "lpips" : "lpips-vgg");
}

}  // namespace

void register_lpips_metric() {
  metrics::register_deep_iqa_metric(
      {"lpips", true,
       "LPIPS v0.1 AlexNet, official lpips package = pyiqa 'lpips': RGB/255, 2v-1, full resolution, spatial mean",
       "lpips_alex.safetensors", true, &load_scorer<nn::LpipsTrunk::alex>});
  metrics::register_deep_iqa_metric(
      {"lpips-vgg", true,
       "LPIPS v0.1 VGG16, official lpips package = pyiqa 'lpips-vgg': RGB/255, 2v-1, full resolution, spatial mean",
       "lpips_vgg.safetensors", true, &load_scorer<nn::LpipsTrunk::vgg>});
}

}  // namespace rass::model
