// A 3x3 convolution (stride 1, zero padding 1) of a nearest x2 upsampled
// image, computed without the upsampled image: each of the four output
// phases (even/odd row, even/odd column) sees only two source rows and two
// source columns, so it is a 2x2 convolution of the source with the 3x3
// taps summed where they fall on the same source pixel:
//   even rows: x[i-1] w[0] + x[i] (w[1] + w[2]);  odd rows: x[i] (w[0] + w[1]) + x[i+1] w[2]
// (columns alike). Why: 4 multiply-adds per output pixel and input channel
// instead of 9 (each phase computes (H+1) x (W+1) outputs, one row and
// column more than it keeps), and no 4x-sized upsampled tensor written and
// read. Every Upsample2D of the UNet (3) and the VAE decoder (3) is one:
// about 16% of the UNet's and 27% of the decoder's multiply-adds at 512 px.
// The same value in exact arithmetic; in floating point the summed taps
// round once more (measured by tests/nn/test_upsample_conv.cpp, LibTorch
// 2.11 CPU: float32 1.8e-7 relative to float64 against the two steps'
// 3.7e-7; bf16 3.4e-3 against 2.7e-3). Four convolutions, not one of the
// four kernels stacked: that would read x once but hold all four phases'
// outputs at once (the size of the output) before they are interleaved.
#pragma once
#include <ATen/core/Tensor.h>

namespace rass::nn {

// conv2d(nearest_x2(x), weight, bias, stride 1, padding 1) for x [N, C, H, W]
// and weight [O, C, 3, 3] (bias [O] or undefined): [N, O, 2H, 2W] in the
// dtype and memory format the convolution gives (channels-last stays channels-last).
at::Tensor upsample2x_conv3x3(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

// Whether the phases pay for x: their four 2x2 kernels are summed from the
// weight on every call (a cache could not tell a weight changed in place), a
// cost of the weight's size that a small input does not win back. Measured
// on the CPU (2-core EPYC, bf16, LibTorch 2.11): 1280 channels at 16x16
// 0.073 s against the two steps' 0.044; at 32x32 and larger the phases are
// 1.7-2.7x faster. So: at least 1024 source pixels over the batch, or any
// size with RASS_UPSAMPLE_PHASES=force (tests: the tiny models' sizes).
bool upsample_phases_pay(const at::Tensor& x);

// Whether Upsample2D uses upsample2x_conv3x3 (inference only: with autograd
// recording, the reference's two steps). RASS_UPSAMPLE_PHASES (read once):
// unset or 1 on, 0 off (measurement), force on at every size (tests);
// anything else throws Error(usage) naming it (rass-restore and rass-segment
// ask before loading the model); set_upsample_phases overrides it (tests).
enum class UpsamplePhases { off, on, force };
UpsamplePhases upsample_phases();
bool upsample_phases_on();  // on or force
void set_upsample_phases(UpsamplePhases mode);

}  // namespace rass::nn
