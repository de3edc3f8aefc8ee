// Pillow's Image.resize, reproduced to the byte on 8-bit images: OSEDiff and
// SCR prepare their inputs with PIL (bicubic x upscale, LANCZOS down to a
// multiple of 8), so rass-restore must resize exactly as PIL does to give the
// reference's numbers. PIL resamples separably (horizontal pass, then
// vertical) with filters whose support widens by the scale factor when
// shrinking (antialiasing) and fixed-point coefficients on 8-bit data.
#pragma once
#include "rass/core/image.hpp"

namespace rass {

enum class PilFilter { nearest, box, bilinear, hamming, bicubic, lanczos };

// Image.resize((out_w, out_h), filter) of an 8-bit image with 1 to 4
// channels (L, LA, RGB, RGBA). As Image.resize does, LA and RGBA are
// resampled premultiplied by alpha (except with nearest), and images taller
// than 100 times their width are resampled vertically first (Pillow >= 12.2).
// Throws Error(bad_input) for 16-bit images and Error(usage) for a zero or
// negative size.
Image pil_resize(const Image& in, int out_w, int out_h, PilFilter filter);

}  // namespace rass
