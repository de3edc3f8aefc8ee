#include "rass/metrics/color.hpp"

#include <cmath>

#include "rass/core/error.hpp"

namespace rass::metrics {

namespace {

// Per-sample terms of the two luma sums, so that a row costs three lookups and
// the sums keep the reference's order and precision (the products are exact
// table entries; the additions are done per pixel in the original order).
struct LumaTables {
  double bs_r[256], bs_g[256], bs_b[256];  // BasicSR: double(float(v) / 255.f) * coefficient
  float iq_r[256], iq_g[256], iq_b[256];   // pyiqa: coefficient * (float(v) / 255.f), float32
  LumaTables() {
    for (int v = 0; v < 256; ++v) {
      const float u = float(v) / 255.f;
      bs_r[v] = double(u) * 65.481;
      bs_g[v] = double(u) * 128.553;
      bs_b[v] = double(u) * 24.966;
      iq_r[v] = 0.299f * u;
      iq_g[v] = 0.587f * u;
      iq_b[v] = 0.114f * u;
    }
  }
};
const LumaTables& luma_tables() {
  static const LumaTables t;
  return t;
}

}  // namespace

void row_channel(const uint8_t* src, int channels, int k, int n, double* out) {
  for (int i = 0; i < n; ++i) out[i] = src[size_t(i) * channels + k];
}

void row_y_basicsr(const uint8_t* src, int channels, int n, bool round, double* out) {
  if (channels < 3) return row_channel(src, channels, 0, n, out);
  const LumaTables& t = luma_tables();
  for (int i = 0; i < n; ++i) {
    const uint8_t* p = src + size_t(i) * channels;
    // As BasicSR: b * 24.966 + g * 128.553 + r * 65.481 + 16, left to right, in float64.
    const double v = t.bs_b[p[2]] + t.bs_g[p[1]] + t.bs_r[p[0]] + 16.0;
    const float y = float(v / 255.0) * 255.f;
    out[i] = round ? std::nearbyint(double(y)) : double(y);
  }
}

void row_y_pyiqa(const uint8_t* src, int channels, int n, double range, double* out) {
  const LumaTables& t = luma_tables();
  const int g = channels >= 3 ? 1 : 0, b = channels >= 3 ? 2 : 0;
  const float fr = float(range);
  const bool round = range >= 255;
  for (int i = 0; i < n; ++i) {
    const uint8_t* p = src + size_t(i) * channels;
    const float v = t.iq_r[p[0]] + t.iq_g[p[g]] + t.iq_b[p[b]];
    const float y = v * fr;
    out[i] = round ? std::nearbyint(double(y)) : double(y);
  }
}

Channels y_basicsr(const Image& img, bool round) {
  if (img.depth != 8) throw_runtime("metrics take 8-bit images");
  Channels y;
  y.width = img.width;
  y.height = img.height;
  y.count = 1;
  y.data.resize(size_t(img.width) * img.height);
  const size_t stride = size_t(img.width) * img.channels;
  for (int r = 0; r < img.height; ++r)
    row_y_basicsr(img.u8() + r * stride, img.channels, img.width, round, y.plane(0) + size_t(r) * img.width);
  return y;
}

void check_crop(int width, int height, int border) {
  if (border > 0 && (2 * border >= width || 2 * border >= height))
    throw Error(ExitCode::bad_input, "crop border " + std::to_string(border) + " leaves nothing of a " +
                                         std::to_string(width) + "x" + std::to_string(height) + " image");
}

}  // namespace rass::metrics
