// The input sizes of rass-restore, torch-free. Two policies:
//   osediff (default) — exactly test_osediff.py: with upscale r and
//     process_size P (512), an image with a side under P // r is first
//     resized (PIL bicubic) by s = (P // r) / min(w, h) to (int(s*w),
//     int(s*h)); then upscaled by r (PIL bicubic); then resized (PIL LANCZOS)
//     down to a multiple of 8 per side. The output keeps that size (the
//     script's resize back to the original size discards its result, so it
//     has no effect there either). Resizes to the same size are skipped, as
//     PIL's Image.resize returns a copy then.
//   pad — upscale by r (PIL bicubic) only, pad right and bottom to a
//     multiple of 8 by replicating the edge pixels (replicate works for any
//     size, reflect needs more pixels than the pad), and crop the output back
//     to exactly the upscaled size.
#pragma once
#include <string>
#include <utility>

#include "rass/core/image.hpp"

namespace rass::model {

enum class SizePolicy { osediff, pad };

struct PreparedInput {
  Image image;               // 8-bit RGB, both sides multiples of 8: what the VAE encodes
  Image reference;           // the colour-fix source: `image` (osediff) or the unpadded upscaled image (pad)
  int out_width = 0, out_height = 0;  // the restored image's size (crop of the network output)
};

// `rgb` must be 8-bit RGB (see to_rgb8). Throws Error(bad_input) naming
// `name` when the result would be smaller than 8x8 (no latent pixel).
PreparedInput prepare_input(const Image& rgb, int upscale, SizePolicy policy, int process_size, const std::string& name);

// The size prepare_input gives an image of w x h (the network's input, both
// sides multiples of 8), worked out without resizing: to know before the
// work whether tiles apply. {0, 0} where prepare_input would refuse it.
std::pair<int, int> processed_size(int w, int h, int upscale, SizePolicy policy, int process_size);

// PIL's convert('RGB') of an 8-bit image: gray is replicated, alpha dropped
// (not composited). 16-bit images are refused with Error(bad_input).
Image to_rgb8(Image img, const std::string& name);

}  // namespace rass::model
