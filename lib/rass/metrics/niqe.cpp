#include "rass/metrics/niqe.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "rass/core/error.hpp"
#include "rass/io/npy.hpp"

// The float32 arithmetic below reproduces the reference's rounding step by
// step: no contraction of a * b + c into a fused multiply-add (GCC contracts
// by default when the target has FMA, e.g. -march=native).
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace rass::metrics {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// r(gamma) = Gamma(2/g)^2 / (Gamma(1/g) Gamma(3/g)) on the reference's grid
// 0.2, 0.201, ..., 10.0 (9801 values). It increases with gamma, so the argmin
// of (r - x)^2 is found by bisection plus a look at the neighbours.
struct GammaGrid {
  std::vector<double> gam, r;
  GammaGrid() {
    for (int i = 0; i < 9801; ++i) {
      const double g = 0.2 + 0.001 * i;
      gam.push_back(g);
      const double rg = 1.0 / g;
      r.push_back(std::pow(std::tgamma(2 * rg), 2) / (std::tgamma(rg) * std::tgamma(3 * rg)));
    }
  }
  size_t argmin(double x) const {
    size_t hi = std::lower_bound(r.begin(), r.end(), x) - r.begin();
    size_t best = std::min(hi, r.size() - 1);
    double bd = (r[best] - x) * (r[best] - x);
    if (hi > 0) {
      const double d = (r[hi - 1] - x) * (r[hi - 1] - x);
      if (d <= bd) best = hi - 1, bd = d;  // ties go to the first index, as np.argmin
    }
    return best;
  }
};
const GammaGrid& gamma_grid() {
  static const GammaGrid g;
  return g;
}

// 18 features of one normalised block (rows x cols, row-major).
void block_features(const std::vector<double>& blk, int rows, int cols, double* feat) {
  double alpha, bl, br;
  estimate_aggd(blk, alpha, bl, br);
  feat[0] = alpha;
  feat[1] = (bl + br) / 2;
  // np.roll(block, shift, axis=(0, 1)): shifted[i][j] = block[i - s0][j - s1] cyclically.
  const int shifts[4][2] = {{0, 1}, {1, 0}, {1, 1}, {1, -1}};
  std::vector<double> prod(blk.size());
  for (int s = 0; s < 4; ++s) {
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < cols; ++j) {
        const int si = ((i - shifts[s][0]) % rows + rows) % rows, sj = ((j - shifts[s][1]) % cols + cols) % cols;
        prod[size_t(i) * cols + j] = blk[size_t(i) * cols + j] * blk[size_t(si) * cols + sj];
      }
    estimate_aggd(prod, alpha, bl, br);
    const double mean = (br - bl) * (std::tgamma(2 / alpha) / std::tgamma(1 / alpha));
    feat[2 + 4 * s] = alpha;
    feat[3 + 4 * s] = mean;
    feat[4 + 4 * s] = bl;
    feat[5 + 4 * s] = br;
  }
}

// Mean-subtracted contrast-normalised image: (I - mu) / (sigma + 1), mu and
// sigma from the 7x7 window with replicate borders (scipy 'nearest'). `img` is
// a band of rows of the image; its first and last rows are taken as the image's
// edges (BORDER_ISOLATED), so only rows at least 3 away from a band edge that is
// not an image edge are exact. Rows [r0, r1) of the band are written to `out`.
void mscn(const cv::Mat& img, const cv::Mat& window, int r0, int r1, cv::Mat& out) {
  cv::Mat mu, sq(img.rows, img.cols, CV_64F);
  const int border = cv::BORDER_REPLICATE | cv::BORDER_ISOLATED;
  cv::filter2D(img, mu, CV_64F, window, cv::Point(-1, -1), 0, border);
  // BasicSR runs this on a float32 image (its values are float32 here too):
  // np.square rounds to float32, scipy filters in double and stores float32,
  // and the rest is float32 arithmetic. Doing the same matters on degraded
  // images, where flat areas turn rounding noise into MSCN values.
  for (int r = 0; r < img.rows; ++r) {
    const double* in = img.ptr<double>(r);
    double* o = sq.ptr<double>(r);
    for (int c = 0; c < img.cols; ++c) {
      const float v = float(in[c]);
      o[c] = double(v * v);
    }
  }
  cv::filter2D(sq, sq, CV_64F, window, cv::Point(-1, -1), 0, border);
  out.create(r1 - r0, img.cols, CV_64F);
  for (int r = r0; r < r1; ++r) {
    const double *m_row = mu.ptr<double>(r), *sq_row = sq.ptr<double>(r), *in = img.ptr<double>(r);
    double* o = out.ptr<double>(r - r0);
    for (int c = 0; c < img.cols; ++c) {
      const float m = float(m_row[c]);
      const float sigma = std::sqrt(std::fabs(float(sq_row[c]) - m * m));
      o[c] = double((float(in[c]) - m) / (sigma + 1.f));
    }
  }
}

