#include "rass/nn/iqa_maniqa.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include <torch/nn/modules/normalization.h>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/nn/linear.hpp"

namespace rass::nn {

namespace {

torch::nn::LayerNorm layer_norm(int64_t d, double eps) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(eps));
}

// timm VisionTransformer Block (pre-norm attention + MLP, LayerNorm eps 1e-6,
// exact GELU); layer scale and drop-path are identities in ViT-B/8.
struct VitBlockImpl : torch::nn::Module {
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  rass::nn::Linear qkv{nullptr}, proj{nullptr}, fc1{nullptr}, fc2{nullptr};
  int64_t heads;
  VitBlockImpl(int64_t d, int64_t h, int64_t mlp) : heads(h) {
    norm1 = register_module("norm1", layer_norm(d, 1e-6));
    auto attn = register_module("attn", std::make_shared<torch::nn::Module>());
    qkv = attn->register_module("qkv", rass::nn::Linear(d, 3 * d));
    proj = attn->register_module("proj", rass::nn::Linear(d, d));
    norm2 = register_module("norm2", layer_norm(d, 1e-6));
    auto m = register_module("mlp", std::make_shared<torch::nn::Module>());
    fc1 = m->register_module("fc1", rass::nn::Linear(d, mlp));
    fc2 = m->register_module("fc2", rass::nn::Linear(mlp, d));
  }
  torch::Tensor forward(torch::Tensor x) {
    const int64_t b = x.size(0), n = x.size(1), d = x.size(2), hd = d / heads;
    const torch::Tensor t = qkv(norm1(x)).reshape({b, n, 3, heads, hd}).permute({2, 0, 3, 1, 4});
    const torch::Tensor a = torch::matmul(t[0] * (1.0 / std::sqrt(double(hd))), t[1].transpose(-2, -1)).softmax(-1);
    x = x + proj(torch::matmul(a, t[2]).transpose(1, 2).reshape({b, n, d}));
    return x + fc2(torch::gelu(fc1(norm2(x))));
  }
};
TORCH_MODULE(VitBlock);

// models/maniqa.py TABlock: attention between channels over the token axis.
struct TABlockImpl : torch::nn::Module {
  rass::nn::Linear c_q{nullptr}, c_k{nullptr}, c_v{nullptr};
  explicit TABlockImpl(int64_t n) {
    c_q = register_module("c_q", rass::nn::Linear(n, n));
    c_k = register_module("c_k", rass::nn::Linear(n, n));
    c_v = register_module("c_v", rass::nn::Linear(n, n));
  }
  torch::Tensor forward(const torch::Tensor& x) {  // [B, C, N]
    const int64_t b = x.size(0), c = x.size(1), n = x.size(2);
    const torch::Tensor a = (torch::matmul(c_q(x), c_k(x).transpose(-2, -1)) * std::pow(double(n), -0.5)).softmax(-1);
    // The reference transposes [B,C,N] to [B,N,C] and reshapes it back to
    // [B,C,N] (not a transpose back): the trained weights expect that mixing.
    return torch::matmul(a, c_v(x)).transpose(1, 2).reshape({b, c, n}) + x;
  }
};
TORCH_MODULE(TABlock);

torch::Tensor window_partition(const torch::Tensor& x, int64_t w) {  // [B,H,W,C] -> [B*nW, w*w, C]
  const int64_t b = x.size(0), h = x.size(1), wd = x.size(2), c = x.size(3);
  return x.view({b, h / w, w, wd / w, w, c}).permute({0, 1, 3, 2, 4, 5}).reshape({-1, w * w, c});
}

torch::Tensor window_reverse(const torch::Tensor& win, int64_t w, int64_t b, int64_t h, int64_t wd) {
  return win.view({b, h / w, wd / w, w, w, -1}).permute({0, 1, 3, 2, 4, 5}).reshape({b, h, wd, -1});
}

