// Multi-scale deformable attention (Deformable DETR, as Mask2Former ships it:
// pixel_decoder/ops/modules/ms_deform_attn.py), with the official parameter
// names sampling_offsets, attention_weights, value_proj, output_proj. The core
// is ms_deform_attn_core_pytorch written with LibTorch ops (grid_sample,
// bilinear, zero padding, align_corners false), so autograd runs through it.
#pragma once
#include <array>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include "rass/nn/linear.hpp"

namespace rass::nn {

// (H, W) of each level, in the order the levels are concatenated.
using SpatialShapes = std::vector<std::array<int64_t, 2>>;

// value [N, S, M, D] (S = sum of H*W), sampling_locations [N, Lq, M, L, P, 2]
// as (x, y) in [0, 1], attention_weights [N, Lq, M, L, P] -> [N, Lq, M*D].
torch::Tensor ms_deform_attn_core(const torch::Tensor& value, const SpatialShapes& shapes,
                                  const torch::Tensor& sampling_locations, const torch::Tensor& attention_weights);

// The same computation by the element code of ms_deform_attn_kernel.hpp, as
// an autograd function: the CUDA kernels on a GPU (a CUDA build), the same
// code in CPU loops on the CPU (float32 arithmetic; what the CPU tests check
// the kernels' arithmetic with). ms_deform_attn_core uses it on CUDA tensors
// unless RASS_MSDA_KERNEL=0.
torch::Tensor ms_deform_attn_direct(const torch::Tensor& value, const SpatialShapes& shapes,
                                    const torch::Tensor& sampling_locations, const torch::Tensor& attention_weights);
// Whether this build has the CUDA kernels (a CUDA LibTorch and nvcc).
bool ms_deform_attn_has_cuda_kernel();

struct MSDeformAttnImpl : torch::nn::Module {
  MSDeformAttnImpl(int64_t d_model, int64_t n_levels, int64_t n_heads, int64_t n_points);
  // query [N, Lq, C]; reference_points [N, Lq, L, 2] (x, y in [0, 1]);
  // input_flatten [N, S, C] -> [N, Lq, C]. No padding mask: the head never
  // pads (Mask2Former passes an all-false mask).
  torch::Tensor forward(const torch::Tensor& query, const torch::Tensor& reference_points,
                        const torch::Tensor& input_flatten, const SpatialShapes& shapes);
  // The official _reset_parameters: zero offset weights with a per-head ring
  // of initial offsets in the bias, uniform attention, xavier projections.
  void reset_parameters();

  int64_t d_model, n_levels, n_heads, n_points;
  rass::nn::Linear sampling_offsets{nullptr}, attention_weights{nullptr}, value_proj{nullptr}, output_proj{nullptr};
};
TORCH_MODULE(MSDeformAttn);

}  // namespace rass::nn
