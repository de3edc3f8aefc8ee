#include "rass/nn/group_norm.hpp"

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/nn/functional/normalization.h>

#include "rass/core/error.hpp"
#include "rass/nn/group_norm_kernel.hpp"

#ifdef RASS_GN_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "rass/nn/group_norm_cuda.hpp"
#endif

namespace rass::nn {

namespace {

std::atomic<int> g_fused{-1};  // -1: RASS_FUSED_NORM not read yet

// Channels-last unless x is (also) NCHW-contiguous; a strided view (a crop)
// goes by the layout its strides suggest, so a channels-last network stays so.
bool nhwc_layout(const torch::Tensor& x) {
  return !x.is_contiguous() && x.suggest_memory_format() == at::MemoryFormat::ChannelsLast;
}

// The kernels' view of a [N, C, H, W] tensor in its layout.
gn::Shape shape_of(const torch::Tensor& x, int64_t groups) {
  gn::Shape s;
  s.N = x.size(0);
  s.C = x.size(1);
  s.HW = x.size(2) * x.size(3);
  s.G = groups;
  s.nhwc = nhwc_layout(x);
  return s;
}

// The element code of group_norm_kernel.hpp in loops, in float: what the
// CUDA kernels compute, chunk by chunk, for the tests on the CPU.
torch::Tensor group_norm_loops(const torch::Tensor& x_in, int64_t groups, const torch::Tensor& weight,
                               const torch::Tensor& bias, double eps, bool silu) {
  const bool nhwc = nhwc_layout(x_in);
  const torch::Tensor x =
      x_in.to(torch::kCPU, torch::kFloat).contiguous(nhwc ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
  const gn::Shape s = shape_of(x, groups);
  const int64_t D = s.D(), chunks = s.chunks();
  const float* px = x.data_ptr<float>();
  std::vector<gn::Partial> partials(size_t(s.N * s.G * chunks));
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t g = 0; g < s.G; ++g)
      for (int64_t k = 0; k < chunks; ++k) {
        int64_t begin, end;
        gn::chunk_range(s, k, begin, end);
        gn::Partial p{};
        if (!nhwc) {  // the CUDA block's lanes and tree, in its order
          const float* base = px + (n * s.G + g) * D * s.HW;
          gn::Partial lanes[gn::kLanes] = {};
          for (int t = 0; t < gn::kLanes; ++t)
            if (const int64_t count = gn::lane_count(begin, end, t); count > 0)
              lanes[t] = gn::strided_partial(base + begin + t, count, gn::kLanes);
          for (int half = gn::kLanes / 2; half > 0; half /= 2)
            for (int t = 0; t < half; ++t) lanes[t] = gn::merge(lanes[t], lanes[t + half]);
          p = lanes[0];
        } else {
          for (int64_t c = g * D; c < (g + 1) * D; ++c) {
            const gn::Partial pc = gn::strided_partial(px + (n * s.HW + begin) * s.C + c, end - begin, s.C);
            p = c == g * D ? pc : gn::merge(p, pc);
          }
        }
        partials[size_t((n * s.G + g) * chunks + k)] = p;
      }
  const torch::Tensor w = weight.defined() ? weight.to(torch::kCPU, torch::kFloat).contiguous() : weight;
  const torch::Tensor b = bias.defined() ? bias.to(torch::kCPU, torch::kFloat).contiguous() : bias;
  std::vector<float> scale(size_t(s.N * s.C)), shift(size_t(s.N * s.C));
  const float* pw = w.defined() ? w.data_ptr<float>() : nullptr;
  const float* pb = b.defined() ? b.data_ptr<float>() : nullptr;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t g = 0; g < s.G; ++g) {  // the finalize block's lanes and trees, in its order
      const gn::Partial* pp = partials.data() + (n * s.G + g) * chunks;
      double a[gn::kLanes], b1[gn::kLanes];
      for (int t = 0; t < gn::kLanes; ++t) gn::lane_sums_pass1(pp, chunks, t, a[t], b1[t]);
      for (int half = gn::kLanes / 2; half > 0; half /= 2)
        for (int t = 0; t < half; ++t) a[t] += a[t + half], b1[t] += b1[t + half];
      const double count = a[0], mean = count > 0 ? b1[0] / count : 0.0;
      for (int t = 0; t < gn::kLanes; ++t) b1[t] = gn::lane_sums_pass2(pp, chunks, t, mean);
      for (int half = gn::kLanes / 2; half > 0; half /= 2)
        for (int t = 0; t < half; ++t) b1[t] += b1[t + half];
      for (int64_t c = g * D; c < (g + 1) * D; ++c)
        gn::scale_shift(s, n, c, count, mean, b1[0], pw, pb, float(eps), scale.data(), shift.data());
    }
  torch::Tensor out = at::empty_like(x);
  float* po = out.data_ptr<float>();
  const int64_t total = x.numel();
  for (int64_t i = 0; i < total; ++i) {
    const int64_t nc = s.batch(i) * s.C + s.channel(i);
    po[i] = gn::apply(px[i], scale[size_t(nc)], shift[size_t(nc)], silu);
  }
  return out.to(x_in.scalar_type());
}

}  // namespace

