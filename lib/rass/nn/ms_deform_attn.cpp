#include "rass/nn/ms_deform_attn.hpp"

#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include <ATen/Parallel.h>
#include <torch/nn/init.h>
#include <torch/torch.h>

#include "rass/nn/linear.hpp"
#include "rass/nn/ms_deform_attn_kernel.hpp"
#include "rass/nn/transfer.hpp"
#ifdef RASS_MSDA_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "rass/nn/ms_deform_attn_cuda.hpp"
#endif

namespace rass::nn {

namespace {

// The kernels' geometry from the tensors, checked (a wrong shape would read
// out of bounds in a kernel, where no LibTorch check runs).
msda::Geometry geometry(const torch::Tensor& value, const std::vector<int64_t>& hw, const torch::Tensor& loc,
                        const torch::Tensor& attn) {
  msda::Geometry g;
  const int64_t L = static_cast<int64_t>(hw.size() / 2);
  if (value.dim() != 4 || loc.dim() != 6 || attn.dim() != 5 || L < 1 || L > msda::kMaxLevels)
    throw std::invalid_argument("ms_deform_attn: value [N,S,M,D], locations [N,Lq,M,L,P,2], weights [N,Lq,M,L,P] and 1-" +
                                std::to_string(msda::kMaxLevels) + " levels expected");
  g.N = value.size(0), g.S = value.size(1), g.M = value.size(2), g.D = value.size(3);
  g.Lq = loc.size(1), g.L = L, g.P = loc.size(4);
  int64_t s = 0;
  for (int64_t l = 0; l < L; ++l) {
    g.H[l] = hw[2 * l], g.W[l] = hw[2 * l + 1], g.start[l] = s;
    s += g.H[l] * g.W[l];
  }
  if (s != g.S || loc.sizes() != torch::IntArrayRef({g.N, g.Lq, g.M, g.L, g.P, 2}) ||
      attn.sizes() != torch::IntArrayRef({g.N, g.Lq, g.M, g.L, g.P}))
    throw std::invalid_argument("ms_deform_attn: value, locations, weights and level shapes disagree");
  return g;
}

std::vector<int64_t> flat_shapes(const SpatialShapes& shapes) {
  std::vector<int64_t> hw;
  for (const auto& s : shapes) hw.insert(hw.end(), {s[0], s[1]});
  return hw;
}

#ifdef RASS_MSDA_CUDA
void cuda_check(const std::string& err, const char* what) {
  if (!err.empty()) throw std::runtime_error(std::string("ms_deform_attn CUDA ") + what + ": " + err);
}
#endif

// value (any float type), locations and weights -> [N, Lq, M, D] float32.
torch::Tensor direct_forward(const torch::Tensor& value_in, const std::vector<int64_t>& hw, const torch::Tensor& loc_in,
                             const torch::Tensor& attn_in) {
  const torch::Tensor loc = loc_in.to(torch::kFloat32).contiguous(), attn = attn_in.to(torch::kFloat32).contiguous();
  torch::Tensor value = value_in.contiguous();
  const msda::Geometry g = geometry(value, hw, loc, attn);
  torch::Tensor out = torch::empty({g.N, g.Lq, g.M, g.D}, loc.options());
#ifdef RASS_MSDA_CUDA
  if (value.is_cuda()) {
    const c10::cuda::CUDAGuard guard(value.device());
    msda::ValueType type = msda::ValueType::f32;
    if (value.scalar_type() == torch::kFloat16) type = msda::ValueType::f16;
    else if (value.scalar_type() == torch::kBFloat16) type = msda::ValueType::bf16;
    else value = value.to(torch::kFloat32);
    cuda_check(msda::forward_cuda(g, type, value.data_ptr(), loc.data_ptr<float>(), attn.data_ptr<float>(),
                                  out.data_ptr<float>(), c10::cuda::getCurrentCUDAStream().stream()),
               "forward");
    return out;
  }
#endif
  if (!value.device().is_cpu()) throw std::invalid_argument("ms_deform_attn: no kernel for " + value.device().str());
  value = value.to(torch::kFloat32);
  const float *v = value.data_ptr<float>(), *l = loc.data_ptr<float>(), *a = attn.data_ptr<float>();
  float* o = out.data_ptr<float>();
  at::parallel_for(0, g.N * g.Lq * g.M, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      for (int64_t d = 0; d < g.D; ++d)
        o[i * g.D + d] = msda::forward_element(g, v, l, a, i / (g.Lq * g.M), (i / g.M) % g.Lq, i % g.M, d);
  });
  return out;
}

// Gradients (float32) of value, locations and weights from grad_out [N, Lq, M, D].
std::array<torch::Tensor, 3> direct_backward(const torch::Tensor& value_in, const std::vector<int64_t>& hw,
                                             const torch::Tensor& loc_in, const torch::Tensor& attn_in,
                                             const torch::Tensor& grad_in) {
  const torch::Tensor value = value_in.to(torch::kFloat32).contiguous(), loc = loc_in.to(torch::kFloat32).contiguous(),
                      attn = attn_in.to(torch::kFloat32).contiguous(), grad = grad_in.to(torch::kFloat32).contiguous();
  const msda::Geometry g = geometry(value, hw, loc, attn);
  torch::Tensor gv = torch::zeros_like(value), gl = torch::empty_like(loc), ga = torch::empty_like(attn);
#ifdef RASS_MSDA_CUDA
  if (value.is_cuda()) {
    const c10::cuda::CUDAGuard guard(value.device());
    cuda_check(msda::backward_cuda(g, value.data_ptr<float>(), loc.data_ptr<float>(), attn.data_ptr<float>(),
                                   grad.data_ptr<float>(), gv.data_ptr<float>(), gl.data_ptr<float>(),
                                   ga.data_ptr<float>(), c10::cuda::getCurrentCUDAStream().stream()),
               "backward");
    return {gv, gl, ga};
  }
#endif
  if (!value.device().is_cpu()) throw std::invalid_argument("ms_deform_attn: no kernel for " + value.device().str());
  // One thread: points share value corners (the GPU adds atomically).
  auto add = [](float* p, float x) { *p += x; };
  const float *v = value.data_ptr<float>(), *l = loc.data_ptr<float>(), *a = attn.data_ptr<float>(),
              *go = grad.data_ptr<float>();
  float *gvp = gv.data_ptr<float>(), *glp = gl.data_ptr<float>(), *gap = ga.data_ptr<float>();
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t q = 0; q < g.Lq; ++q)
      for (int64_t m = 0; m < g.M; ++m)
        for (int lv = 0; lv < g.L; ++lv)
          for (int64_t p = 0; p < g.P; ++p) msda::backward_point(g, v, l, a, go, n, q, m, lv, p, gvp, glp, gap, add);
  return {gv, gl, ga};
}