// Tap indices and weights of MATLAB's imresize along one axis (bicubic,
// antialiased when shrinking; symmetric padding), normalised per output.
void resize_weights(int in_len, int out_len, double scale, std::vector<int>& idx, std::vector<double>& w, int& taps) {
  const bool aa = scale < 1;
  const double width = aa ? 4.0 / scale : 4.0;
  taps = int(std::ceil(width)) + 2;
  idx.assign(size_t(out_len) * taps, 0);
  w.assign(size_t(out_len) * taps, 0);
  auto cubic = [](double x) {
    const double ax = std::fabs(x), ax2 = ax * ax, ax3 = ax2 * ax;
    if (ax <= 1) return 1.5 * ax3 - 2.5 * ax2 + 1;
    if (ax <= 2) return -0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2;
    return 0.0;
  };
  for (int o = 0; o < out_len; ++o) {
    const double u = (o + 1) / scale + 0.5 * (1 - 1 / scale);  // 1-based, MATLAB
    const double left = std::floor(u - width / 2);
    double sum = 0;
    for (int t = 0; t < taps; ++t) {
      const double index = left + t;
      const double d = u - index;
      const double wt = aa ? scale * cubic(d * scale) : cubic(d);
      int j = int(index) - 1;  // 0-based; symmetric padding reflects with the edge repeated
      while (j < 0 || j >= in_len) j = j < 0 ? -j - 1 : 2 * in_len - 1 - j;
      idx[size_t(o) * taps + t] = j;
      w[size_t(o) * taps + t] = wt;
      sum += wt;
    }
    for (int t = 0; t < taps; ++t) w[size_t(o) * taps + t] /= sum;
  }
}

// One resized row: height pass (taps of rows `rows[t]`, already divided by 255),
// then width pass; `tmp` holds the height pass (in_width values).
void resize_row(const double* const* rows, const double* wh, int th, const std::vector<int>& iw,
                const std::vector<double>& ww, int tw, int in_width, int out_width, double* tmp, double* out) {
  for (int x = 0; x < in_width; ++x) tmp[x] = 0;
  for (int t = 0; t < th; ++t) {
    const double f = wh[t], *s = rows[t];
    for (int x = 0; x < in_width; ++x) tmp[x] += f * s[x];
  }
  for (int o = 0; o < out_width; ++o) {
    double acc = 0;
    for (int t = 0; t < tw; ++t) acc += ww[size_t(o) * tw + t] * tmp[iw[size_t(o) * tw + t]];
    out[o] = acc;
  }
}

// The x0.5 resize as BasicSR runs it (basicsr/utils/matlab_functions.py
// imresize): in float32 (img / 255 is a float32 array, torch's weights and
// arithmetic are float32) through torch.mv, that is BLAS sgemv. With OpenBLAS's
// x86-64 AVX2/AVX-512 kernels (Haswell, SkylakeX, Cooperlake) the height pass
// (sgemv 'N') is one fused multiply-add chain over the 8 taps in order, and the
// width pass (sgemv 'T') rounds each product and sums them as
// ((p0 + p4) + (p1 + p5)) + ((p2 + p6) + (p3 + p7)); then * 255 in float32.
// Reproduced bit for bit: on blurred or JPEG images the flat areas make the
// MSCN values there pure rounding noise of this resize, and NIQE moves by up
// to 1e-3 with the order of the sums (measured; also between OpenBLAS kernels).
void drop_zero_taps(const std::vector<int>& idx, const std::vector<double>& w, int taps, std::vector<int>* idx8,
                    std::vector<float>& w8) {
  const size_t n = w.size() / size_t(taps);
  if (taps != 10) throw_runtime("NIQE: the x0.5 resize should have 10 taps");
  w8.resize(n * 8);
  if (idx8) idx8->resize(n * 8);
  for (size_t o = 0; o < n; ++o) {
    if (w[o * taps] != 0 || w[o * taps + 9] != 0) throw_runtime("NIQE: unexpected non-zero end tap in the x0.5 resize");
    for (int t = 0; t < 8; ++t) {
      w8[o * 8 + t] = float(w[o * taps + 1 + t]);  // exact: the x0.5 weights are k/256
      if (idx8) (*idx8)[o * 8 + t] = idx[o * taps + 1 + t];
    }
  }
}

