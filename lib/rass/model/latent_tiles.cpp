#include "rass/model/latent_tiles.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/nn/transfer.hpp"

namespace rass::model {

int64_t effective_tile_overlap(int64_t t, int64_t overlap) { return overlap < t ? overlap : t / 2; }

std::vector<int64_t> tile_offsets(int64_t len, int64_t tile, int64_t overlap) {
  if (tile < 1 || overlap < 0 || overlap >= tile)
    throw std::invalid_argument("tile_offsets: need tile >= 1 and 0 <= overlap < tile");
  // while cur < len: cur = max(n*T - O*n, 0) + T; n += 1
  int64_t n = 0, cur = 0;
  while (cur < len) {
    cur = std::max(n * tile - overlap * n, int64_t(0)) + tile;
    ++n;
  }
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(i == n - 1 ? len - tile : std::max(i * tile - overlap * i, int64_t(0)));
  return out;
}

torch::Tensor gaussian_tile_weights(int64_t tile) {
  const double var = 0.01, norm = std::sqrt(2 * M_PI * var), t2 = double(tile) * double(tile);
  std::vector<double> xs(static_cast<size_t>(tile)), ys(static_cast<size_t>(tile));
  const double mx = (double(tile) - 1) / 2, my = double(tile) / 2;
  for (int64_t i = 0; i < tile; ++i) {
    xs[size_t(i)] = std::exp(-(i - mx) * (i - mx) / t2 / (2 * var)) / norm;
    ys[size_t(i)] = std::exp(-(i - my) * (i - my) / t2 / (2 * var)) / norm;
  }
  torch::Tensor x = torch::tensor(xs, torch::kDouble), y = torch::tensor(ys, torch::kDouble);
  return torch::outer(y, x);
}

torch::Tensor tiled_latent_apply(const torch::Tensor& z, int64_t tile, int64_t overlap,
                                 const std::function<torch::Tensor(const torch::Tensor&)>& fn, int64_t batch) {
  if (batch < 1) throw_usage("latent tiles: batch must be >= 1, got " + std::to_string(batch));
  if (tile < 1 || overlap < 0 || overlap >= tile)
    throw_usage("latent tiles: need tile >= 1 and 0 <= overlap < tile (got " + std::to_string(tile) + ", " +
                std::to_string(overlap) + ")");
  const int64_t h = z.size(2), w = z.size(3);
  if (!latent_tiles_apply(h, w, tile)) return fn(z);
  const int64_t t = std::min({tile, h, w});
  // The reference keeps the overlap when it shrinks the tile to a thin
  // latent's short side: at overlap >= t its grid loop never ends (a
  // 128x4800 image hung rass-restore). There, and only there, half the tile.
  overlap = effective_tile_overlap(t, overlap);
  // The reference adds float32 predictions times float64 weights into float32
  // sums: each product and sum in float64, rounded to float32 once per tile.
  const torch::Tensor weights = nn::host_to_device(gaussian_tile_weights(t), z.device(), torch::kDouble);  // no wait
  torch::Tensor sum = torch::zeros(z.sizes(), z.options().dtype(torch::kFloat));
  torch::Tensor count = torch::zeros({h, w}, z.options().dtype(torch::kFloat));
  using torch::indexing::Slice;
  // (y, x) in the reference's order: its outer loop ("row") walks the x
  // offsets, the inner one ("col") the y offsets; the order of the float32
  // sums in the overlaps follows it.
  std::vector<std::pair<int64_t, int64_t>> at;
  for (int64_t x : tile_offsets(w, t, overlap))
    for (int64_t y : tile_offsets(h, t, overlap)) at.emplace_back(y, x);
  for (size_t a = 0; a < at.size(); a += size_t(batch)) {
    const size_t b = std::min(at.size(), a + size_t(batch));
    std::vector<torch::Tensor> tiles;
    for (size_t i = a; i < b; ++i)
      tiles.push_back(z.index({Slice(), Slice(), Slice(at[i].first, at[i].first + t), Slice(at[i].second, at[i].second + t)}));
    const torch::Tensor pred = fn(tiles.size() == 1 ? tiles[0] : torch::cat(tiles)).to(torch::kFloat);
    for (size_t i = a; i < b; ++i) {
      const auto [y, x] = at[i];
      sum.index({Slice(), Slice(), Slice(y, y + t), Slice(x, x + t)}) += pred.narrow(0, int64_t(i - a), 1) * weights;
      count.index({Slice(y, y + t), Slice(x, x + t)}) += weights;
    }
  }
  return (sum / count).to(z.scalar_type());
}

}  // namespace rass::model
