#include "rass/nn/iqa_trunks.hpp"

#include <cmath>
#include <stdexcept>

#include <torch/nn/functional/conv.h>
#include <torch/nn/functional/pooling.h>

namespace rass::nn {

namespace F = torch::nn::functional;

L2PoolImpl::L2PoolImpl(int64_t channels) {
  // np.hanning(5)[1:-1] = [0.5, 1, 0.5]; outer product, normalised to sum 1.
  const double a[3] = {0.5, 1.0, 0.5};
  torch::Tensor g = torch::empty({3, 3}, torch::kDouble);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) g[i][j] = a[i] * a[j];
  g = (g / g.sum()).to(torch::kFloat);
  filter = register_buffer("filter", g.view({1, 1, 3, 3}).repeat({channels, 1, 1, 1}));
}

torch::Tensor L2PoolImpl::forward(const torch::Tensor& x) {
  const torch::Tensor out =
      F::conv2d(x.pow(2), filter, F::Conv2dFuncOptions().stride(2).padding(1).groups(x.size(1)));
  return (out + 1e-12).sqrt();
}

FeatureSliceImpl::FeatureSliceImpl(std::vector<TrunkLayer> layers) : layers_(std::move(layers)) {
  for (const TrunkLayer& l : layers_) {
    convs_.emplace_back(nullptr);
    pools_.emplace_back(nullptr);
    if (l.kind == TrunkLayer::conv)
      convs_.back() = register_module(std::to_string(l.index),
                                      torch::nn::Conv2d(torch::nn::Conv2dOptions(l.in, l.out, l.kernel)
                                                            .stride(l.stride)
                                                            .padding(l.padding)));
    else if (l.kind == TrunkLayer::l2pool)
      pools_.back() = register_module(std::to_string(l.index), L2Pool(l.in));
  }
}

torch::Tensor FeatureSliceImpl::forward(torch::Tensor x) {
  for (size_t i = 0; i < layers_.size(); ++i) {
    const TrunkLayer& l = layers_[i];
    switch (l.kind) {
      case TrunkLayer::conv: x = convs_[i]->forward(x); break;
      case TrunkLayer::relu: x = torch::relu(x); break;
      case TrunkLayer::maxpool: x = F::max_pool2d(x, F::MaxPool2dFuncOptions(l.kernel).stride(l.stride)); break;
      case TrunkLayer::l2pool: x = pools_[i]->forward(x); break;
    }
  }
  return x;
}

int64_t FeatureSliceImpl::out_size(int64_t n) const {
  for (const TrunkLayer& l : layers_) {
    if (l.kind == TrunkLayer::relu) continue;
    const int64_t k = l.kind == TrunkLayer::l2pool ? 3 : l.kernel, pad = l.kind == TrunkLayer::l2pool ? 1 : l.padding,
                  s = l.kind == TrunkLayer::l2pool ? 2 : l.stride;
    if (n + 2 * pad < k) return 0;
    n = (n + 2 * pad - k) / s + 1;
  }
  return n;
}

std::vector<int64_t> alexnet_widths() { return {64, 192, 384, 256, 256}; }
std::vector<int64_t> vgg16_widths() { return {64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512}; }

std::vector<std::vector<TrunkLayer>> alexnet_slices(const std::vector<int64_t>& w) {
  if (w.size() != 5) throw std::invalid_argument("AlexNet has 5 convs");
  using L = TrunkLayer;
  return {
      {{L::conv, 0, 3, w[0], 11, 4, 2}, {L::relu, 1}},
      {{L::maxpool, 2, 0, 0, 3, 2}, {L::conv, 3, w[0], w[1], 5, 1, 2}, {L::relu, 4}},
      {{L::maxpool, 5, 0, 0, 3, 2}, {L::conv, 6, w[1], w[2], 3, 1, 1}, {L::relu, 7}},
      {{L::conv, 8, w[2], w[3], 3, 1, 1}, {L::relu, 9}},
      {{L::conv, 10, w[3], w[4], 3, 1, 1}, {L::relu, 11}},
  };
}

std::vector<std::vector<TrunkLayer>> vgg16_slices(const std::vector<int64_t>& w, bool l2pool) {
  if (w.size() != 13) throw std::invalid_argument("VGG16 has 13 convs");
  using L = TrunkLayer;
  // torchvision's cfg "D": convs per block 2, 2, 3, 3, 3, a pool after each;
  // the taps are the last ReLU of each block, the slices start at its pool.
  const int per_block[5] = {2, 2, 3, 3, 3};
  std::vector<std::vector<TrunkLayer>> slices(5);
  int index = 0, c = 0;
  int64_t in = 3;
  for (int b = 0; b < 5; ++b) {
    if (b > 0) {
      if (l2pool) slices[b].push_back({L::l2pool, index++, in});
      else slices[b].push_back({L::maxpool, index++, 0, 0, 2, 2});
    }
    for (int i = 0; i < per_block[b]; ++i, ++c) {
      slices[b].push_back({L::conv, index++, in, w[c], 3, 1, 1});
      slices[b].push_back({L::relu, index++});
      in = w[c];
    }
  }
  return slices;
}

std::vector<FeatureSlice> add_slices(torch::nn::Module& parent, const std::string& prefix,
                                     const std::vector<std::vector<TrunkLayer>>& slices) {
  std::vector<FeatureSlice> out;
  for (size_t i = 0; i < slices.size(); ++i)
    out.push_back(parent.register_module(prefix + std::to_string(i + 1), FeatureSlice(slices[i])));
  return out;
}

int64_t min_input_side(const std::vector<FeatureSlice>& slices) {
  for (int64_t side = 1; side < 4096; ++side) {
    int64_t n = side;
    for (const FeatureSlice& s : slices)
      if (n > 0) n = s->out_size(n);
    if (n > 0) return side;
  }
  return 4096;
}

}  // namespace rass::nn