void half_row_f32(const float* const* rows, const float* wh, const std::vector<int>& iw, const std::vector<float>& ww,
                  int in_width, int out_width, float* tmp, double* out) {
  for (int x = 0; x < in_width; ++x) {
    float acc = 0.f;
    for (int t = 0; t < 8; ++t) acc = std::fma(wh[t], rows[t][x], acc);
    tmp[x] = acc;
  }
  for (int o = 0; o < out_width; ++o) {
    const float* w = &ww[size_t(o) * 8];
    const int* j = &iw[size_t(o) * 8];
    float p[8];
    for (int t = 0; t < 8; ++t) p[t] = w[t] * tmp[j[t]];
    const float v = ((p[0] + p[4]) + (p[1] + p[5])) + ((p[2] + p[6]) + (p[3] + p[7]));
    out[o] = double(v * 255.f);
  }
}

// Symmetric eigen-decomposition by cyclic Jacobi rotations (n = 36 here).
void jacobi_eigen(std::vector<double> a, int n, std::vector<double>& values, std::vector<double>& vectors) {
  vectors.assign(size_t(n) * n, 0);
  for (int i = 0; i < n; ++i) vectors[size_t(i) * n + i] = 1;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (int p = 0; p < n; ++p)
      for (int q = p + 1; q < n; ++q) off += a[size_t(p) * n + q] * a[size_t(p) * n + q];
    if (off < 1e-30) break;
    for (int p = 0; p < n; ++p)
      for (int q = p + 1; q < n; ++q) {
        const double apq = a[size_t(p) * n + q];
        if (std::fabs(apq) < 1e-300) continue;
        const double theta = (a[size_t(q) * n + q] - a[size_t(p) * n + p]) / (2 * apq);
        const double t = (theta >= 0 ? 1 : -1) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < n; ++k) {  // columns p, q
          const double akp = a[size_t(k) * n + p], akq = a[size_t(k) * n + q];
          a[size_t(k) * n + p] = c * akp - s * akq;
          a[size_t(k) * n + q] = s * akp + c * akq;
        }
        for (int k = 0; k < n; ++k) {  // rows p, q
          const double apk = a[size_t(p) * n + k], aqk = a[size_t(q) * n + k];
          a[size_t(p) * n + k] = c * apk - s * aqk;
          a[size_t(q) * n + k] = s * apk + c * aqk;
        }
        for (int k = 0; k < n; ++k) {
          const double vkp = vectors[size_t(k) * n + p], vkq = vectors[size_t(k) * n + q];
          vectors[size_t(k) * n + p] = c * vkp - s * vkq;
          vectors[size_t(k) * n + q] = s * vkp + c * vkq;
        }
      }
  }
  values.resize(n);
  for (int i = 0; i < n; ++i) values[i] = a[size_t(i) * n + i];
}

// Moore-Penrose pseudo-inverse of a symmetric matrix, cut-off as numpy's pinv
// (rcond 1e-15 times the largest singular value).
std::vector<double> pinv_symmetric(const std::vector<double>& m, int n) {
  std::vector<double> vals, vecs;
  jacobi_eigen(m, n, vals, vecs);
  double big = 0;
  for (double v : vals) big = std::max(big, std::fabs(v));
  std::vector<double> out(size_t(n) * n, 0);
  for (int k = 0; k < n; ++k) {
    if (std::fabs(vals[k]) <= 1e-15 * big) continue;
    const double inv = 1 / vals[k];
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) out[size_t(i) * n + j] += vecs[size_t(i) * n + k] * inv * vecs[size_t(j) * n + k];
  }
  return out;
}

}  // namespace

