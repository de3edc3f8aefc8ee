// The torchvision AlexNet and VGG16 `features` stacks that the perceptual
// metrics tap (LPIPS: lpips/pretrained_networks.py; DISTS: DISTS_pt.py), cut
// into the reference's slices. Each conv (and each DISTS L2 pooling) is
// registered under its index in torchvision's `features`, so a slice's
// state-dict keys are the reference's ("net.slice2.3.weight", "stage2.4.filter").
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>

namespace rass::nn {

struct TrunkLayer {
  enum Kind { conv, relu, maxpool, l2pool } kind;
  int index;  // position in torchvision's `features`: the module's name
  int64_t in = 0, out = 0, kernel = 0, stride = 1, padding = 0;
};

// DISTS' L2pooling (filter_size 5): sqrt(conv(x^2, 3x3 Hann window, stride 2,
// pad 1, per channel) + 1e-12). The window is the buffer "filter" [C,1,3,3].
struct L2PoolImpl : torch::nn::Module {
  explicit L2PoolImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor filter;
};
TORCH_MODULE(L2Pool);

// One slice: its layers in order.
class FeatureSliceImpl : public torch::nn::Module {
 public:
  explicit FeatureSliceImpl(std::vector<TrunkLayer> layers);
  torch::Tensor forward(torch::Tensor x);
  // The output size of one spatial side of `in` pixels (0 when too small).
  int64_t out_size(int64_t in) const;

 private:
  std::vector<TrunkLayer> layers_;
  std::vector<torch::nn::Conv2d> convs_;  // per layer; null unless a conv
  std::vector<L2Pool> pools_;             // per layer; null unless an L2 pool
};
TORCH_MODULE(FeatureSlice);

// torchvision's conv widths (output channels in order): AlexNet 5, VGG16 13.
std::vector<int64_t> alexnet_widths();
std::vector<int64_t> vgg16_widths();
// LPIPS's five AlexNet slices (taps after relu1..relu5). `widths` as above;
// tests pass narrow ones (the conv geometry stays torchvision's).
std::vector<std::vector<TrunkLayer>> alexnet_slices(const std::vector<int64_t>& widths);
// VGG16's five slices (taps relu1_2, relu2_2, relu3_3, relu4_3, relu5_3): LPIPS
// with max pooling, DISTS (`l2pool`) with L2 pooling in place of each max pool.
std::vector<std::vector<TrunkLayer>> vgg16_slices(const std::vector<int64_t>& widths, bool l2pool);

// The slices registered on `parent` as <prefix>1, <prefix>2, ...
std::vector<FeatureSlice> add_slices(torch::nn::Module& parent, const std::string& prefix,
                                     const std::vector<std::vector<TrunkLayer>>& slices);
// The smallest square input side every slice accepts (at least 1 pixel out).
int64_t min_input_side(const std::vector<FeatureSlice>& slices);

}  // namespace rass::nn
