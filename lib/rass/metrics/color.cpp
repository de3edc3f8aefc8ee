#include "rass/metrics/color.hpp"

#include <cmath>

#include "rass/core/error.hpp"

namespace rass::metrics {

Channels to_channels(const Image& img) {
  if (img.depth != 8) throw_runtime("metrics take 8-bit images");
  const int colour = img.channels >= 3 ? 3 : 1;
  Channels c;
  c.width = img.width;
  c.height = img.height;
  c.count = colour;
  const size_t n = size_t(img.width) * img.height;
  c.data.resize(n * colour);
  const uint8_t* s = img.u8();
  for (int k = 0; k < colour; ++k) {
    double* d = c.plane(k);
    for (size_t i = 0; i < n; ++i) d[i] = s[i * img.channels + k];
  }
  return c;
}

Channels y_basicsr(const Image& img, bool round) {
  Channels rgb = to_channels(img);
  if (rgb.count == 1) return rgb;
  Channels y;
  y.width = rgb.width;
  y.height = rgb.height;
  y.count = 1;
  const size_t n = size_t(rgb.width) * rgb.height;
  y.data.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const float r = float(rgb.plane(0)[i]) / 255.f, g = float(rgb.plane(1)[i]) / 255.f, b = float(rgb.plane(2)[i]) / 255.f;
    const double v = double(b) * 24.966 + double(g) * 128.553 + double(r) * 65.481 + 16.0;
    const float out = float(v / 255.0) * 255.f;
    y.data[i] = round ? std::nearbyint(double(out)) : double(out);
  }
  return y;
}

Channels y_pyiqa(const Image& img, double range) {
  Channels rgb = to_channels(img);
  Channels y;
  y.width = rgb.width;
  y.height = rgb.height;
  y.count = 1;
  const size_t n = size_t(rgb.width) * rgb.height;
  y.data.resize(n);
  const int g = rgb.count == 3 ? 1 : 0, b = rgb.count == 3 ? 2 : 0;
  for (size_t i = 0; i < n; ++i) {
    const float v = 0.299f * (float(rgb.plane(0)[i]) / 255.f) + 0.587f * (float(rgb.plane(g)[i]) / 255.f) +
                    0.114f * (float(rgb.plane(b)[i]) / 255.f);
    const float out = v * float(range);
    y.data[i] = range >= 255 ? std::nearbyint(double(out)) : double(out);
  }
  return y;
}

Channels crop(Channels c, int border) {
  if (border <= 0) return c;
  if (2 * border >= c.width || 2 * border >= c.height)
    throw Error(ExitCode::bad_input, "crop border " + std::to_string(border) + " leaves nothing of a " +
                                         std::to_string(c.width) + "x" + std::to_string(c.height) + " image");
  Channels o;
  o.width = c.width - 2 * border;
  o.height = c.height - 2 * border;
  o.count = c.count;
  o.data.resize(size_t(o.width) * o.height * o.count);
  for (int k = 0; k < c.count; ++k)
    for (int y = 0; y < o.height; ++y)
      for (int x = 0; x < o.width; ++x)
        o.plane(k)[size_t(y) * o.width + x] = c.plane(k)[size_t(y + border) * c.width + x + border];
  return o;
}

}  // namespace rass::metrics