void estimate_aggd(const std::vector<double>& v, double& alpha, double& beta_l, double& beta_r) {
  double sl = 0, sr = 0, sabs = 0, s2 = 0;
  size_t nl = 0, nr = 0;
  for (double x : v) {
    if (x < 0) sl += x * x, ++nl;
    if (x > 0) sr += x * x, ++nr;
    sabs += std::fabs(x);
    s2 += x * x;
  }
  const double n = double(v.size());
  // Empty sides give NaN, as numpy's mean of an empty array; NaN propagates to
  // the block's features and the block is left out of the covariance.
  const double left = nl ? std::sqrt(sl / nl) : kNaN, right = nr ? std::sqrt(sr / nr) : kNaN;
  const double gammahat = left / right;
  const double rhat = (sabs / n) * (sabs / n) / (s2 / n);
  const double rhatnorm = rhat * (std::pow(gammahat, 3) + 1) * (gammahat + 1) / std::pow(gammahat * gammahat + 1, 2);
  const GammaGrid& g = gamma_grid();
  // With an empty side rhatnorm is NaN; the reference's np.argmin over an all-NaN
  // array returns 0 (MATLAB's min likewise), so alpha is the first grid value and
  // only the betas are NaN.
  alpha = std::isnan(rhatnorm) ? g.gam[0] : g.gam[g.argmin(rhatnorm)];
  const double k = std::sqrt(std::tgamma(1 / alpha) / std::tgamma(3 / alpha));
  beta_l = left * k;
  beta_r = right * k;
}

Channels matlab_imresize(const Channels& in, double scale) {
  const int oh = int(std::ceil(in.height * scale)), ow = int(std::ceil(in.width * scale));
  std::vector<int> ih, iw;
  std::vector<double> wh, ww;
  int th, tw;
  resize_weights(in.height, oh, scale, ih, wh, th);
  resize_weights(in.width, ow, scale, iw, ww, tw);
  Channels out;
  out.width = ow;
  out.height = oh;
  out.count = in.count;
  out.data.assign(size_t(ow) * oh * in.count, 0);
  std::vector<double> tmp(in.width);
  std::vector<const double*> rows(th);
  for (int c = 0; c < in.count; ++c) {
    const double* s = in.plane(c);
    // Height first, then width, as BasicSR's imresize.
    for (int o = 0; o < oh; ++o) {
      for (int t = 0; t < th; ++t) rows[t] = s + size_t(ih[size_t(o) * th + t]) * in.width;
      resize_row(rows.data(), &wh[size_t(o) * th], th, iw, ww, tw, in.width, ow, tmp.data(), out.plane(c) + size_t(o) * ow);
    }
  }
  return out;
}

NiqeParams load_niqe_params(const std::string& path) {
  NpzFile z = read_npz(path);
  auto get = [&](const char* key, size_t n) {
    auto it = z.arrays.find(key);
    if (it == z.arrays.end()) throw_bad_input(path, std::string("no array '") + key + "' (not a NIQE parameter file)");
    std::vector<double> v = npy_to_f64(it->second);
    if (v.size() != n)
      throw_bad_input(path, std::string(key) + " has " + std::to_string(v.size()) + " values, expected " + std::to_string(n));
    // A NaN here made every score NaN, blamed on flat image regions (exit 0).
    for (size_t i = 0; i < v.size(); ++i)
      if (!std::isfinite(v[i]))
        throw_bad_input(path, std::string(key) + "[" + std::to_string(i) + "] is " + (std::isnan(v[i]) ? "NaN" : "infinite") +
                                  " (a damaged NIQE parameter file)");
    return v;
  };
  NiqeParams p;
  p.mu = get("mu_pris_param", 36);
  p.cov = get("cov_pris_param", 36 * 36);
  p.window = get("gaussian_window", 49);
  double sum = 0;
  for (const double w : p.window) {
    if (w < 0) throw_bad_input(path, "gaussian_window has a negative weight (a damaged NIQE parameter file)");
    sum += w;
  }
  if (!(sum > 0)) throw_bad_input(path, "gaussian_window is all zeros (a damaged NIQE parameter file)");
  return p;
}

