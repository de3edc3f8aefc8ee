// ResShift's initialisation of its network (zsyOAOA/ResShift trains
// UNetModelSwin from scratch: `model.ckpt_path: ~` in its configs), for
// rass-train resshift with resshift.init random.
//
// What the reference's constructors leave, module by module:
// - every Conv2d and Linear: PyTorch's default reset_parameters, weight
//   kaiming_uniform_(a = sqrt(5)) and bias uniform, both U(-b, b) with
//   b = 1 / sqrt(fan_in), fan_in = in_channels * kernel area;
// - every GroupNorm32: weight 1, bias 0;
// - each ResBlock's out_layers.3 convolution: zero (zero_module), so every
//   block starts as its skip connection;
// - each Swin window attention's relative_position_bias_table:
//   trunc_normal_(std = 0.02) in [-2, 2] (timm's; the bounds lie 100
//   standard deviations out, so a normal draw clamped there is the same
//   distribution in practice).
// The out head (out.2) and everything else keep PyTorch's default. The
// numbers are drawn from one CPU generator seeded by `seed`, module by
// module in named_modules order (every process of a data-parallel run draws
// the same).
#pragma once
#include <cstdint>

#include "rass/nn/resshift_unet.hpp"

namespace rass::nn {

void init_resshift_weights(ResShiftUNetImpl& net, uint64_t seed);

}  // namespace rass::nn
