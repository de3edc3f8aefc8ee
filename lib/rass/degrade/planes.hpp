// Float32 planar (CHW) image in [0, 1], the working type of the degradation
// pipeline (the reference runs it on float32 torch tensors).
#pragma once
#include <vector>

#include "rass/core/image.hpp"

namespace rass::degrade {

struct Planes {
  int width = 0, height = 0, channels = 0;
  std::vector<float> data;

  Planes() = default;
  Planes(int w, int h, int c) : width(w), height(h), channels(c), data(size_t(w) * h * c) {}
  size_t plane_size() const { return size_t(width) * height; }
  float* plane(int c) { return data.data() + c * plane_size(); }
  const float* plane(int c) const { return data.data() + c * plane_size(); }
};

// clamp(round(v * 255), 0, 255) with round half to even (torch.round), without a
// libm call: adding 1.5 * 2^23 makes the FPU round to an integer in the default
// rounding mode (IEEE arithmetic is kept: the project never builds with
// -ffast-math, which could fold the add/sub pair), so the loop vectorises.
inline float round_to_byte(float v) {
  float x = v * 255.0f;
  x = x < 0.f ? 0.f : (x > 255.f ? 255.f : x);
  return (x + 12582912.0f) - 12582912.0f;
}

// 8- or 16-bit gray/RGB image -> planes scaled to [0, 1] (divided by 255 or 65535).
Planes to_planes(const Image& img);
// clamp(round(x * 255), 0, 255) -> 8-bit image (the reference's final quantisation;
// round half to even as torch.round).
Image to_image8(const Planes& p);

}  // namespace rass::degrade
