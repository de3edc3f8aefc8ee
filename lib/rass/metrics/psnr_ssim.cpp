#include "rass/metrics/psnr_ssim.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <opencv2/core.hpp>

#include "rass/core/error.hpp"

namespace rass::metrics {

namespace {

void check_pair(const Image& a, const Image& b) {
  if (a.width != b.width || a.height != b.height)
    throw Error(ExitCode::bad_input, "size mismatch: " + std::to_string(a.width) + "x" + std::to_string(a.height) +
                                         " vs " + std::to_string(b.width) + "x" + std::to_string(b.height));
  if ((a.channels >= 3) != (b.channels >= 3))
    throw Error(ExitCode::bad_input, "one image is gray and the other colour");
  if (a.depth != 8 || b.depth != 8) throw_runtime("metrics take 8-bit images");
}

// A pixel row of `img`: row r + border, from column border on.
const uint8_t* row_at(const Image& img, int r, int border) {
  return img.u8() + (size_t(r + border) * img.width + border) * img.channels;
}

// The 11x11 Gaussian window (cv2.getGaussianKernel(11, 1.5) outer itself): separable.
// Computed as before (a cv::Mat divided by its sum) so the taps are the same doubles.
struct Gauss {
  double g[11];
  Gauss() {
    cv::Mat m(11, 1, CV_64F);
    double sum = 0;
    for (int i = 0; i < 11; ++i) sum += m.at<double>(i) = std::exp(-double((i - 5) * (i - 5)) / (2 * 1.5 * 1.5));
    const cv::Mat n = m / sum;
    for (int i = 0; i < 11; ++i) g[i] = n.at<double>(i);
  }
};

// Sum of squared differences of two row producers, one accumulator in row-major
// order (the order of the whole-plane sum it replaces).
template <class F>
double sq_diff_sum(const Image& a, const Image& b, int border, int w, int h, F value) {
  std::vector<double> ra(w), rb(w);
  double s = 0;
  for (int r = 0; r < h; ++r) {
    value(row_at(a, r, border), a.channels, ra.data());
    value(row_at(b, r, border), b.channels, rb.data());
    for (int c = 0; c < w; ++c) {
      const double d = ra[c] - rb[c];
      s += d * d;
    }
  }
  return s;
}

// The separable Gaussian filter as OpenCV's sepFilter2D computes it on float64:
// the row pass sums the taps left to right, the column pass is OpenCV's
// symmetric one (centre tap, then pairs of rows). OpenCV runs this code through
// its AVX2 dispatch where the CPU has it, compiled with FMA contraction, so the
// FMA variant is used on such CPUs and the results are the same doubles.
template <bool Fma>
inline double mul_add(double f, double s, double acc) {
  if constexpr (Fma) return __builtin_fma(f, s, acc);
  else return acc + f * s;
}

// d[c] = sum_k g[k] s[c + k], c < n.
template <bool Fma>
__attribute__((always_inline)) inline void row_pass(const double* g, const double* s, double* d, int n) {
  for (int c = 0; c < n; ++c) d[c] = g[0] * s[c];
  for (int k = 1; k < 11; ++k) {
    const double f = g[k];
    const double* sk = s + k;
    for (int c = 0; c < n; ++c) d[c] = mul_add<Fma>(f, sk[c], d[c]);
  }
}

// out[c] = g[5] R[5][c] + sum_k g[5 + k] (R[5 + k][c] + R[5 - k][c]), c < n.
template <bool Fma>
__attribute__((always_inline)) inline void column_pass(const double* g, const double* const* R, int c0, double* out, int n) {
  const double* mid = R[5] + c0;
  for (int c = 0; c < n; ++c) out[c] = g[5] * mid[c];
  for (int k = 1; k <= 5; ++k) {
    const double f = g[5 + k];
    const double *lo = R[5 - k] + c0, *hi = R[5 + k] + c0;
    for (int c = 0; c < n; ++c) out[c] = mul_add<Fma>(f, hi[c] + lo[c], out[c]);
  }
}

void row_pass_plain(const double* g, const double* s, double* d, int n) { row_pass<false>(g, s, d, n); }
void column_pass_plain(const double* g, const double* const* R, int c0, double* out, int n) {
  column_pass<false>(g, R, c0, out, n);
}
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,fma"))) void row_pass_fma(const double* g, const double* s, double* d, int n) {
  row_pass<true>(g, s, d, n);
}
__attribute__((target("avx2,fma"))) void column_pass_fma(const double* g, const double* const* R, int c0, double* out, int n) {
  column_pass<true>(g, R, c0, out, n);
}
bool use_fma() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return yes;
}
#else  // elsewhere the plain passes (OpenCV's SIMD dispatch is x86's AVX2 here)
void row_pass_fma(const double* g, const double* s, double* d, int n) { row_pass<false>(g, s, d, n); }
void column_pass_fma(const double* g, const double* const* R, int c0, double* out, int n) {
  column_pass<false>(g, R, c0, out, n);
}
bool use_fma() { return false; }
#endif

}  // namespace

