#include "rass/nn/iqa_clip_resnet.hpp"

#include <cmath>
#include <string>

#include <torch/nn/functional/pooling.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/nn/linear.hpp"

namespace F = torch::nn::functional;

namespace rass::nn {

namespace {

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).bias(false));
}

torch::Tensor avg_pool(const torch::Tensor& x, int64_t k) { return F::avg_pool2d(x, F::AvgPool2dFuncOptions(k)); }

// clip/model.py Bottleneck (expansion 4): the stride is applied by an average
// pool after conv2, and in the shortcut before its 1x1 conv ("-1" holds no
// parameters, so the shortcut's state-dict names are downsample.0 / .1).
struct BottleneckImpl : torch::nn::Module {
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr}, down_conv{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr}, down_bn{nullptr};
  int64_t stride;
  BottleneckImpl(int64_t inplanes, int64_t planes, int64_t s) : stride(s) {
    conv1 = register_module("conv1", conv(inplanes, planes, 1));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(planes));
    conv2 = register_module("conv2", conv(planes, planes, 3));
    bn2 = register_module("bn2", torch::nn::BatchNorm2d(planes));
    conv3 = register_module("conv3", conv(planes, planes * 4, 1));
    bn3 = register_module("bn3", torch::nn::BatchNorm2d(planes * 4));
    if (stride > 1 || inplanes != planes * 4) {
      auto down = register_module("downsample", std::make_shared<torch::nn::Module>());
      down_conv = down->register_module("0", conv(inplanes, planes * 4, 1));
      down_bn = down->register_module("1", torch::nn::BatchNorm2d(planes * 4));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor out = torch::relu(bn1(conv1(x)));
    out = torch::relu(bn2(conv2(out)));
    if (stride > 1) out = avg_pool(out, stride);
    out = bn3(conv3(out));
    torch::Tensor identity = x;
    if (down_conv) identity = down_bn(down_conv(stride > 1 ? avg_pool(x, stride) : x));
    return torch::relu(out + identity);
  }
};
TORCH_MODULE(Bottleneck);

// Output length of the stem's stride-2 conv (k3, p1) then the five floor halvings.
int64_t grid_side(int64_t side) {
  int64_t s = (side - 1) / 2 + 1;
  for (int i = 0; i < 4; ++i) s /= 2;
  return s;
}

}  // namespace

int64_t clip_resnet_min_side() {
  int64_t s = 1;
  while (grid_side(s) < 1) ++s;
  return s;
}

ClipResNetImpl::ClipResNetImpl(const ClipResNetConfig& c) : config(c) {
  const int64_t w = c.width;
  conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, w / 2, 3).stride(2).padding(1).bias(false)));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(w / 2));
  conv2 = register_module("conv2", conv(w / 2, w / 2, 3));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(w / 2));
  conv3 = register_module("conv3", conv(w / 2, w, 3));
  bn3 = register_module("bn3", torch::nn::BatchNorm2d(w));
  int64_t inplanes = w;
  for (int s = 0; s < 4; ++s) {
    const int64_t planes = w << s;
    stages[s] = register_module("layer" + std::to_string(s + 1), torch::nn::ModuleList());
    for (int64_t i = 0; i < c.layers[s]; ++i) {
      stages[s]->push_back(Bottleneck(inplanes, planes, i == 0 && s > 0 ? 2 : 1));
      inplanes = planes * 4;
    }
  }
  const int64_t embed = w * 32;
  if (c.heads <= 0 || embed % c.heads != 0)
    throw Error(ExitCode::bad_input, "CLIP ResNet: attention pool width " + std::to_string(embed) +
                                         " is not divisible by " + std::to_string(c.heads) + " heads");
  attnpool = register_module("attnpool", std::make_shared<torch::nn::Module>());
  positional_embedding = attnpool->register_parameter("positional_embedding", torch::zeros({c.positions, embed}));
  k_proj = attnpool->register_module("k_proj", rass::nn::Linear(embed, embed));
  q_proj = attnpool->register_module("q_proj", rass::nn::Linear(embed, embed));
  v_proj = attnpool->register_module("v_proj", rass::nn::Linear(embed, embed));
  c_proj = attnpool->register_module("c_proj", rass::nn::Linear(embed, c.output_dim));
}

torch::Tensor ClipResNetImpl::trunk(const torch::Tensor& x) {
  const int64_t min_side = clip_resnet_min_side();
  if (x.size(2) < min_side || x.size(3) < min_side)
    throw Error(ExitCode::bad_input, "image of " + std::to_string(x.size(3)) + "x" + std::to_string(x.size(2)) +
                                         " is too small for CLIP's ResNet (at least " + std::to_string(min_side) +
                                         " pixels a side)");
  torch::Tensor h = torch::relu(bn1(conv1(x)));
  h = torch::relu(bn2(conv2(h)));
  h = torch::relu(bn3(conv3(h)));
  h = avg_pool(h, 2);
  for (const auto& stage : stages)
    for (const auto& block : *stage) h = block->as<Bottleneck>()->forward(h);
  return h;
}

torch::Tensor ClipResNetImpl::forward(const torch::Tensor& x, ClipPositional positional) {
  const torch::Tensor f = trunk(x);
  const int64_t n = f.size(0), c = f.size(1);
  // [N,C,H,W] -> [HW,N,C], the spatial mean prepended as the query token.
  torch::Tensor t = f.flatten(2).permute({2, 0, 1});
  t = torch::cat({t.mean(0, true), t}, 0);
  if (positional == ClipPositional::interpolate) {
    const torch::Tensor pe = F::interpolate(positional_embedding.unsqueeze(0).unsqueeze(0),
                                            F::InterpolateFuncOptions()
                                                .size(std::vector<int64_t>{t.size(0), c})
                                                .mode(torch::kBicubic)
                                                .align_corners(false))
                                 .squeeze(0)
                                 .squeeze(0);
    t = t + pe.unsqueeze(1);
  }
  // Multi-head attention of the mean token over all tokens; only its output
  // is kept (OpenAI's AttentionPool2d returns x[0]).
  const int64_t heads = config.heads, hd = c / heads;
  const torch::Tensor q = (q_proj(t[0]) * (1.0 / std::sqrt(double(hd)))).view({n, heads, 1, hd});
  const torch::Tensor k = k_proj(t).view({-1, n, heads, hd}).permute({1, 2, 3, 0});  // [N,h,hd,L]
  const torch::Tensor v = v_proj(t).view({-1, n, heads, hd}).permute({1, 2, 0, 3});  // [N,h,L,hd]
  const torch::Tensor a = torch::matmul(q, k).softmax(-1);                          // [N,h,1,L]
  return c_proj(torch::matmul(a, v).reshape({n, c}));
}

}  // namespace rass::nn
