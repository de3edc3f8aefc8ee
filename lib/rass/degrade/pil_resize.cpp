// Pillow's Image.resize on 8-bit images. The arithmetic follows Pillow's
// libImaging (Resample.c for the convolution filters, Geometry.c's scale
// transform for NEAREST, Convert.c for the alpha premultiplication that
// Image.resize wraps around RGBA and LA): every rounding and clipping step is
// the one PIL takes, because the goal is byte equality, not just a good
// resize.
#include "rass/degrade/pil_resize.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "rass/core/error.hpp"

namespace rass {

namespace {

constexpr double kPi = 3.14159265358979323846;  // M_PI

// Fixed-point coefficients: 8 bits of data, 2 bits of headroom for filters
// whose partial sums leave [0, 1], the rest for the fraction.
constexpr int kPrecisionBits = 32 - 8 - 2;

// The filters in double as PIL evaluates them (hamming's window constants are
// float literals in PIL, hence the f suffixes: they change the last bits).
double box_filter(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }
double bilinear_filter(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}
double hamming_filter(double x) {
  if (x < 0.0) x = -x;
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x = x * kPi;
  return std::sin(x) / x * (0.54f + 0.46f * std::cos(x));
}
double bicubic_filter(double x) {
  const double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}
double sinc(double x) {
  if (x == 0.0) return 1.0;
  x = x * kPi;
  return std::sin(x) / x;
}
double lanczos_filter(double x) { return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0; }

struct Filter {
  double (*fn)(double);
  double support;
};

Filter filter_of(PilFilter f) {
  switch (f) {
    case PilFilter::box: return {box_filter, 0.5};
    case PilFilter::bilinear: return {bilinear_filter, 1.0};
    case PilFilter::hamming: return {hamming_filter, 1.0};
    case PilFilter::bicubic: return {bicubic_filter, 2.0};
    case PilFilter::lanczos: return {lanczos_filter, 3.0};
    case PilFilter::nearest: break;
  }
  throw_runtime("pil_resize: nearest has no convolution filter");
}

// Per output sample: the first input index, the tap count and ksize
// fixed-point coefficients (PIL's precompute_coeffs + normalize_coeffs_8bpc).
struct Coeffs {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> k;
};

Coeffs precompute_coeffs(int in_size, float in0, float in1, int out_size, const Filter& f) {
  // Shrinking widens the filter by the scale (antialiasing); enlarging keeps it.
  const double scale = double(in1 - in0) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = f.support * filterscale;
  Coeffs c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.k.assign(size_t(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  const double inv_filterscale = 1.0 / filterscale;
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    // Bounds rounded by truncation after +0.5, as PIL does (not floor: a
    // negative xmin truncates towards zero, then clamps to 0 anyway).
    int xmin = int(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = f.fn((x + xmin - center + 0.5) * inv_filterscale);
      ww += w[x];
    }
    int32_t* k = &c.k[size_t(xx) * c.ksize];
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      // Round half away from zero into fixed point.
      k[x] = v < 0 ? int32_t(-0.5 + v * (1 << kPrecisionBits)) : int32_t(0.5 + v * (1 << kPrecisionBits));
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

// PIL clips through a lookup table indexed by the sum shifted down; the sum
// already carries the +0.5 rounding offset.
inline uint8_t clip8(int32_t sum) {
  const int32_t v = sum >> kPrecisionBits;
  return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
}

constexpr int32_t kHalf = 1 << (kPrecisionBits - 1);

// Rows [row0, row0 + rows) of `in`, resampled horizontally to out_w.
Image horizontal_pass(const Image& in, int row0, int rows, int out_w, const Coeffs& c) {
  const int ch = in.channels;
  Image out(out_w, rows, ch);
  std::vector<int32_t> acc(ch);
  for (int y = 0; y < rows; ++y) {
    const uint8_t* src = in.u8() + size_t(row0 + y) * in.width * ch;
    uint8_t* dst = out.u8() + size_t(y) * out_w * ch;
    for (int xx = 0; xx < out_w; ++xx) {
      const int32_t* k = &c.k[size_t(xx) * c.ksize];
      const uint8_t* s = src + size_t(c.first[xx]) * ch;
      std::fill(acc.begin(), acc.end(), kHalf);
      for (int x = 0; x < c.count[xx]; ++x)
        for (int b = 0; b < ch; ++b) acc[b] += s[x * ch + b] * k[x];
      for (int b = 0; b < ch; ++b) dst[xx * ch + b] = clip8(acc[b]);
    }
  }
  return out;
}

// `in` resampled vertically to out_h; row indices in `c` are relative to `in`.
Image vertical_pass(const Image& in, int out_h, const Coeffs& c) {
  const int ch = in.channels;
  const size_t row_len = size_t(in.width) * ch;
  Image out(in.width, out_h, ch);
  // Whole rows accumulated tap by tap: the integer sums are the same as PIL's
  // per-pixel loop (no overflow, integer addition is exact) and the rows are
  // read contiguously.
  std::vector<int32_t> acc(row_len);
  for (int yy = 0; yy < out_h; ++yy) {
    const int32_t* k = &c.k[size_t(yy) * c.ksize];
    std::fill(acc.begin(), acc.end(), kHalf);
    for (int y = 0; y < c.count[yy]; ++y) {
      const uint8_t* src = in.u8() + size_t(c.first[yy] + y) * row_len;
      const int32_t w = k[y];
      for (size_t i = 0; i < row_len; ++i) acc[i] += src[i] * w;
    }
    uint8_t* dst = out.u8() + size_t(yy) * row_len;
    for (size_t i = 0; i < row_len; ++i) dst[i] = clip8(acc[i]);
  }
  return out;
}

struct Box {
  float x0, y0, x1, y1;
};

// ImagingResampleInner: vertical coefficients first, so that the horizontal
// pass only touches the input rows the vertical pass will read.
Image resample(const Image& in, int out_w, int out_h, const Filter& f, const Box& box) {
  const bool need_h = out_w != in.width || box.x0 != 0 || box.x1 != out_w;
  const bool need_v = out_h != in.height || box.y0 != 0 || box.y1 != out_h;
  Coeffs vert = precompute_coeffs(in.height, box.y0, box.y1, out_h, f);
  const int ybox_first = vert.first[0];
  const int ybox_last = vert.first[out_h - 1] + vert.count[out_h - 1];
  Image cur;
  bool have = false;
  if (need_h) {
    Coeffs horiz = precompute_coeffs(in.width, box.x0, box.x1, out_w, f);
    for (int& v : vert.first) v -= ybox_first;
    cur = horizontal_pass(in, ybox_first, ybox_last - ybox_first, out_w, horiz);
    have = true;
  }
  if (need_v) return vertical_pass(have ? cur : in, out_h, vert);
  return have ? cur : in;
}

// Geometry.c's ImagingScaleAffine: source coordinates accumulate in double
// from the first pixel centre (so the rounding drift is PIL's), truncated.
Image nearest(const Image& in, int out_w, int out_h, const Box& box) {
  const double ax = double(box.x1 - box.x0) / out_w;
  const double ay = double(box.y1 - box.y0) / out_h;
  const int ch = in.channels;
  auto coord = [](double v) { return v < 0.0 ? -1 : int(v); };
  std::vector<int> xin(out_w, -1);
  double xo = box.x0 + ax * 0.5;
  for (int x = 0; x < out_w; ++x) {
    const int xi = coord(xo);
    if (xi >= 0 && xi < in.width) xin[x] = xi;
    xo += ax;
  }
  // Pixels that map outside the source stay 0, as PIL fills them.
  Image out(out_w, out_h, ch);
  double yo = box.y0 + ay * 0.5;
  for (int y = 0; y < out_h; ++y) {
    const int yi = coord(yo);
    if (yi >= 0 && yi < in.height) {
      const uint8_t* src = in.u8() + size_t(yi) * in.width * ch;
      uint8_t* dst = out.u8() + size_t(y) * out_w * ch;
      for (int x = 0; x < out_w; ++x)
        if (xin[x] >= 0)
          for (int b = 0; b < ch; ++b) dst[x * ch + b] = src[xin[x] * ch + b];
    }
    yo += ay;
  }
  return out;
}

// ImagingCore.resize (_imaging.c's _resize).
Image core_resize(const Image& in, int out_w, int out_h, PilFilter filter, const Box& box) {
  if (box.x0 - int(box.x0) == 0 && box.x1 - box.x0 == out_w && box.y0 - int(box.y0) == 0 &&
      box.y1 - box.y0 == out_h)
    return crop_image(in, int(box.x0), int(box.y0), out_w, out_h);
  if (filter == PilFilter::nearest) return nearest(in, out_w, out_h, box);
  return resample(in, out_w, out_h, filter_of(filter), box);
}

// Convert.c's rgbA2rgba / lA2la: colour * alpha / 255, rounded by PIL's
// shift-based MULDIV255.
void premultiply(Image& img) {
  const int ch = img.channels, a = ch - 1;
  for (size_t i = 0; i < img.data.size(); i += ch) {
    const unsigned alpha = img.data[i + a];
    for (int b = 0; b < a; ++b) {
      const unsigned t = img.data[i + b] * alpha + 128;
      img.data[i + b] = uint8_t(((t >> 8) + t) >> 8);
    }
  }
}

// Convert.c's rgba2rgbA / la2lA: integer division, colour kept as is where
// alpha is 0 or 255.
void unpremultiply(Image& img) {
  const int ch = img.channels, a = ch - 1;
  for (size_t i = 0; i < img.data.size(); i += ch) {
    const unsigned alpha = img.data[i + a];
    if (alpha == 0 || alpha == 255) continue;
    for (int b = 0; b < a; ++b) img.data[i + b] = uint8_t(std::min(255u, 255u * img.data[i + b] / alpha));
  }
}

}  // namespace

Image pil_resize(const Image& in, int out_w, int out_h, PilFilter filter) {
  if (in.depth != 8)
    throw Error(ExitCode::bad_input, "PIL resize needs an 8-bit image, got " + std::to_string(in.depth) + "-bit");
  if (out_w < 1 || out_h < 1)
    throw_usage("PIL resize: output size " + std::to_string(out_w) + "x" + std::to_string(out_h) +
                " must be at least 1x1");
  if (in.empty() || in.channels < 1 || in.channels > 4)
    throw Error(ExitCode::bad_input, "PIL resize: empty image or unsupported channel count");
  // Image.resize returns a copy when nothing changes.
  if (out_w == in.width && out_h == in.height) return in;
  // Image.resize resamples RGBA and LA premultiplied (not with NEAREST), so
  // transparent pixels do not bleed their colour into their neighbours.
  const bool alpha = (in.channels == 2 || in.channels == 4) && filter != PilFilter::nearest;
  Image src = in;
  if (alpha) premultiply(src);
  const Box full{0.f, 0.f, float(in.width), float(in.height)};
  Image out;
  if (in.height > in.width * 100 && out_h < in.height) {
    // Image.resize's path for very tall images: the vertical pass first, on
    // the full width, then the horizontal one.
    Image tall = core_resize(src, in.width, out_h, filter, full);
    out = core_resize(tall, out_w, out_h, filter, Box{full.x0, 0.f, full.x1, float(out_h)});
  } else {
    out = core_resize(src, out_w, out_h, filter, full);
  }
  if (alpha) unpremultiply(out);
  return out;
}

}  // namespace rass
