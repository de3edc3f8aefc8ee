// The semantic-constrained loss of SCR (seed 000 section 3.2, equations 2-4)
// on the cross-attention probabilities one UNet call recorded
// (nn::UNetCaptures with cross_attention = true).
//
// For every selected attn2 layer, every sample b, every target term of b and
// every token position of that term (a tag of several CLIP tokens gives one
// map per token):
//   a = the probabilities of the queries for that key, averaged over heads,
//       as an h x w map (the layer's own resolution);
//   A = (a - min a) / (max a - min a + 1e-8)          -- "A in [0,1]" (eq. 3)
//   M = the term's mask resized to h x w (resize_mask)
//   region = 1 - sum(A * M) / (sum(A) + 1e-8)         -- eq. 3
//   pixel  = mean BCE(clamp(A, 1e-4, 1 - 1e-4), M)        -- eq. 4 (why the clamp: scl_loss.cpp)
// A sample's terms are the mean over its maps; the batch's is the sum over
// samples / batch size (a sample without any target term adds 0). Averaging
// per sample first keeps the loss a mean over samples, so N data-parallel
// processes give the same gradient as one with the combined batch
// (stage.hpp's contract), whatever the number of maps per sample.
//
// Why heads are averaged: the paper (eq. 3-4, Figure 3, Figure 8) speaks of
// "the attention map A_n" of a tag per layer and never of heads; it does not
// say how heads are combined. Averaging follows its Figure 8 aggregation (and
// rass-restore's --attention maps, model::aggregate_cross_attention), and it
// constrains what the layer attends to as a whole rather than forcing every
// head onto the same mask (heads stay free to specialise).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "rass/nn/unet.hpp"

namespace rass::train {

// One term of one sample: its token positions (0-based, < the key count) and
// its binary mask at the image (crop) resolution, float [H, W].
struct SclTarget {
  std::vector<int64_t> positions;
  torch::Tensor mask;
};

struct SclResult {
  torch::Tensor region, pixel;  // scalars (0 with no graph when there are no maps)
  int64_t maps = 0;             // maps that entered the loss
};

// The mask [H, W] (0/1) at h x w: the fraction of each target cell the mask
// covers (area average, torch's interpolate mode "area" = adaptive average
// pooling), then 1 where that fraction is >= 0.5. Area-then-threshold rather
// than nearest: nearest samples one pixel per cell, so a thin object is kept
// or lost depending on where the sample falls (and a flip of the image does
// not flip the coarse mask exactly); the cell fraction keeps M binary, as the
// paper defines it (M in {0,1}), and decides each cell by majority.
torch::Tensor resize_mask(const torch::Tensor& mask, int64_t h, int64_t w);

// The paths among `available` (the UNet's attn2 modules) that contain one of
// `patterns` as a substring; all of them when `patterns` is empty. Throws
// Error(usage) naming the patterns when nothing matches.
std::vector<std::string> select_scl_layers(const std::vector<std::string>& available,
                                           const std::vector<std::string>& patterns);

// The loss of one UNet call. `captured`: what the call recorded (attention
// probabilities [batch*heads, h*w, keys], batch-major as diffusers'
// head_to_batch_dim lays them out); `targets[b]`: sample b's terms;
// `latent_h` x `latent_w`: the UNet input's size (level l has the size halved
// l times, rounding up); `layers`: the selected paths (select_scl_layers),
// empty for every captured attn2. Throws Error(runtime) when a captured map
// fits no level, or a position is outside the keys.
SclResult scl_loss(const std::vector<nn::CapturedAttention>& captured, const std::vector<std::vector<SclTarget>>& targets,
                   int64_t latent_h, int64_t latent_w, const std::vector<std::string>& layers = {});

}  // namespace rass::train