// The kernel as an autograd function: value, locations, weights -> [N, Lq, M*D].
struct MsdaFunction : torch::autograd::Function<MsdaFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& value,
                               std::vector<int64_t> hw, const torch::Tensor& loc, const torch::Tensor& attn) {
    ctx->save_for_backward({value, loc, attn});
    ctx->saved_data["hw"] = hw;
    const torch::Tensor out = direct_forward(value, hw, loc, attn);
    return out.view({out.size(0), out.size(1), -1}).to(value.scalar_type());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &value = saved[0], &loc = saved[1], &attn = saved[2];
    const std::vector<int64_t> hw = ctx->saved_data["hw"].toIntVector();
    const torch::Tensor grad = grads[0].view({value.size(0), loc.size(1), value.size(2), value.size(3)});
    auto [gv, gl, ga] = direct_backward(value, hw, loc, attn, grad);
    return {gv.to(value.scalar_type()), torch::Tensor(), gl.to(loc.scalar_type()), ga.to(attn.scalar_type())};
  }
};

bool kernel_switched_on() {
  static const bool on = [] {
    const char* e = std::getenv("RASS_MSDA_KERNEL");
    return !(e && std::string(e) == "0");
  }();
  return on;
}

}  // namespace

bool ms_deform_attn_has_cuda_kernel() {
#ifdef RASS_MSDA_CUDA
  return true;
#else
  return false;
#endif
}

torch::Tensor ms_deform_attn_direct(const torch::Tensor& value, const SpatialShapes& shapes,
                                    const torch::Tensor& sampling_locations, const torch::Tensor& attention_weights) {
  return MsdaFunction::apply(value, flat_shapes(shapes), sampling_locations, attention_weights);
}

torch::Tensor ms_deform_attn_core(const torch::Tensor& value, const SpatialShapes& shapes,
                                  const torch::Tensor& sampling_locations, const torch::Tensor& attention_weights) {
  // On a GPU, the CUDA kernel (one pass, no [N*M, D, Lq, L*P] intermediate)
  // unless RASS_MSDA_KERNEL=0 asks for the LibTorch-ops version (measurement).
  if (value.is_cuda() && ms_deform_attn_has_cuda_kernel() && kernel_switched_on())
    return ms_deform_attn_direct(value, shapes, sampling_locations, attention_weights);
  const int64_t N = value.size(0), M = value.size(2), D = value.size(3);
  const int64_t Lq = sampling_locations.size(1), L = sampling_locations.size(3), P = sampling_locations.size(4);
  std::vector<int64_t> sizes;
  for (const auto& hw : shapes) sizes.push_back(hw[0] * hw[1]);
  const auto values = value.split_with_sizes(sizes, 1);
  // grid_sample's grid is in [-1, 1].
  const torch::Tensor grids = sampling_locations * 2 - 1;
  std::vector<torch::Tensor> sampled;
  sampled.reserve(shapes.size());
  for (size_t l = 0; l < shapes.size(); ++l) {
    // [N, HW, M, D] -> [N*M, D, H, W]
    const torch::Tensor v = values[l].flatten(2).transpose(1, 2).reshape({N * M, D, shapes[l][0], shapes[l][1]});
    // [N, Lq, M, P, 2] -> [N*M, Lq, P, 2]
    const torch::Tensor g = grids.select(3, static_cast<int64_t>(l)).transpose(1, 2).flatten(0, 1);
    // interpolation 0 = bilinear, padding 0 = zeros: [N*M, D, Lq, P]
    sampled.push_back(torch::grid_sampler(v, g, 0, 0, /*align_corners=*/false));
  }
  const torch::Tensor w = attention_weights.transpose(1, 2).reshape({N * M, 1, Lq, L * P});
  const torch::Tensor out = (torch::stack(sampled, -2).flatten(-2) * w).sum(-1).view({N, M * D, Lq});
  return out.transpose(1, 2).contiguous();
}

