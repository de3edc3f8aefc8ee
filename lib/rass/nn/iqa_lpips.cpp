#include "rass/nn/iqa_lpips.hpp"

namespace rass::nn {

namespace {

// A module holding one child, for the official key paths (scaling_layer.shift,
// lin0.model.1.weight) that nest plain tensors and convs one level deeper.
struct HolderImpl : torch::nn::Module {};
TORCH_MODULE(Holder);

// lpips.normalize_tensor: x / (||x||_2 over channels + 1e-10).
torch::Tensor unit_channels(const torch::Tensor& x) {
  const torch::Tensor norm = torch::sqrt(torch::sum(x.pow(2), 1, /*keepdim=*/true));
  return x / (norm + 1e-10);
}

}  // namespace

LpipsImpl::LpipsImpl(LpipsTrunk trunk, std::vector<int64_t> widths) {
  if (widths.empty()) widths = trunk == LpipsTrunk::alex ? alexnet_widths() : vgg16_widths();
  // The official ScalingLayer's constants (they are also in the weight file).
  Holder scaling = register_module("scaling_layer", Holder());
  shift = scaling->register_buffer("shift", torch::tensor({-.030f, -.088f, -.188f}).view({1, 3, 1, 1}));
  scale = scaling->register_buffer("scale", torch::tensor({.458f, .448f, .450f}).view({1, 3, 1, 1}));
  Holder net = register_module("net", Holder());
  const auto layout = trunk == LpipsTrunk::alex ? alexnet_slices(widths) : vgg16_slices(widths, false);
  slices = add_slices(*net, "slice", layout);
  min_side_ = min_input_side(slices);
  // Each tap's channels: the last conv of its slice.
  for (size_t k = 0; k < layout.size(); ++k) {
    int64_t channels = 0;
    for (const TrunkLayer& l : layout[k])
      if (l.kind == TrunkLayer::conv) channels = l.out;
    // NetLinLayer(use_dropout=True): Sequential(Dropout, Conv2d 1x1 no bias),
    // so the conv is "model.1"; dropout is the identity at evaluation.
    Holder lin = register_module("lin" + std::to_string(k), Holder());
    Holder model = lin->register_module("model", Holder());
    lins.push_back(model->register_module(
        "1", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, 1, 1).bias(false))));
  }
  for (torch::Tensor& p : parameters()) p.set_requires_grad(false);
  eval();
}

torch::Tensor LpipsImpl::forward(const torch::Tensor& x, const torch::Tensor& y) {
  torch::Tensor a = (x - shift) / scale, b = (y - shift) / scale;
  torch::Tensor val;
  for (size_t k = 0; k < slices.size(); ++k) {
    a = slices[k]->forward(a);
    b = slices[k]->forward(b);
    const torch::Tensor diff = (unit_channels(a) - unit_channels(b)).pow(2);
    const torch::Tensor res = lins[k]->forward(diff).mean({2, 3}, /*keepdim=*/true);
    val = k == 0 ? res : val + res;
  }
  return val.reshape({-1});
}

}  // namespace rass::nn
