// detectron2 PointRend's point sampling (projects/PointRend/point_rend/
// point_features.py, commit 02b5c4e2) as Mask2Former's criterion and matcher
// use it: features read at continuous points by bilinear interpolation, and
// PointRend's importance sampling of the most uncertain points.
#pragma once
#include <cstdint>
#include <functional>

#include <torch/types.h>

namespace rass::train {

// point_sample: input [N, C, H, W], coords [N, P, 2] with (x, y) in
// [0, 1] x [0, 1] -> [N, C, P], grid_sample (bilinear, zero padding,
// align_corners false) at 2 * coords - 1. Differentiable in both.
torch::Tensor point_sample(const torch::Tensor& input, const torch::Tensor& coords);

// calculate_uncertainty of Mask2Former's criterion: -|logits| of [R, 1, ...]
// (the most uncertain points, logit 0, score highest).
torch::Tensor calculate_uncertainty(const torch::Tensor& logits);

// Uniform points: a [rows, points, 2] float tensor of values in [0, 1), on
// any device (callers move it), as torch.rand(rows, points, 2) draws them.
using UniformPoints = std::function<torch::Tensor(int64_t rows, int64_t points)>;

// get_uncertain_point_coords_with_randomness with calculate_uncertainty as
// the uncertainty function: draws int(num_points * oversample_ratio) uniform
// points per row of coarse_logits [N, 1, H, W], keeps the
// int(importance_sample_ratio * num_points) most uncertain (top-k of
// -|point logit|, in top-k order), and appends num_points minus those as new
// uniform points. Returns [N, num_points, 2] on coarse_logits' device.
// `uniform` is called once or twice, in the reference's order: the oversampled
// points, then (if any) the random ones. Not differentiable (no grad needed:
// the reference runs it under torch.no_grad()).
torch::Tensor uncertain_point_coords_with_randomness(const torch::Tensor& coarse_logits, int64_t num_points,
                                                     double oversample_ratio, double importance_sample_ratio,
                                                     const UniformPoints& uniform);

}  // namespace rass::train