double ssim_rows(int w, int h, const SsimRowFill& fill, bool relu_cs) {
  if (w < 11 || h < 11) throw Error(ExitCode::bad_input, "SSIM needs images of at least 11x11 pixels");
  static const Gauss gauss;
  const double* g = gauss.g;
  const bool fma = use_fma();
  const int vw = w - 10, vh = h - 10;
  // Only the valid region is filtered: the row pass of each input row goes into
  // a ring of 11 rows per quantity, the column pass makes one output row at a time.
  constexpr int kQ = 5;  // x, y, x*x, y*y, x*y
  std::vector<double> in(size_t(kQ) * w);
  std::vector<double> ring(size_t(kQ) * 11 * vw);
  std::vector<double> map(vw);
  auto slot = [&](int q, int row) { return ring.data() + (size_t(q) * 11 + row % 11) * vw; };
  const double c1 = (0.01 * 255) * (0.01 * 255), c2 = (0.03 * 255) * (0.03 * 255);
  double sum = 0;
  for (int r = 0; r < h; ++r) {
    double *x = in.data(), *y = x + w, *xx = y + w, *yy = xx + w, *xy = yy + w;
    fill(r, x, y);
    for (int c = 0; c < w; ++c) {
      xx[c] = x[c] * x[c];
      yy[c] = y[c] * y[c];
      xy[c] = x[c] * y[c];
    }
    for (int q = 0; q < kQ; ++q) {
      if (fma) row_pass_fma(g, in.data() + size_t(q) * w, slot(q, r), vw);
      else row_pass_plain(g, in.data() + size_t(q) * w, slot(q, r), vw);
    }
    if (r < 10) continue;
    const int o = r - 10;  // valid output row; its window is rows o .. o + 10
    const double* rows[kQ][11];
    for (int q = 0; q < kQ; ++q)
      for (int k = 0; k < 11; ++k) rows[q][k] = slot(q, o + k);
    constexpr int kChunk = 256;
    double v[kQ][kChunk];
    for (int c0 = 0; c0 < vw; c0 += kChunk) {
      const int n = std::min(kChunk, vw - c0);
      for (int q = 0; q < kQ; ++q) {
        if (fma) column_pass_fma(g, rows[q], c0, v[q], n);
        else column_pass_plain(g, rows[q], c0, v[q], n);
      }
      double* m = map.data() + c0;
      for (int c = 0; c < n; ++c) {
        const double m1 = v[0][c], m2 = v[1][c];
        const double mu1_sq = m1 * m1, mu2_sq = m2 * m2, mu12 = m1 * m2;
        const double s1 = v[2][c] - mu1_sq, s2 = v[3][c] - mu2_sq, s12 = v[4][c] - mu12;
        double cs = (2 * s12 + c2) / (s1 + s2 + c2);
        if (relu_cs) cs = cs < 0 ? 0 : cs;
        m[c] = (2 * mu12 + c1) / (mu1_sq + mu2_sq + c1) * cs;
      }
    }
    for (int c = 0; c < vw; ++c) sum += map[c];  // row-major, as the whole-map mean
  }
  return sum / (double(vw) * vh);
}

double ssim_plane(const double* x, const double* y, int w, int h, bool relu_cs) {
  return ssim_rows(
      w, h,
      [&](int r, double* xr, double* yr) {
        std::copy_n(x + size_t(r) * w, w, xr);
        std::copy_n(y + size_t(r) * w, w, yr);
      },
      relu_cs);
}

