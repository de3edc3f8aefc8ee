#include "rass/nn/iqa_musiq.hpp"

#include <cmath>

#include <torch/torch.h>

#include "rass/nn/group_norm.hpp"
#include "rass/nn/linear.hpp"

namespace rass::nn {

namespace F = torch::nn::functional;

namespace {

// TF/flax "SAME": out = ceil(in / s); the padding the kernel needs beyond the
// input goes half before, the odd pixel after (PyTorch's symmetric padding
// would shift every 7x7/2 window by one pixel).
torch::Tensor same_pad(const torch::Tensor& x, int64_t k, int64_t s) {
  auto amount = [&](int64_t in) {
    const int64_t out = (in + s - 1) / s;
    return std::max<int64_t>((out - 1) * s + k - in, 0);
  };
  const int64_t ph = amount(x.size(2)), pw = amount(x.size(3));
  if (ph == 0 && pw == 0) return x;
  return F::pad(x, F::PadFuncOptions({pw / 2, pw - pw / 2, ph / 2, ph - ph / 2}));
}

// Weight standardization of the BiT-style StdConv: each output channel's
// kernel to zero mean and unit (unbiased, as the port) standard deviation + 1e-5.
torch::Tensor std_conv(const torch::nn::Conv2d& conv, const torch::Tensor& x, int64_t stride) {
  const torch::Tensor& w = conv->weight;
  const torch::Tensor mean = w.mean({1, 2, 3}, true);
  const torch::Tensor sd = w.std({1, 2, 3}, /*unbiased=*/true, /*keepdim=*/true);
  const int64_t k = w.size(2);
  return torch::conv2d(same_pad(x, k, stride), (w - mean) / (sd + 1e-5), {}, stride);
}

torch::nn::Conv2d conv_module(int64_t in, int64_t out, int64_t k) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).bias(false));
}

rass::nn::GroupNorm group_norm(int64_t channels, double eps) {
  return rass::nn::GroupNorm(torch::nn::GroupNormOptions(32, channels).eps(eps));
}

torch::nn::LayerNorm layer_norm(int64_t dim) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6));
}

}  // namespace

// Pre-norm encoder block: x + attention(norm1(x)), then + mlp(norm2(x)).
struct MusiqBlock : torch::nn::Module {
  MusiqBlock(int64_t dim, int64_t heads, int64_t mlp_dim) : heads(heads) {
    norm1 = register_module("norm1", layer_norm(dim));
    attention = register_module("attention", std::make_shared<torch::nn::Module>());
    query = attention->register_module("query", rass::nn::Linear(dim, dim));
    key = attention->register_module("key", rass::nn::Linear(dim, dim));
    value = attention->register_module("value", rass::nn::Linear(dim, dim));
    out = attention->register_module("out", rass::nn::Linear(dim, dim));
    norm2 = register_module("norm2", layer_norm(dim));
    mlp = register_module("mlp", std::make_shared<torch::nn::Module>());
    fc1 = mlp->register_module("fc1", rass::nn::Linear(dim, mlp_dim));
    fc2 = mlp->register_module("fc2", rass::nn::Linear(mlp_dim, dim));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t b = x.size(0), t = x.size(1), c = x.size(2), d = c / heads;
    const torch::Tensor h = norm1(x);
    auto split = [&](const torch::Tensor& y) { return y.view({b, t, heads, d}).transpose(1, 2); };
    const torch::Tensor q = split(query(h)), k = split(key(h)), v = split(value(h));
    const torch::Tensor att = torch::softmax(torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(double(d)), -1);
    const torch::Tensor a = torch::matmul(att, v).transpose(1, 2).reshape({b, t, c});
    const torch::Tensor y = x + out(a);
    return y + fc2(torch::gelu(fc1(norm2(y))));
  }

  int64_t heads;
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  std::shared_ptr<torch::nn::Module> attention, mlp;
  rass::nn::Linear query{nullptr}, key{nullptr}, value{nullptr}, out{nullptr}, fc1{nullptr}, fc2{nullptr};
};