namespace {

// Row r of the Y plane cut to whole blocks (width W = blocks * 96), 0 <= r < H.
using YRowFill = std::function<void(int row, double* out)>;

// NIQE from the per-block features (blocks in the reference's order: column-major).
NiqeResult niqe_from_features(const std::vector<double>& feats, int nblocks, const NiqeParams& params) {
  // nanmean per feature; covariance over the blocks without any NaN.
  std::vector<double> mu(36, 0);
  for (int f = 0; f < 36; ++f) {
    double s = 0;
    int n = 0;
    for (int b = 0; b < nblocks; ++b)
      if (!std::isnan(feats[size_t(b) * 36 + f])) s += feats[size_t(b) * 36 + f], ++n;
    mu[f] = n ? s / n : kNaN;
  }
  std::vector<int> good;
  for (int b = 0; b < nblocks; ++b)
    if (std::none_of(&feats[size_t(b) * 36], &feats[size_t(b) * 36] + 36, [](double v) { return std::isnan(v); }))
      good.push_back(b);
  NiqeResult res;
  if (good.size() < 2) {
    res.value = kNaN;
    res.reason = good.empty() ? "no block has finite features (flat or nearly flat image)"
                              : "only one block has finite features; a covariance needs two";
    return res;
  }
  std::vector<double> gmean(36, 0);
  for (int b : good)
    for (int f = 0; f < 36; ++f) gmean[f] += feats[size_t(b) * 36 + f] / double(good.size());
  std::vector<double> cov(36 * 36, 0);
  for (int b : good)
    for (int i = 0; i < 36; ++i)
      for (int j = 0; j < 36; ++j)
        cov[i * 36 + j] += (feats[size_t(b) * 36 + i] - gmean[i]) * (feats[size_t(b) * 36 + j] - gmean[j]);
  for (double& v : cov) v /= double(good.size() - 1);
  for (int i = 0; i < 36 * 36; ++i) cov[i] = (params.cov[i] + cov[i]) / 2;
  const std::vector<double> inv = pinv_symmetric(cov, 36);
  double q = 0;
  for (int i = 0; i < 36; ++i)
    for (int j = 0; j < 36; ++j) q += (params.mu[i] - mu[i]) * inv[i * 36 + j] * (params.mu[j] - mu[j]);
  if (std::isnan(q)) {
    res.value = kNaN;
    res.reason = "some feature is NaN in every block (flat regions)";
    return res;
  }
  res.value = std::sqrt(q);
  return res;
}

// The features of one row of blocks (sh x sw each) of an MSCN band: `norm` holds
// the block row's sh rows; features go to block b = iw * nbh + ih, offset `off`.
void block_row_features(const cv::Mat& norm, int sh, int sw, int nbw, int nbh, int ih, int off, std::vector<double>& blk,
                        std::vector<double>& feats) {
  blk.resize(size_t(sh) * sw);
  for (int iw = 0; iw < nbw; ++iw) {
    for (int r = 0; r < sh; ++r) std::copy_n(norm.ptr<double>(r) + size_t(iw) * sw, sw, blk.data() + size_t(r) * sw);
    block_features(blk, sh, sw, &feats[(size_t(iw) * nbh + ih) * 36 + off]);
  }
}

// NIQE streamed one row of blocks at a time: for block row i the Y rows it needs
// (the block rows plus 3 for the 7x7 window at scale 1; the bicubic taps of
// the half-size rows 48i - 3 .. 48i + 51 at scale 2) are converted into a band,
// so memory is a band of about 130 rows whatever the image height. The
// arithmetic is the whole-image one: every value used is computed from the same
// neighbours in the same order.
NiqeResult niqe_rows(int nbw, int nbh, const YRowFill& fill, const NiqeParams& params) {
  const int W = nbw * kNiqeBlock, H = nbh * kNiqeBlock;
  const int W2 = int(std::ceil(W * 0.5)), H2 = int(std::ceil(H * 0.5));  // = 48 per block
  const int s2 = kNiqeBlock / 2;
  cv::Mat window(7, 7, CV_64F);
  for (int i = 0; i < 49; ++i) window.at<double>(i / 7, i % 7) = params.window[i];
  std::vector<int> ih, iw;
  std::vector<double> wh, ww;
  int th, tw;
  resize_weights(H, H2, 0.5, ih, wh, th);
  resize_weights(W, W2, 0.5, iw, ww, tw);

  const int nblocks = nbh * nbw;
  std::vector<double> feats(size_t(nblocks) * 36);
  // BasicSR drops the tap columns that are zero (the first and last of the 10
  // at x0.5), leaving 8 taps; the float32 kernel below depends on that order.
  std::vector<int> iw8;
  std::vector<float> wh8, ww8;
  drop_zero_taps(ih, wh, th, nullptr, wh8);
  drop_zero_taps(iw, ww, tw, &iw8, ww8);
  std::vector<double> blk;
  std::vector<float> tmp(W);
  std::vector<const float*> taps(8);
  cv::Mat band, half, norm;
  cv::Mat scaled(0, W, CV_32F);
  for (int bi = 0; bi < nbh; ++bi) {
    const int a0 = std::max(0, bi * kNiqeBlock - 3), a1 = std::min(H, (bi + 1) * kNiqeBlock + 3);
    const int b0 = std::max(0, bi * s2 - 3), b1 = std::min(H2, (bi + 1) * s2 + 3);
    int lo = a0, hi = a1;
    for (int o = b0; o < b1; ++o)
      for (int t = 0; t < th; ++t) lo = std::min(lo, ih[size_t(o) * th + t]), hi = std::max(hi, ih[size_t(o) * th + t] + 1);
    band.create(hi - lo, W, CV_64F);
    scaled.create(hi - lo, W, CV_32F);
    for (int r = lo; r < hi; ++r) fill(r, band.ptr<double>(r - lo));
    // Scale 1.
    mscn(band.rowRange(a0 - lo, a1 - lo), window, bi * kNiqeBlock - a0, (bi + 1) * kNiqeBlock - a0, norm);
    block_row_features(norm, kNiqeBlock, kNiqeBlock, nbw, nbh, bi, 0, blk, feats);
    // Scale 2: BasicSR resizes img / 255 and scales back, all in float32.
    for (int r = 0; r < hi - lo; ++r) {
      const double* s = band.ptr<double>(r);
      float* d = scaled.ptr<float>(r);
      for (int x = 0; x < W; ++x) d[x] = float(s[x]) / 255.f;
    }
    half.create(b1 - b0, W2, CV_64F);
    for (int o = b0; o < b1; ++o) {
      for (int t = 0; t < 8; ++t) taps[t] = scaled.ptr<float>(ih[size_t(o) * th + 1 + t] - lo);
      half_row_f32(taps.data(), &wh8[size_t(o) * 8], iw8, ww8, W, W2, tmp.data(), half.ptr<double>(o - b0));
    }
    mscn(half, window, bi * s2 - b0, (bi + 1) * s2 - b0, norm);
    block_row_features(norm, s2, s2, nbw, nbh, bi, 18, blk, feats);
  }
  return niqe_from_features(feats, nblocks, params);
}

void check_niqe_size(int w, int h) {
  if (w / kNiqeBlock < 1 || h / kNiqeBlock < 1)
    throw Error(ExitCode::bad_input, "image is " + std::to_string(w) + "x" + std::to_string(h) +
                                         ", smaller than one 96x96 NIQE block");
}

}  // namespace

NiqeResult niqe_plane(const Channels& y, const NiqeParams& params) {
  check_niqe_size(y.width, y.height);
  const int nbw = y.width / kNiqeBlock, nbh = y.height / kNiqeBlock;
  return niqe_rows(
      nbw, nbh, [&](int r, double* out) { std::copy_n(y.plane(0) + size_t(r) * y.width, nbw * kNiqeBlock, out); },
      params);
}

NiqeResult niqe(const Image& img, const NiqeParams& params, int crop_border) {
  if (img.depth != 8) throw_runtime("metrics take 8-bit images");
  check_crop(img.width, img.height, crop_border);
  const int cb = std::max(crop_border, 0), w = img.width - 2 * cb, h = img.height - 2 * cb;
  check_niqe_size(w, h);
  const int nbw = w / kNiqeBlock, nbh = h / kNiqeBlock;
  // The rounded limited-range Y of the cropped image, one row at a time.
  return niqe_rows(
      nbw, nbh,
      [&](int r, double* out) {
        const uint8_t* src = img.u8() + (size_t(r + cb) * img.width + cb) * img.channels;
        row_y_basicsr(src, img.channels, nbw * kNiqeBlock, true, out);
      },
      params);
}

}  // namespace rass::metrics
