// DETR's PositionEmbeddingSine as Mask2Former uses it (normalize=True, scale
// 2*pi, temperature 10000, no padding mask): transformer_decoder/position_encoding.py.
#pragma once
#include <torch/types.h>

namespace rass::nn {

// x [B, C, H, W] (only its shape, device and dtype are used) ->
// [B, 2*num_pos_feats, H, W]: the y half, then the x half.
torch::Tensor position_embedding_sine(const torch::Tensor& x, int64_t num_pos_feats, double temperature = 10000.0);

}  // namespace rass::nn