bool fused_group_norm_built() {
#ifdef RASS_GN_CUDA
  return true;
#else
  return false;
#endif
}

bool fused_group_norm_on() {
  int v = g_fused.load(std::memory_order_relaxed);
  if (v < 0) {
    const char* e = std::getenv("RASS_FUSED_NORM");
    const std::string s = e ? e : "";
    if (s != "" && s != "0" && s != "1")
      throw Error(ExitCode::usage, "RASS_FUSED_NORM=" + s + ": expected 0 (LibTorch's norm, then SiLU) or 1 (the default: fused)");
    v = s == "0" ? 0 : 1;
    int expected = -1;
    if (!g_fused.compare_exchange_strong(expected, v)) v = expected;  // a setter came first
  }
  return v == 1;
}

void set_fused_group_norm(bool on) { g_fused.store(on ? 1 : 0); }

bool group_norm_takes_fused(const torch::Tensor& x, int64_t groups) {
  if (!fused_group_norm_built() || !x.is_cuda() || x.dim() != 4 || x.numel() == 0 || !fused_group_norm_on()) return false;
  const auto t = x.scalar_type();
  if (t != torch::kFloat && t != torch::kHalf && t != torch::kBFloat16) return false;
  if (groups <= 0 || x.size(1) % groups != 0) return false;
  const gn::Shape s = shape_of(x, groups);
  return gn::fits_grid(s) && !(s.nhwc && s.C > gn::kMaxChannelsNhwc);
}