MSDeformAttnImpl::MSDeformAttnImpl(int64_t d_model_, int64_t n_levels_, int64_t n_heads_, int64_t n_points_)
    : d_model(d_model_), n_levels(n_levels_), n_heads(n_heads_), n_points(n_points_) {
  if (d_model % n_heads != 0)
    throw std::invalid_argument("MSDeformAttn: d_model " + std::to_string(d_model) + " is not divisible by heads " +
                                std::to_string(n_heads));
  sampling_offsets = register_module("sampling_offsets", rass::nn::Linear(d_model, n_heads * n_levels * n_points * 2));
  attention_weights = register_module("attention_weights", rass::nn::Linear(d_model, n_heads * n_levels * n_points));
  value_proj = register_module("value_proj", rass::nn::Linear(d_model, d_model));
  output_proj = register_module("output_proj", rass::nn::Linear(d_model, d_model));
  reset_parameters();
}

void MSDeformAttnImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  sampling_offsets->weight.zero_();
  const torch::Tensor thetas = torch::arange(n_heads, torch::kFloat32) * (2.0 * M_PI / static_cast<double>(n_heads));
  torch::Tensor grid = torch::stack({thetas.cos(), thetas.sin()}, -1);
  grid = (grid / std::get<0>(grid.abs().max(-1, true))).view({n_heads, 1, 1, 2}).repeat({1, n_levels, n_points, 1});
  grid = grid * torch::arange(1, n_points + 1, torch::kFloat32).view({1, 1, n_points, 1});
  sampling_offsets->bias.copy_(grid.reshape(-1));
  attention_weights->weight.zero_();
  attention_weights->bias.zero_();
  torch::nn::init::xavier_uniform_(value_proj->weight);
  value_proj->bias.zero_();
  torch::nn::init::xavier_uniform_(output_proj->weight);
  output_proj->bias.zero_();
}

torch::Tensor MSDeformAttnImpl::forward(const torch::Tensor& query, const torch::Tensor& reference_points,
                                        const torch::Tensor& input_flatten, const SpatialShapes& shapes) {
  const int64_t N = query.size(0), Lq = query.size(1), S = input_flatten.size(1);
  int64_t total = 0;
  for (const auto& hw : shapes) total += hw[0] * hw[1];
  if (total != S || static_cast<int64_t>(shapes.size()) != n_levels)
    throw std::invalid_argument("MSDeformAttn: " + std::to_string(shapes.size()) + " levels of " +
                                std::to_string(total) + " positions for an input of " + std::to_string(S) +
                                " positions and " + std::to_string(n_levels) + " levels");
  const torch::Tensor value = value_proj(input_flatten).view({N, S, n_heads, d_model / n_heads});
  const torch::Tensor offsets = sampling_offsets(query).view({N, Lq, n_heads, n_levels, n_points, 2});
  const torch::Tensor weights = torch::softmax(attention_weights(query).view({N, Lq, n_heads, n_levels * n_points}), -1)
                                    .view({N, Lq, n_heads, n_levels, n_points});
  // Offsets are in pixels of each level: normalised by (W, H).
  std::vector<float> wh;
  for (const auto& hw : shapes) {
    wh.push_back(static_cast<float>(hw[1]));
    wh.push_back(static_cast<float>(hw[0]));
  }
  const torch::Tensor normalizer =
      host_to_device(torch::tensor(wh, torch::TensorOptions().dtype(torch::kFloat32)), offsets.device(), offsets.scalar_type())
          .view({1, 1, 1, n_levels, 1, 2});
  using torch::indexing::None;
  using torch::indexing::Slice;
  const torch::Tensor locations =
      reference_points.index({Slice(), Slice(), None, Slice(), None, Slice()}) + offsets / normalizer;
  return output_proj(ms_deform_attn_core(value, shapes, locations, weights));
}

}  // namespace rass::nn
