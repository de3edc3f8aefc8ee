#include "rass/core/sam_crops.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace rass {

std::vector<SamCrop> sam_crop_boxes(int64_t width, int64_t height, int n_layers, double overlap_ratio) {
  std::vector<SamCrop> out{{{0, 0, width, height}, 0}};
  const int64_t short_side = std::min(width, height);
  // crop_len: int(math.ceil((overlap * (n - 1) + length) / n)), a float division.
  auto crop_len = [](int64_t length, int64_t n, int64_t overlap) {
    return int64_t(std::ceil(double(overlap * (n - 1) + length) / double(n)));
  };
  for (int layer = 0; layer < n_layers; ++layer) {
    const int64_t n = int64_t(1) << (layer + 1);
    // Python evaluates overlap_ratio * short_side * (2 / n) left to right.
    const int64_t overlap = int64_t(overlap_ratio * double(short_side) * (2.0 / double(n)));
    const int64_t cw = crop_len(width, n, overlap), ch = crop_len(height, n, overlap);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        const int64_t x0 = (cw - overlap) * i, y0 = (ch - overlap) * j;
        out.push_back({{x0, y0, std::min(x0 + cw, width), std::min(y0 + ch, height)}, layer + 1});
      }
  }
  return out;
}

int sam_layer_points_per_side(int points_per_side, int layer, int downscale) {
  return int(double(points_per_side) / std::pow(double(downscale), double(layer)));
}

std::vector<std::array<double, 2>> sam_point_grid(int n) {
  // np.linspace(start, stop, n): start + i * step with step = (stop - start) / (n - 1),
  // the last point set to stop exactly; n == 1 gives start.
  const double start = 1.0 / (2.0 * n), stop = 1.0 - start;
  std::vector<double> side(size_t(std::max(n, 0)));
  for (int i = 0; i < n; ++i) side[size_t(i)] = n == 1 ? start : start + double(i) * ((stop - start) / double(n - 1));
  if (n > 1) side.back() = stop;
  std::vector<std::array<double, 2>> grid;
  for (int iy = 0; iy < n; ++iy)
    for (int ix = 0; ix < n; ++ix) grid.push_back({side[size_t(ix)], side[size_t(iy)]});
  return grid;
}

bool sam_box_near_crop_edge(const std::array<int64_t, 4>& box_in_crop, const std::array<int64_t, 4>& crop,
                            int64_t width, int64_t height) {
  const std::array<int64_t, 4> image{0, 0, width, height};
  const std::array<int64_t, 4> offset{crop[0], crop[1], crop[0], crop[1]};
  for (size_t k = 0; k < 4; ++k) {
    const int64_t b = box_in_crop[k] + offset[k];
    if (std::llabs(b - crop[k]) <= 20 && std::llabs(b - image[k]) > 20) return true;
  }
  return false;
}

}  // namespace rass
