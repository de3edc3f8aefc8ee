// The geometry of SAM's automatic mask generator
// (segment_anything.utils.amg): its crop layers, its point grids and the
// filter of masks cut by a crop's edge. Torch-free (rass-sam's model code and
// the torch-free tests both use it).
#pragma once
#include <array>
#include <cstdint>
#include <vector>

namespace rass {

// A crop of the image: x0, y0 inclusive, x1, y1 exclusive, and its layer.
struct SamCrop {
  std::array<int64_t, 4> box{};
  int layer = 0;
};

// generate_crop_boxes: the whole image (layer 0), then for layer i = 1..n
// (2^i)^2 crops of equal size overlapping by
// int(overlap_ratio * short_side * 2 / 2^i) pixels, x outer and y inner.
std::vector<SamCrop> sam_crop_boxes(int64_t width, int64_t height, int n_layers, double overlap_ratio);

// build_all_layer_point_grids' count for one layer: int(n / downscale^layer).
int sam_layer_points_per_side(int points_per_side, int layer, int downscale);

// build_point_grid(n): n x n points in [0, 1]^2 at (i + 0.5) / n, as
// np.linspace(1 / 2n, 1 - 1 / 2n, n) computes them; x fastest.
std::vector<std::array<double, 2>> sam_point_grid(int n);

// is_box_near_crop_edge: a mask box (x0, y0, x1, y1 of its pixels,
// inclusive, in the crop's frame) with a side within 20 pixels of the
// crop's side of the same kind, where that side is not within 20 pixels of
// the image's (0, 0, width, height).
bool sam_box_near_crop_edge(const std::array<int64_t, 4>& box_in_crop, const std::array<int64_t, 4>& crop,
                            int64_t width, int64_t height);

}  // namespace rass