// models/swin.py SwinBlock with its WindowAttention; the index tables are
// computed here as the reference's __init__ computes them.
struct SwinBlockImpl : torch::nn::Module {
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  rass::nn::Linear qkv{nullptr}, proj{nullptr}, fc1{nullptr}, fc2{nullptr};
  torch::Tensor table, rel_index, mask;  // mask: [nW, N, N] (0 / -100) or undefined
  int64_t res, heads, window, shift;
  SwinBlockImpl(int64_t dim, int64_t r, int64_t h, int64_t win, int64_t sh, int64_t mlp)
      : res(r), heads(h), window(win), shift(sh) {
    if (res <= window) shift = 0, window = res;  // no partition when the grid fits one window
    norm1 = register_module("norm1", layer_norm(dim, 1e-5));
    auto attn = register_module("attn", std::make_shared<torch::nn::Module>());
    table = attn->register_parameter("relative_position_bias_table",
                                     torch::zeros({(2 * window - 1) * (2 * window - 1), heads}));
    qkv = attn->register_module("qkv", rass::nn::Linear(dim, 3 * dim));
    proj = attn->register_module("proj", rass::nn::Linear(dim, dim));
    norm2 = register_module("norm2", layer_norm(dim, 1e-5));
    auto m = register_module("mlp", std::make_shared<torch::nn::Module>());
    fc1 = m->register_module("fc1", rass::nn::Linear(dim, mlp));
    fc2 = m->register_module("fc2", rass::nn::Linear(mlp, dim));
    // relative_position_index[i][j] = (dy + w - 1) * (2w - 1) + (dx + w - 1)
    const torch::Tensor ys = torch::arange(window * window, torch::kLong).div(window, "floor");
    const torch::Tensor xs = torch::arange(window * window, torch::kLong).remainder(window);
    rel_index = (ys.unsqueeze(1) - ys.unsqueeze(0) + window - 1) * (2 * window - 1) +
                (xs.unsqueeze(1) - xs.unsqueeze(0) + window - 1);
    if (shift > 0) {
      // Regions of the cyclically shifted grid: tokens from different regions must not attend.
      torch::Tensor img = torch::zeros({1, res, res, 1});
      const int64_t cuts[4] = {0, res - window, res - shift, res};
      float cnt = 0;
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j, ++cnt)
          img.slice(1, cuts[i], cuts[i + 1]).slice(2, cuts[j], cuts[j + 1]).fill_(cnt);
      const torch::Tensor mw = window_partition(img, window).squeeze(-1);  // [nW, N]
      const torch::Tensor diff = mw.unsqueeze(1) - mw.unsqueeze(2);
      mask = torch::zeros_like(diff).masked_fill(diff != 0, -100.0f);
    }
  }
  torch::Tensor forward(const torch::Tensor& x_in) {
    const int64_t b = x_in.size(0), c = x_in.size(2), n = window * window, hd = c / heads;
    torch::Tensor x = norm1(x_in).view({b, res, res, c});
    if (shift > 0) x = torch::roll(x, {-shift, -shift}, {1, 2});
    const torch::Tensor win = window_partition(x, window);  // [B*nW, N, C]
    const int64_t bw = win.size(0);
    const torch::Tensor t = qkv(win).reshape({bw, n, 3, heads, hd}).permute({2, 0, 3, 1, 4});
    torch::Tensor a = torch::matmul(t[0] * (1.0 / std::sqrt(double(hd))), t[1].transpose(-2, -1));
    const torch::Tensor bias = table.index_select(0, rel_index.to(table.device()).view(-1)).view({n, n, heads});
    a = a + bias.permute({2, 0, 1}).unsqueeze(0);
    if (shift > 0) {
      const int64_t nw = mask.size(0);
      a = (a.view({bw / nw, nw, heads, n, n}) + mask.to(a.device()).unsqueeze(1).unsqueeze(0)).view({-1, heads, n, n});
    }
    torch::Tensor o = proj(torch::matmul(a.softmax(-1), t[2]).transpose(1, 2).reshape({bw, n, c}));
    o = window_reverse(o.view({-1, window, window, c}), window, b, res, res);
    if (shift > 0) o = torch::roll(o, {shift, shift}, {1, 2});
    torch::Tensor y = x_in + o.reshape({b, res * res, c});
    return y + fc2(torch::gelu(fc1(norm2(y))));
  }
};
TORCH_MODULE(SwinBlock);

// models/swin.py BasicLayer: the blocks, then a 3x3 conv + ReLU on the grid.
struct SwinLayerImpl : torch::nn::Module {
  torch::nn::Conv2d conv{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  int64_t res;
  SwinLayerImpl(int64_t dim, int64_t r, int64_t depth, int64_t heads, int64_t window, int64_t mlp) : res(r) {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, dim, 3).padding(1)));
    blocks = register_module("blocks", torch::nn::ModuleList());
    for (int64_t i = 0; i < depth; ++i) blocks->push_back(SwinBlock(dim, r, heads, window, i % 2 ? window / 2 : 0, mlp));
  }
  torch::Tensor forward(torch::Tensor x) {  // [B, HW, C]
    for (const auto& blk : *blocks) x = blk->as<SwinBlock>()->forward(x);
    const int64_t b = x.size(0), c = x.size(2);
    x = torch::relu(conv(x.transpose(1, 2).reshape({b, c, res, res})));
    return x.flatten(2).transpose(1, 2);
  }
};
TORCH_MODULE(SwinLayer);

std::shared_ptr<torch::nn::Module> make_swin(torch::nn::Module& parent, const std::string& name, const ManiqaConfig& c,
                                             int64_t dim) {
  auto swin = parent.register_module(name, std::make_shared<torch::nn::Module>());
  auto layers = swin->register_module("layers", torch::nn::ModuleList());
  const int64_t grid = c.img_size / c.patch_size;
  for (size_t i = 0; i < c.depths.size(); ++i)
    layers->push_back(SwinLayer(dim, grid, c.depths[i], c.num_heads[i], c.window_size, c.dim_mlp));
  return swin;
}

