// Resizing with the exact index and weight rules of torch.nn.functional.interpolate
// (align_corners=False, antialias=False), which the reference pipeline uses:
//   bilinear: src = (dst + 0.5) * s - 0.5, clamped at 0; neighbours x0, min(x0+1, n-1);
//             an axis whose size does not change is copied (ATen does so, scale factor or not)
//   bicubic:  same src without the clamp; Keys cubic with A = -0.75; indices clamped
//   area:     adaptive average pooling, bin [floor(i*n/m), ceil((i+1)*n/m))
//   nearest:  src = floor(dst * s)
// s is 1/scale_factor when the caller passed a scale factor (torch keeps it for the
// coordinate mapping), else in_size/out_size.
#pragma once
#include <string>

#include "rass/degrade/planes.hpp"

namespace rass::degrade {

enum class ResizeMode { area, bilinear, bicubic, nearest };
const char* resize_mode_name(ResizeMode m);
ResizeMode parse_resize_mode(const std::string& s);  // throws Error(usage)

// `scale_factor` > 0: the factor torch was given (output size is then
// floor(in * factor), computed by the caller); 0: size-based mapping.
Planes resize(const Planes& in, int out_w, int out_h, ResizeMode mode, double scale_factor = 0);

}  // namespace rass::degrade