MusiqNetImpl::MusiqNetImpl(const MusiqConfig& c) : config(c) {
  conv_root = register_module("conv_root", conv_module(3, 64, 7));
  gn_root = register_module("gn_root", group_norm(64, 1e-6));
  auto block1 = register_module("block1", std::make_shared<torch::nn::Module>());
  conv1 = block1->register_module("conv1", conv_module(64, 64, 1));
  gn1 = block1->register_module("gn1", group_norm(64, 1e-4));
  conv2 = block1->register_module("conv2", conv_module(64, 64, 3));
  gn2 = block1->register_module("gn2", group_norm(64, 1e-4));
  conv3 = block1->register_module("conv3", conv_module(64, 256, 1));
  gn3 = block1->register_module("gn3", group_norm(256, 1e-4));
  conv_proj = block1->register_module("conv_proj", conv_module(64, 256, 1));
  gn_proj = block1->register_module("gn_proj", group_norm(256, 1e-4));
  // 32x32 patch -> /2 conv -> /2 pool -> 8x8x256 (the stem has total stride 4).
  const int64_t side = c.patch_size / 4;
  embedding = register_module("embedding", rass::nn::Linear(side * side * 256, c.hidden_size));
  encoder = register_module("transformer_encoder", std::make_shared<torch::nn::Module>());
  cls = encoder->register_parameter("cls", torch::zeros({1, 1, c.hidden_size}));
  auto pos = encoder->register_module("posembed_input", std::make_shared<torch::nn::Module>());
  position_emb = pos->register_parameter("position_emb", torch::zeros({1, c.spatial_grid * c.spatial_grid, c.hidden_size}));
  auto sc = encoder->register_module("scaleembed_input", std::make_shared<torch::nn::Module>());
  scale_emb = sc->register_parameter("scale_emb", torch::zeros({c.num_scales, c.hidden_size}));
  encoder_norm = encoder->register_module("encoder_norm", layer_norm(c.hidden_size));
  auto tr = encoder->register_module("transformer", std::make_shared<torch::nn::Module>());
  for (int64_t i = 0; i < c.num_layers; ++i)
    blocks.push_back(tr->register_module("encoderblock_" + std::to_string(i),
                                         std::make_shared<MusiqBlock>(c.hidden_size, c.num_heads, c.mlp_dim)));
  if (c.num_classes == 1) {
    head = register_module("head", rass::nn::Linear(c.hidden_size, 1));
  } else {  // the port's Sequential(Linear, Softmax): the softmax is applied in score()
    auto seq = register_module("head", std::make_shared<torch::nn::Module>());
    head = seq->register_module("0", rass::nn::Linear(c.hidden_size, c.num_classes));
  }
}

torch::Tensor MusiqNetImpl::stem(const torch::Tensor& x) {
  torch::Tensor y = torch::relu(gn_root(std_conv(conv_root, x, 2)));
  // Zero padding before the pool equals flax's -inf: the values are >= 0 after the ReLU.
  y = torch::max_pool2d(same_pad(y, 3, 2), 3, 2);
  const torch::Tensor residual = gn_proj(std_conv(conv_proj, y, 1));
  torch::Tensor z = torch::relu(gn1(std_conv(conv1, y, 1)));
  z = torch::relu(gn2(std_conv(conv2, z, 1)));
  z = gn3(std_conv(conv3, z, 1));
  z = torch::relu(residual + z);
  return z.permute({0, 2, 3, 1}).reshape({x.size(0), -1});  // flax's H,W,C order
}

torch::Tensor MusiqNetImpl::forward(const torch::Tensor& patches, const torch::Tensor& spatial,
                                    const torch::Tensor& scale) {
  const int64_t b = patches.size(0), l = patches.size(1), p = config.patch_size;
  const torch::Tensor flat = patches.reshape({b * l, 3, p, p});
  // The stem in chunks of tokens: its activations (64 KiB a token) would
  // otherwise scale with the whole image's patch count at once.
  constexpr int64_t kChunk = 1024;
  std::vector<torch::Tensor> parts;
  for (int64_t s = 0; s < b * l; s += kChunk) parts.push_back(stem(flat.slice(0, s, std::min(s + kChunk, b * l))));
  torch::Tensor x = embedding(torch::cat(parts, 0).view({b, l, -1}));
  x = x + position_emb[0].index_select(0, spatial.to(x.device()));
  x = x + scale_emb.index_select(0, scale.to(x.device()));
  x = torch::cat({cls.expand({b, 1, config.hidden_size}), x}, 1);
  for (const auto& blk : blocks) x = blk->forward(x);
  return head(encoder_norm(x.select(1, 0)));
}

torch::Tensor MusiqNetImpl::score(const torch::Tensor& patches, const torch::Tensor& spatial,
                                  const torch::Tensor& scale) {
  const torch::Tensor logits = forward(patches, spatial, scale);
  if (config.num_classes == 1) return logits.select(1, 0);
  const torch::Tensor bins = torch::arange(1, config.num_classes + 1, logits.options());
  return (torch::softmax(logits, -1) * bins).sum(-1);
}

}  // namespace rass::nn
