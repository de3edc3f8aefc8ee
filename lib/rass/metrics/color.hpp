// Luma definitions of the two metric conventions, reproduced in the
// arithmetic precision of the reference code so that rounding ties agree.
// Two forms: whole planes (Channels) and single rows (row_*), which the
// metrics use to stream over an image without full-size float copies.
#pragma once
#include <cstdint>
#include <vector>

#include "rass/core/image.hpp"

namespace rass::metrics {

// Float planes of an 8-bit image in [0, 255] (gray or RGB; alpha dropped).
struct Channels {
  int width = 0, height = 0, count = 0;
  std::vector<double> data;  // count planes, row-major
  const double* plane(int c) const { return data.data() + size_t(c) * width * height; }
  double* plane(int c) { return data.data() + size_t(c) * width * height; }
};

// Colour planes of an image: 3 for RGB(A), 1 for gray (+alpha).
inline int colour_count(const Image& img) { return img.channels >= 3 ? 3 : 1; }

// BasicSR to_y_channel: BT.601 limited range, Y = 16 + 65.481 r + 128.553 g + 24.966 b
// with r, g, b in [0, 1], computed as BasicSR does (float32 input, float64 dot,
// float32 result) and returned in [0, 255] units; `round` rounds half to even
// (np.round, used by NIQE). A gray image is returned as is.
Channels y_basicsr(const Image& img, bool round);
// Throws Error(bad_input) when a crop of `border` pixels per side leaves nothing of a w x h image.
void check_crop(int width, int height, int border);

// Row forms: the metrics stream over rows with these. `src` points at the first
// pixel of `n` interleaved pixels of `channels` 8-bit samples (1..4; alpha ignored).
// Sample k (0..2; a gray image has only k = 0) as double.
void row_channel(const uint8_t* src, int channels, int k, int n, double* out);
// y_basicsr of a row (gray: the value as is).
void row_y_basicsr(const uint8_t* src, int channels, int n, bool round, double* out);
// pyiqa's Y of YIQ: 0.299 R + 0.587 G + 0.114 B on [0, 1] in float32, times
// `range`; rounded when range >= 255 (pyiqa's to_y_channel). Gray is
// replicated to RGB first, as pyiqa loads it, so Y equals the gray value.
void row_y_pyiqa(const uint8_t* src, int channels, int n, double range, double* out);

}  // namespace rass::metrics