// models/swin.py SwinTransformer.forward: each layer's output scaled and added
// to its input. x: [B, C, g, g].
torch::Tensor run_swin(torch::nn::Module& swin, const torch::Tensor& x, double scale) {
  const int64_t b = x.size(0), c = x.size(1), g = x.size(2);
  torch::Tensor t = x.flatten(2).transpose(1, 2);
  for (const auto& layer : *swin.named_children()["layers"]->as<torch::nn::ModuleList>())
    t = scale * layer->as<SwinLayer>()->forward(t) + t;
  return t.transpose(1, 2).reshape({b, c, g, g});
}

}  // namespace

ManiqaImpl::ManiqaImpl(const ManiqaConfig& c) : config(c) {
  if (c.img_size % c.patch_size || c.vit_dim % c.vit_heads || c.depths.size() != c.num_heads.size() ||
      c.embed_dim % 2)
    throw Error(ExitCode::bad_input, "MANIQA: inconsistent configuration");
  const int64_t grid = c.img_size / c.patch_size, n = grid * grid;
  vit = register_module("vit", std::make_shared<torch::nn::Module>());
  auto pe = vit->register_module("patch_embed", std::make_shared<torch::nn::Module>());
  patch_proj = pe->register_module(
      "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, c.vit_dim, c.patch_size).stride(c.patch_size)));
  cls_token = vit->register_parameter("cls_token", torch::zeros({1, 1, c.vit_dim}));
  pos_embed = vit->register_parameter("pos_embed", torch::zeros({1, n + 1, c.vit_dim}));
  vit_blocks = vit->register_module("blocks", torch::nn::ModuleList());
  for (int i = 0; i < 10; ++i) vit_blocks->push_back(VitBlock(c.vit_dim, c.vit_heads, c.vit_mlp));
  tablock1 = register_module("tablock1", torch::nn::ModuleList());
  tablock2 = register_module("tablock2", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_tab; ++i) tablock1->push_back(TABlock(n)), tablock2->push_back(TABlock(n));
  conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(4 * c.vit_dim, c.embed_dim, 1)));
  swin1 = make_swin(*this, "swintransformer1", c, c.embed_dim);
  conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(c.embed_dim, c.embed_dim / 2, 1)));
  swin2 = make_swin(*this, "swintransformer2", c, c.embed_dim / 2);
  const int64_t h = c.embed_dim / 2;
  auto fs = register_module("fc_score", std::make_shared<torch::nn::Module>());
  score0 = fs->register_module("0", rass::nn::Linear(h, h));
  score3 = fs->register_module("3", rass::nn::Linear(h, 1));
  auto fw = register_module("fc_weight", std::make_shared<torch::nn::Module>());
  weight0 = fw->register_module("0", rass::nn::Linear(h, h));
  weight3 = fw->register_module("3", rass::nn::Linear(h, 1));
}

ManiqaPatches ManiqaImpl::forward(const torch::Tensor& crops) {
  const ManiqaConfig& c = config;
  const int64_t b = crops.size(0), grid = c.img_size / c.patch_size, n = grid * grid;
  if (crops.size(2) != c.img_size || crops.size(3) != c.img_size)
    throw Error(ExitCode::runtime, "MANIQA: crops must be " + std::to_string(c.img_size) + " square");
  torch::Tensor t = patch_proj(crops).flatten(2).transpose(1, 2);
  t = torch::cat({cls_token.expand({b, -1, -1}), t}, 1) + pos_embed;
  std::vector<torch::Tensor> taps;
  for (size_t i = 0; i < vit_blocks->size(); ++i) {
    t = vit_blocks[i]->as<VitBlock>()->forward(t);
    if (i >= 6) taps.push_back(t.slice(1, 1));  // blocks 6..9 without the class token
  }
  torch::Tensor x = torch::cat(taps, 2).transpose(1, 2);  // [B, 4D, N]
  for (const auto& tab : *tablock1) x = tab->as<TABlock>()->forward(x);
  x = conv1(x.reshape({b, -1, grid, grid}));
  x = run_swin(*swin1, x, c.scale);
  x = x.reshape({b, -1, n});
  for (const auto& tab : *tablock2) x = tab->as<TABlock>()->forward(x);
  x = conv2(x.reshape({b, -1, grid, grid}));
  x = run_swin(*swin2, x, c.scale);
  x = x.flatten(2).transpose(1, 2);  // [B, N, E/2]
  ManiqaPatches out;
  out.score = torch::relu(score3(torch::relu(score0(x)))).squeeze(-1);
  out.weight = torch::sigmoid(weight3(torch::relu(weight0(x)))).squeeze(-1);
  return out;
}

torch::Tensor ManiqaImpl::crop_scores(const torch::Tensor& crops) {
  const ManiqaPatches p = forward(crops);
  return (p.score * p.weight).sum(-1) / p.weight.sum(-1);
}

}  // namespace rass::nn
