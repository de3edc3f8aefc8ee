// MUSIQ as rass-eval-iqa's no-reference metrics (musiq, musiq-ava,
// musiq-spaq, musiq-paq2piq): the multi-scale representation of an image as
// the numbers papers report compute it (pyiqa's MUSIQ, checked against it as
// a test oracle), the weight file, and the registration.
//
// The representation (paper section 3.1, official preprocessing.py): the
// image in [-1, 1]; for each longer side L in {224, 384} (sorted, scale ids 0
// and 1) an aspect-preserving resize to round(h * L / max(h, w)) x
// round(w * L / max(h, w)) (round half to even, the ratio in double), bicubic
// (a = -0.75, half-pixel centres, no antialiasing, no clamping); then the
// native image (scale id 2). Each is zero-padded to a multiple of 32, half
// the padding before ("SAME"), and cut into 32x32 patches in row-major
// order, each with its hashed position on the 10x10 grid:
// row floor(i * 10 / rows) * 10 + column floor(j * 10 / columns). The
// reference pads the resized scales to 49 and 144 tokens with masked zero
// patches; those never reach the class token, so they are not made here.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "rass/nn/iqa_musiq.hpp"

namespace rass::model {

struct MusiqTokens {
  torch::Tensor patches;  // [B, L, 3, 32, 32] float
  torch::Tensor spatial;  // [L] int64: hash-grid index
  torch::Tensor scale;    // [L] int64: scale index
};

// The resized (height, width) of one scale of an h x w image; (0, ...) when
// the image is too elongated for that scale.
std::pair<int64_t, int64_t> musiq_scaled_size(int64_t h, int64_t w, int64_t longer_side);

// The tokens of same-size images `images` [B, 3, H, W] with values in [0, 1].
// Throws Error(bad_input) naming `what` when a scale would be empty.
MusiqTokens musiq_tokens(const torch::Tensor& images, const std::string& what = "image",
                         const std::vector<int64_t>& longer_sides = {224, 384});

// A converted weight file (scripts/convert_iqa_musiq.py): the configuration
// is read from the tensors' shapes (hidden size, layers, MLP width, one score
// or a distribution) and the file's metadata (num_heads; 6 when absent, the
// released models'). Strict name-checked load; on `device`, in eval mode.
nn::MusiqNet load_musiq(const std::string& path, const torch::Device& device = torch::kCPU);

// Registers musiq (KonIQ-10k), musiq-ava, musiq-spaq and musiq-paq2piq with
// rass-eval-iqa (metrics/deep_iqa.hpp).
void register_musiq_metric();

}  // namespace rass::model
