#include "rass/degrade/planes.hpp"

#include <cmath>

#include "rass/core/error.hpp"

namespace rass::degrade {

Planes to_planes(const Image& img) {
  if (img.channels != 1 && img.channels != 3)
    throw_runtime("to_planes: expected 1 or 3 channels, got " + std::to_string(img.channels));
  Planes p(img.width, img.height, img.channels);
  const size_t n = p.plane_size();
  const int c = img.channels;
  if (img.depth == 8) {
    const uint8_t* s = img.u8();
    for (int k = 0; k < c; ++k) {
      float* d = p.plane(k);
      for (size_t i = 0; i < n; ++i) d[i] = s[i * c + k] / 255.0f;
    }
  } else {
    const uint16_t* s = img.u16();
    for (int k = 0; k < c; ++k) {
      float* d = p.plane(k);
      for (size_t i = 0; i < n; ++i) d[i] = s[i * c + k] / 65535.0f;
    }
  }
  return p;
}

Image to_image8(const Planes& p) {
  Image img(p.width, p.height, p.channels, 8);
  const size_t n = p.plane_size();
  const int c = p.channels;
  uint8_t* d = img.u8();
  for (int k = 0; k < c; ++k) {
    const float* s = p.plane(k);
    for (size_t i = 0; i < n; ++i) d[i * c + k] = static_cast<uint8_t>(round_to_byte(s[i]));
  }
  return img;
}

}  // namespace rass::degrade
