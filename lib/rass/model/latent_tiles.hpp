// Latent tiling of the one-step UNet pass, as OSEDiff_test.forward does it:
// tiles of size T = min(tile, h, w) (square), stride T - overlap (T / 2 where
// overlap >= T: effective_tile_overlap), the last
// tile of each axis aligned to the edge; each tile's prediction weighted by a
// Gaussian window and the weighted sum divided by the summed weights. Only
// when h*w > tile^2 (else one pass over the whole latent).
#pragma once
#include <functional>
#include <vector>

#include <torch/types.h>

namespace rass::model {

// OSEDiff's condition for tiles: h*w > tile^2 latent pixels.
inline bool latent_tiles_apply(int64_t h, int64_t w, int64_t tile) { return h * w > tile * tile; }

// Tile origins along an axis of length `len` (OSEDiff's grid loop);
// throws std::invalid_argument unless 0 <= overlap < tile (the loop would not end).
std::vector<int64_t> tile_offsets(int64_t len, int64_t tile, int64_t overlap);

// The overlap tiles of side t take: `overlap` (the reference's grid), or
// t / 2 where overlap >= t. OSEDiff keeps the overlap when it shrinks the
// tile to a thin latent's short side, and its grid never ends once
// overlap >= t.
int64_t effective_tile_overlap(int64_t t, int64_t overlap);

// OSEDiff's _gaussian_weights(T, T): exp(-(i-m)^2 / T^2 / (2*0.01)) / sqrt(2*pi*0.01)
// per axis, with m = (T-1)/2 along x but m = T/2 along y (the reference's
// asymmetry, kept), outer product [T(y), T(x)], float64.
torch::Tensor gaussian_tile_weights(int64_t tile);

// Runs `fn` (latent tiles [n, C, T, T] -> predictions of the same shape) over
// the tiles of `z` [1, C, h, w], up to `batch` tiles per call, and blends the
// predictions (in the same order whatever the batch); `fn(z)` once when
// h*w <= tile^2. tile >= 1, 0 <= overlap < tile, batch >= 1 (Error(usage)
// otherwise).
torch::Tensor tiled_latent_apply(const torch::Tensor& z, int64_t tile, int64_t overlap,
                                 const std::function<torch::Tensor(const torch::Tensor&)>& fn, int64_t batch = 1);

}  // namespace rass::model
