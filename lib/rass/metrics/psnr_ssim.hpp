// Full-reference PSNR and SSIM in the two conventions papers use
// (REFERENCE.md 5). All take 8-bit images of equal size and channel count.
//
// Memory: nothing full-size is allocated. PSNR streams over the 8-bit rows;
// SSIM converts one row at a time and keeps the horizontally filtered rows of
// the 11-row Gaussian window in a ring (about 64 doubles per image column),
// so a pair costs its two decoded images plus O(width). The arithmetic is the
// reference's, in the same order, so results equal the whole-plane form.
#pragma once
#include <functional>

#include "rass/core/image.hpp"
#include "rass/metrics/color.hpp"

namespace rass::metrics {

// BasicSR (basicsr/metrics/psnr_ssim.py): [0, 255] float64, crop_border pixels
// removed, optional limited-range Y; PSNR = 10 log10(255^2 / mse), +inf when equal.
double psnr_basicsr(const Image& a, const Image& b, int crop_border, bool y_channel);
// SSIM with an 11x11 Gaussian (sigma 1.5) window, 'valid' region, C1 = (0.01*255)^2,
// C2 = (0.03*255)^2, mean over channels.
double ssim_basicsr(const Image& a, const Image& b, int crop_border, bool y_channel);

// pyiqa conventions (implemented from the spec): inputs RGB in [0, 1].
// psnr: 10 log10(1 / (mse + 1e-8)) over all channels; psnry: on YIQ's Y.
double psnr_pyiqa(const Image& a, const Image& b, bool y_channel, int crop_border);
// ssim: on round(255 Y) (y_channel) or on the RGB channels x 255 (ssimc), with the
// contrast-structure term clamped at 0 (ReLU).
double ssim_pyiqa(const Image& a, const Image& b, bool y_channel, int crop_border);

// The SSIM map mean of one pair of planes (window 11x11 sigma 1.5, valid region).
double ssim_plane(const double* x, const double* y, int width, int height, bool relu_cs);
// The same, streamed: fill(r, x, y) writes row r (0 <= r < height, increasing)
// of both planes, `width` values each. Holds O(width) memory.
using SsimRowFill = std::function<void(int row, double* x, double* y)>;
double ssim_rows(int width, int height, const SsimRowFill& fill, bool relu_cs);

}  // namespace rass::metrics
