#include "rass/nn/blocks.hpp"

#include <algorithm>
#include <atomic>
#include <vector>

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/padding.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/nn/modules/dropout.h>
#include <torch/version.h>
#include <ATen/ops/silu.h>
#include <c10/core/GradMode.h>

#include "rass/nn/group_norm.hpp"
#include "rass/nn/upsample_conv.hpp"

namespace F = torch::nn::functional;

namespace rass::nn {

namespace {
thread_local GroupNormHook* t_group_norm_hook = nullptr;
}

GroupNormHookScope::GroupNormHookScope(GroupNormHook* hook) : previous(t_group_norm_hook) { t_group_norm_hook = hook; }
GroupNormHookScope::~GroupNormHookScope() { t_group_norm_hook = previous; }

namespace {
thread_local std::vector<const torch::Tensor*> t_kept;
}  // namespace

KeptTensor::KeptTensor(const torch::Tensor& t) : listed(t_group_norm_hook != nullptr) {
  if (listed) t_kept.push_back(&t);
}
KeptTensor::~KeptTensor() {
  if (listed) t_kept.pop_back();
}
const std::vector<const torch::Tensor*>& kept_tensors() { return t_kept; }

torch::Tensor silu_fresh(torch::Tensor t) {
  if (c10::GradMode::is_enabled()) return F::silu(t);
  return at::silu_(t);
}

torch::Tensor group_norm(rass::nn::GroupNorm& gn, const torch::Tensor& x) {
  return t_group_norm_hook ? t_group_norm_hook->apply(*gn, x) : gn(x);
}

torch::Tensor group_norm_silu(rass::nn::GroupNorm& gn, const torch::Tensor& x) {
  return t_group_norm_hook ? silu_fresh(t_group_norm_hook->apply(*gn, x)) : gn->forward_silu(x);
}

ResnetBlock2DImpl::ResnetBlock2DImpl(int64_t in, int64_t out, int64_t temb_channels, int64_t groups, double eps,
                                     double scale)
    : output_scale_factor(scale) {
  norm1 = register_module("norm1", rass::nn::GroupNorm(torch::nn::GroupNormOptions(groups, in).eps(eps)));
  conv1 = register_module("conv1", LoraConv2d(in, out, 3, 1, 1));
  if (temb_channels > 0) time_emb_proj = register_module("time_emb_proj", LoraLinear(temb_channels, out));
  norm2 = register_module("norm2", rass::nn::GroupNorm(torch::nn::GroupNormOptions(groups, out).eps(eps)));
  conv2 = register_module("conv2", LoraConv2d(out, out, 3, 1, 1));
  if (in != out) conv_shortcut = register_module("conv_shortcut", LoraConv2d(in, out, 1, 1, 0));
}

torch::Tensor ResnetBlock2DImpl::forward(const torch::Tensor& x, const torch::Tensor& temb) {
  const KeptTensor keep(x);  // held for the skip across norm2
  torch::Tensor h = conv1(group_norm_silu(norm1, x));
  if (time_emb_proj && temb.defined()) h = h + time_emb_proj(F::silu(temb)).unsqueeze(-1).unsqueeze(-1);
  h = conv2(group_norm_silu(norm2, h));
  torch::Tensor skip = conv_shortcut ? conv_shortcut(x) : x;
  torch::Tensor out = skip + h;
  return output_scale_factor == 1.0 ? out : out / output_scale_factor;
}

Downsample2DImpl::Downsample2DImpl(int64_t channels, int64_t out, int64_t pad) : padding(pad) {
  conv = register_module("conv", LoraConv2d(channels, out, 3, 2, pad));
}

torch::Tensor Downsample2DImpl::forward(const torch::Tensor& x) {
  if (padding == 0) return conv(F::pad(x, F::PadFuncOptions({0, 1, 0, 1}).mode(torch::kConstant).value(0)));
  return conv(x);
}

Upsample2DImpl::Upsample2DImpl(int64_t channels, int64_t out) {
  conv = register_module("conv", LoraConv2d(channels, out, 3, 1, 1));
}

torch::Tensor Upsample2DImpl::forward(const torch::Tensor& x, c10::optional<std::vector<int64_t>> size) {
  // Inference: the convolution of the upsampled image without making it
  // (upsample_conv.hpp: 4 multiply-adds per output pixel and channel, not 9;
  // merged adapters are in the weight). Diffusers' two steps with autograd
  // recording (training), enabled unmerged LoRA adapters, a size other than
  // twice the input's (the UNet's odd skip sizes), or an input too small to
  // pay for the phases' kernels.
  const bool doubled = !size || (size->size() == 2 && (*size)[0] == 2 * x.size(2) && (*size)[1] == 2 * x.size(3));
  // (conv is 3x3, stride 1, padding 1 by construction.)
  if (doubled && upsample_phases_pay(x) && !c10::GradMode::is_enabled() && !conv->has_live_adapter() &&
      upsample_phases_on())
    return upsample2x_conv3x3(x, conv->weight, conv->bias);
  // diffusers upsamples bfloat16 in float32 before PyTorch 2.1 (no bfloat16
  // nearest kernel then); nearest copies values, so either way gives the same
  // bits. With LibTorch 2.x the copy up and down is skipped: at the VAE
  // decoder's last upsampler (batch 8, 512 px) it wrote 2 GiB of float32, and
  // on the CPU it took 5x diffusers' time (RASS_TRACE, 256 px, bf16).
#if TORCH_VERSION_MAJOR >= 2
  const torch::Tensor& in = x;
#else
  const torch::Tensor in = x.scalar_type() == torch::kBFloat16 ? x.to(torch::kFloat) : x;
#endif
  auto opts = F::InterpolateFuncOptions().mode(torch::kNearest);
  torch::Tensor up = size ? F::interpolate(in, opts.size(*size)) : F::interpolate(in, opts.scale_factor(std::vector<double>{2.0, 2.0}));
  return conv(up.to(x.scalar_type()));
}

AttentionImpl::AttentionImpl(int64_t query_dim, int64_t cross_dim, int64_t h, int64_t d, bool bias, int64_t groups,
                             double eps, bool residual, bool upcast, bool out_bias)
    : heads(h), dim_head(d), residual_connection(residual), upcast_softmax(upcast) {
  const int64_t inner = h * d;
  const int64_t kv_dim = cross_dim > 0 ? cross_dim : query_dim;
  if (groups > 0)
    group_norm = register_module("group_norm", rass::nn::GroupNorm(torch::nn::GroupNormOptions(groups, query_dim).eps(eps)));
  to_q = register_module("to_q", LoraLinear(query_dim, inner, bias));
  to_k = register_module("to_k", LoraLinear(kv_dim, inner, bias));
  to_v = register_module("to_v", LoraLinear(kv_dim, inner, bias));
  to_out = register_module("to_out", torch::nn::ModuleList());
  to_out->push_back(LoraLinear(inner, query_dim, out_bias));
  to_out->push_back(torch::nn::Dropout(0.0));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& input, const torch::Tensor& encoder_hidden,
                                     torch::Tensor* probs) {
  torch::Tensor hidden = input;
  const bool spatial = input.dim() == 4;
  int64_t b = input.size(0), c = 0, hh = 0, ww = 0;
  if (spatial) {
    c = input.size(1), hh = input.size(2), ww = input.size(3);
    hidden = input.view({b, c, hh * ww}).transpose(1, 2);
  }
  if (group_norm) {
    // With a hook (tiled VAE) the norm sees the spatial layout; the same elements either way.
    if (spatial && t_group_norm_hook)
      hidden = t_group_norm_hook->apply(*group_norm, input).view({b, c, hh * ww}).transpose(1, 2);
    else
      hidden = group_norm(hidden.transpose(1, 2)).transpose(1, 2);
  }
  const torch::Tensor ctx = encoder_hidden.defined() ? encoder_hidden : hidden;
  auto heads4 = [&](const torch::Tensor& t) {  // [b, n, h*d] -> [b, h, n, d], a view
    return t.view({b, -1, heads, dim_head}).transpose(1, 2);
  };
  const torch::Tensor q4 = heads4(to_q(hidden)), k4 = heads4(to_k(ctx)), v4 = heads4(to_v(ctx));
  torch::Tensor out;  // [b, h, n, d]
#if TORCH_VERSION_MAJOR >= 2
  // LibTorch 2.x: the fused kernel (flash / memory-efficient on CUDA), as
  // diffusers' AttnProcessor2_0, on the strided views (no copies of q, k
  // and v: the kernels need only the last dimension contiguous).
  // Capturing probabilities needs the math path.
  if (!probs) out = at::scaled_dot_product_attention(q4, k4, v4);
#endif
  if (!out.defined()) {
    auto flat = [&](const torch::Tensor& t) { return t.reshape({b * heads, -1, dim_head}); };  // [b*h, n, d]
    out = attention_math(flat(q4), flat(k4), flat(v4), probs).view({b, heads, -1, dim_head});
  }
  out = out.transpose(1, 2).reshape({b, -1, heads * dim_head});
  out = to_out[0]->as<LoraLinear>()->forward(out);
  if (spatial) out = out.transpose(-1, -2).reshape({b, c, hh, ww});
  if (residual_connection) out = out + input;
  return out;
}

namespace {
std::atomic<int64_t> g_scores_budget{int64_t(256) << 20};
}  // namespace

int64_t attention_scores_budget() { return g_scores_budget.load(); }
void set_attention_scores_budget(int64_t bytes) { g_scores_budget.store(std::max<int64_t>(1, bytes)); }

torch::Tensor AttentionImpl::attention_math(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                            torch::Tensor* probs_out) const {
  // All queries' scores at once are [b*h, n_q, n_k] floats, quadratic in the
  // tokens: the VAE's mid-block attention over a whole 25600x128 image (51200
  // tokens) asked for 10 GB, and as much again for the softmax, and the
  // kernel killed the tool. Each query's softmax is its own, so the queries
  // go in chunks whose scores stay within the budget; the rows are the same.
  const int64_t nq = q.size(1), row_bytes = q.size(0) * k.size(1) * int64_t(sizeof(float));
  if (!probs_out && nq > 1 && nq * row_bytes > attention_scores_budget()) {
    const int64_t rows = std::max<int64_t>(1, attention_scores_budget() / row_bytes);
    std::vector<torch::Tensor> parts;
    for (int64_t s = 0; s < nq; s += rows) parts.push_back(attention_math(q.slice(1, s, std::min(nq, s + rows)), k, v, nullptr));
    return torch::cat(parts, 1);
  }
  const double scale = 1.0 / std::sqrt(double(dim_head));
  const auto dtype = q.scalar_type();
  torch::Tensor scores = upcast_attention ? torch::bmm(q.to(torch::kFloat), k.to(torch::kFloat).transpose(1, 2)) * scale
                                          : torch::bmm(q, k.transpose(1, 2)) * scale;
  if (upcast_softmax) scores = scores.to(torch::kFloat);
  torch::Tensor probs = scores.softmax(-1).to(dtype);
  if (probs_out) *probs_out = probs;
  return torch::bmm(probs, v);
}

}  // namespace rass::nn