torch::Tensor group_norm_fused(const torch::Tensor& x_in, int64_t groups, const torch::Tensor& weight,
                               const torch::Tensor& bias, double eps, bool silu) {
  if (x_in.dim() != 4 || groups <= 0 || x_in.size(1) % groups != 0)
    throw std::invalid_argument("group_norm_fused: a [N, C, H, W] input with C a multiple of the groups");
  for (const torch::Tensor* t : {&weight, &bias})
    if (t->defined() && t->numel() != x_in.size(1))
      throw std::invalid_argument("group_norm_fused: weight and bias need one value a channel");
  if (!x_in.is_cuda()) return group_norm_loops(x_in, groups, weight, bias, eps, silu);
#ifdef RASS_GN_CUDA
  const bool nhwc = nhwc_layout(x_in);
  const torch::Tensor x = x_in.contiguous(nhwc ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
  const gn::Shape s = shape_of(x, groups);
  gn::ValueType type = gn::ValueType::f32;
  if (x.scalar_type() == torch::kHalf) type = gn::ValueType::f16;
  else if (x.scalar_type() == torch::kBFloat16) type = gn::ValueType::bf16;
  else if (x.scalar_type() != torch::kFloat) throw std::invalid_argument("group_norm_fused: float32, float16 or bfloat16 values");
  const c10::cuda::CUDAGuard guard(x.device());
  const auto f32 = x.options().dtype(torch::kFloat);
  static_assert(sizeof(gn::Partial) == 3 * sizeof(float), "a Partial is three floats");
  const torch::Tensor partials = at::empty({s.N * s.G * s.chunks() * 3}, f32);
  const torch::Tensor scale = at::empty({s.N, s.C}, f32), shift = at::empty({s.N, s.C}, f32);
  const torch::Tensor w = weight.defined() ? weight.to(x.device(), torch::kFloat).contiguous() : weight;
  const torch::Tensor b = bias.defined() ? bias.to(x.device(), torch::kFloat).contiguous() : bias;
  torch::Tensor out = at::empty_like(x);
  const std::string err = gn::forward_cuda(
      s, type, x.data_ptr(), w.defined() ? w.data_ptr<float>() : nullptr, b.defined() ? b.data_ptr<float>() : nullptr,
      float(eps), silu, reinterpret_cast<gn::Partial*>(partials.data_ptr<float>()), scale.data_ptr<float>(),
      shift.data_ptr<float>(), out.data_ptr(), c10::cuda::getCurrentCUDAStream().stream());
  if (!err.empty()) throw std::runtime_error("group_norm_fused CUDA: " + err);
  return out;
#else
  throw std::invalid_argument("group_norm_fused: no kernel for " + x_in.device().str() + " in this build");
#endif
}

torch::Tensor group_norm_channels_last(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                                       const torch::Tensor& bias, double eps) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), D = C / groups;
  // x is channels-last: its NHWC permutation is contiguous, so this is a view.
  const torch::Tensor v = x.permute({0, 2, 3, 1}).reshape({N, H * W, groups, D});
  const double n = double(H * W * D);
  const std::vector<int64_t> dims{1, 3};
  torch::Tensor mean, var;  // [N, 1, G, 1], float32 or wider
  if (at::isFloatingType(x.scalar_type()) && c10::elementSize(x.scalar_type()) >= 4) {
    std::tie(var, mean) = at::var_mean(v, dims, /*unbiased=*/false, /*keepdim=*/true);  // Welford
  } else {
    // bf16 / fp16: var_mean would round its results to x's dtype; a sum and
    // a 2-norm accumulate and return float32. E[x^2] - mean^2 loses digits
    // when |mean| >> std (1e-5 relative in float32 at mean/std = 13), far
    // below the 8-bit mantissa of the output.
    mean = at::sum(v, dims, /*keepdim=*/true, at::kFloat) / n;
    const torch::Tensor sq = at::linalg_vector_norm(v, 2, dims, /*keepdim=*/true, at::kFloat).square() / n;
    var = (sq - mean.square()).clamp_min(0);
  }
  const torch::Tensor rstd = var.add(eps).rsqrt();
  torch::Tensor scale = rstd, shift = -mean * rstd;  // y = x * scale + shift
  if (weight.defined()) {
    const torch::Tensor w = weight.to(at::kFloat).view({1, 1, groups, D});
    scale = scale * w;
    shift = shift * w;
  }
  if (bias.defined()) shift = shift + bias.to(at::kFloat).view({1, 1, groups, D});
  // Computed in float32 (the common type of the float32 scale and shift),
  // written in x's dtype: one pass over x. CUDA kernels cast as they load
  // and store; LibTorch 1.13's CPU kernels refuse mixed dtypes there (an
  // internal assert), so off CUDA (where forward() never comes: tests) x is
  // made float32 first.
  torch::Tensor y;
  if (x.is_cuda() || x.scalar_type() == scale.scalar_type()) {
    y = at::empty_like(v);
    at::addcmul_out(y, shift, v, scale);
  } else {
    y = at::addcmul(shift, v.to(at::kFloat), scale).to(x.scalar_type());
  }
  return y.view({N, H, W, C}).permute({0, 3, 1, 2});
}

bool group_norm_takes_channels_last(const torch::Tensor& x) {
  return x.is_cuda() && x.dim() == 4 && x.suggest_memory_format() == at::MemoryFormat::ChannelsLast;
}

namespace {
// Autograd follows neither our kernels nor addcmul's out= form: with a
// gradient wanted (training), LibTorch's kernel.
bool wants_grad(const torch::Tensor& input, const torch::Tensor& weight, const torch::Tensor& bias) {
  return c10::GradMode::is_enabled() && (input.requires_grad() || (weight.defined() && weight.requires_grad()) ||
                                         (bias.defined() && bias.requires_grad()));
}
}  // namespace

torch::Tensor GroupNormImpl::forward(const torch::Tensor& input) {
  if (!wants_grad(input, weight, bias)) {
    if (group_norm_takes_fused(input, options.num_groups()))
      return group_norm_fused(input, options.num_groups(), weight, bias, options.eps(), false);
    if (group_norm_takes_channels_last(input))
      return group_norm_channels_last(input, options.num_groups(), weight, bias, options.eps());
  }
  return torch::nn::GroupNormImpl::forward(input);
}

torch::Tensor GroupNormImpl::forward_silu(const torch::Tensor& input) {
  if (!wants_grad(input, weight, bias) && group_norm_takes_fused(input, options.num_groups()))
    return group_norm_fused(input, options.num_groups(), weight, bias, options.eps(), true);
  torch::Tensor y = forward(input);
  return c10::GradMode::is_enabled() ? at::silu(y) : at::silu_(y);
}

void GroupNormImpl::pretty_print(std::ostream& stream) const {
  stream << "rass::nn::GroupNorm(" << options.num_groups() << ", " << options.num_channels()
         << ", eps=" << options.eps() << ", affine=" << (options.affine() ? "true" : "false") << ")";
}

}  // namespace rass::nn