namespace {

// SSIM of a pair, channel by channel (or on one luma plane), streamed from the 8-bit rows.
// `row(src, channels, k, n, out)` converts plane k of a row.
template <class Row>
double ssim_pair(const Image& a, const Image& b, int border, int planes, bool relu_cs, Row row) {
  check_crop(a.width, a.height, border);
  const int w = a.width - 2 * std::max(border, 0), h = a.height - 2 * std::max(border, 0);
  const int cb = std::max(border, 0);
  double s = 0;
  for (int k = 0; k < planes; ++k)
    s += ssim_rows(
        w, h,
        [&](int r, double* x, double* y) {
          row(row_at(a, r, cb), a.channels, k, w, x);
          row(row_at(b, r, cb), b.channels, k, w, y);
        },
        relu_cs);
  return s / planes;
}

}  // namespace

double psnr_basicsr(const Image& a, const Image& b, int crop_border, bool y_channel) {
  check_pair(a, b);
  check_crop(a.width, a.height, crop_border);
  const int cb = std::max(crop_border, 0), w = a.width - 2 * cb, h = a.height - 2 * cb;
  const int planes = colour_count(a);
  if (y_channel && planes == 3) {
    // BasicSR crops, then converts to Y (per pixel, so the order does not matter).
    const double s = sq_diff_sum(a, b, cb, w, h, [&](const uint8_t* p, int ch, double* out) {
      row_y_basicsr(p, ch, w, false, out);
    });
    const double m = s / (double(w) * h);
    if (m == 0) return std::numeric_limits<double>::infinity();
    return 10.0 * std::log10(255.0 * 255.0 / m);
  }
  // uint8 data (or a gray image's Y, which is itself): the squared differences are
  // integers, summed exactly; the float64 sum of the reference is exact too (< 2^53).
  int64_t s = 0;
  for (int r = 0; r < h; ++r) {
    const uint8_t *pa = row_at(a, r, cb), *pb = row_at(b, r, cb);
    int64_t rs = 0;
    for (int c = 0; c < w; ++c)
      for (int k = 0; k < planes; ++k) {
        const int d = int(pa[size_t(c) * a.channels + k]) - int(pb[size_t(c) * b.channels + k]);
        rs += d * d;
      }
    s += rs;
  }
  const double m = double(s) / (double(w) * h * planes);
  if (m == 0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(255.0 * 255.0 / m);
}

double ssim_basicsr(const Image& a, const Image& b, int crop_border, bool y_channel) {
  check_pair(a, b);
  if (y_channel)
    return ssim_pair(a, b, crop_border, 1, false, [](const uint8_t* p, int ch, int, int n, double* out) {
      row_y_basicsr(p, ch, n, false, out);
    });
  return ssim_pair(a, b, crop_border, colour_count(a), false, row_channel);
}

double psnr_pyiqa(const Image& a, const Image& b, bool y_channel, int crop_border) {
  check_pair(a, b);
  check_crop(a.width, a.height, crop_border);
  const int cb = std::max(crop_border, 0), w = a.width - 2 * cb, h = a.height - 2 * cb;
  double s = 0, n = double(w) * h;
  if (y_channel) {
    s = sq_diff_sum(a, b, cb, w, h, [&](const uint8_t* p, int ch, double* out) { row_y_pyiqa(p, ch, w, 1.0, out); });
  } else {
    // RGB in [0, 1] as float32 / 255 (a gray image is loaded as three equal planes);
    // summed plane by plane as the whole-image mean does.
    static const struct Unit {
      double v[256];
      Unit() {
        for (int i = 0; i < 256; ++i) v[i] = double(float(i) / 255.f);
      }
    } unit;
    const int planes = colour_count(a);
    for (int k = 0; k < 3; ++k) {
      const int kk = planes == 3 ? k : 0;
      for (int r = 0; r < h; ++r) {
        const uint8_t *pa = row_at(a, r, cb) + kk, *pb = row_at(b, r, cb) + kk;
        for (int c = 0; c < w; ++c) {
          const double d = unit.v[pa[size_t(c) * a.channels]] - unit.v[pb[size_t(c) * b.channels]];
          s += d * d;
        }
      }
    }
    n *= 3;
  }
  const double m = s / n;
  return 10.0 * std::log10(1.0 / (m + 1e-8));
}

double ssim_pyiqa(const Image& a, const Image& b, bool y_channel, int crop_border) {
  check_pair(a, b);
  // ssimc averages the SSIM map over the channels, which equals averaging per-channel means.
  if (y_channel)
    return ssim_pair(a, b, crop_border, 1, true, [](const uint8_t* p, int ch, int, int n, double* out) {
      row_y_pyiqa(p, ch, n, 255.0, out);
    });
  return ssim_pair(a, b, crop_border, colour_count(a), true, row_channel);
}

}  // namespace rass::metrics
