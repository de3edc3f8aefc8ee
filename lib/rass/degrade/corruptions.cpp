#include "rass/degrade/corruptions.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "rass/core/error.hpp"
#include "rass/degrade/filter.hpp"
#include "rass/degrade/pil_resize.hpp"

namespace rass::degrade {

namespace {

// The shifts of imagecorruptions' _motion_blur: copy i moves by
// (-ceil(i p1 / h - 0.5), -ceil(i p0 / h - 0.5)) with p = width (sin, cos) of
// the angle and h = hypot(p), computed as the reference does (np.deg2rad is
// x * (pi / 180)), so that the rounding at .5 falls the same way.
struct Shift {
  int dx, dy;
};
std::vector<Shift> line_shifts(int count, double angle_deg) {
  const double rad = angle_deg * (M_PI / 180.0);
  const double p0 = count * std::sin(rad), p1 = count * std::cos(rad);
  const double h = std::hypot(p0, p1);
  std::vector<Shift> s(count);
  for (int i = 0; i < count; ++i)
    s[i] = {-int(std::ceil(i * p1 / h - 0.5)), -int(std::ceil(i * p0 / h - 0.5))};
  return s;
}

template <typename T>
void motion_blur_impl(const T* in, T* out, int w, int h, int radius, double sigma, double angle_deg) {
  const int count = 2 * radius + 1;
  std::vector<double> k(count);
  double z = 0;
  for (int i = 0; i < count; ++i)
    z += k[i] = std::exp(-double(i) * i / (2 * sigma * sigma)) / (std::sqrt(2 * M_PI) * sigma);
  for (double& v : k) v /= z;
  std::vector<double> acc(size_t(w) * h, 0.0);
  const std::vector<Shift> shifts = line_shifts(count, angle_deg);
  for (int i = 0; i < count; ++i) {
    const auto [dx, dy] = shifts[i];
    if (std::abs(dy) >= h || std::abs(dx) >= w) break;  // the motion left the image
    // shift(x, dx, dy)[y][j] = x[clamp(y - dy)][clamp(j - dx)]: borders repeat.
    for (int y = 0; y < h; ++y) {
      const T* src = in + size_t(std::clamp(y - dy, 0, h - 1)) * w;
      double* dst = acc.data() + size_t(y) * w;
      for (int j = 0; j < w; ++j) dst[j] += k[i] * double(src[std::clamp(j - dx, 0, w - 1)]);
    }
  }
  for (size_t i = 0; i < acc.size(); ++i) out[i] = T(acc[i]);
}

}  // namespace

void corrupt_contrast(Planes& img, double factor) {
  for (int c = 0; c < img.channels; ++c) {
    float* p = img.plane(c);
    double sum = 0;
    for (size_t i = 0; i < img.plane_size(); ++i) sum += p[i];
    const double mean = img.plane_size() ? sum / double(img.plane_size()) : 0;
    for (size_t i = 0; i < img.plane_size(); ++i) p[i] = clip01((p[i] - mean) * factor + mean);
  }
}

void corrupt_brightness(Planes& img, double delta) {
  if (img.channels < 3) {
    for (float& v : img.data) v = clip01(v + delta);
    return;
  }
  float *r = img.plane(0), *g = img.plane(1), *b = img.plane(2);
  for (size_t i = 0; i < img.plane_size(); ++i) {
    const double v = std::max({r[i], g[i], b[i]});
    const double v2 = std::clamp(v + delta, 0.0, 1.0);
    if (v > 0) {
      const double f = v2 / v;
      r[i] = clip01(r[i] * f), g[i] = clip01(g[i] * f), b[i] = clip01(b[i] * f);
    } else {
      r[i] = g[i] = b[i] = float(v2);  // skimage: saturation 0 at V = 0, so gray
    }
  }
}

void motion_blur_plane(const float* in, float* out, int w, int h, int radius, double sigma, double angle_deg) {
  motion_blur_impl(in, out, w, h, radius, sigma, angle_deg);
}
void motion_blur_plane(const double* in, double* out, int w, int h, int radius, double sigma, double angle_deg) {
  motion_blur_impl(in, out, w, h, radius, sigma, angle_deg);
}

void corrupt_motion_blur(Planes& img, int radius, double sigma, double angle_deg) {
  std::vector<float> out(img.plane_size());
  for (int c = 0; c < img.channels; ++c) {
    motion_blur_plane(img.plane(c), out.data(), img.width, img.height, radius, sigma, angle_deg);
    float* p = img.plane(c);
    for (size_t i = 0; i < out.size(); ++i) p[i] = clip01(out[i]);
  }
}

std::vector<double> plasma_fractal(int n, double decay, Draws& draws) {
  std::vector<double> m(size_t(n) * n, 0.0);
  auto at = [&](int y, int x) -> double& { return m[size_t(y) * n + x]; };
  double wibble = 100;
  // array / 4 + wibble * uniform(-wibble, wibble), NumPy's uniform being
  // low + (high - low) * u.
  auto wibbled_mean = [&](double sum) { return sum / 4 + wibble * (-wibble + (wibble - -wibble) * draws.uniform()); };
  for (int s = n; s >= 2; s /= 2, wibble /= decay) {
    const int g = n / s, hs = s / 2;
    // Each phase writes points the others only read (squares: the odd-odd
    // points from the corners; diamonds: the odd-even and even-odd points
    // from corners and squares), so it can work in place, in NumPy's order.
    // Squares: the centre of each square of corners s apart (toroidal).
    for (int i = 0; i < g; ++i)
      for (int j = 0; j < g; ++j) {
        const int i1 = (i + 1) % g, j1 = (j + 1) % g;
        const double a = at(i * s, j * s) + at(i1 * s, j * s), b = at(i * s, j1 * s) + at(i1 * s, j1 * s);
        at(hs + i * s, hs + j * s) = wibbled_mean(a + b);
      }
    // Diamonds: the points between two corners, first along rows, then columns.
    auto d = [&](int i, int j) { return at(hs + ((i + g) % g) * s, hs + ((j + g) % g) * s); };
    auto u = [&](int i, int j) { return at((i % g) * s, (j % g) * s); };
    for (int i = 0; i < g; ++i)
      for (int j = 0; j < g; ++j) at(i * s, hs + j * s) = wibbled_mean((d(i, j) + d(i - 1, j)) + (u(i, j) + u(i, j + 1)));
    for (int i = 0; i < g; ++i)
      for (int j = 0; j < g; ++j) at(hs + i * s, j * s) = wibbled_mean((d(i, j) + d(i, j - 1)) + (u(i, j) + u(i + 1, j)));
  }
  const double lo = *std::min_element(m.begin(), m.end());
  for (double& v : m) v -= lo;
  const double hi = *std::max_element(m.begin(), m.end());
  if (hi > 0)
    for (double& v : m) v /= hi;
  return m;
}

int64_t fog_map_side(int width, int height, int channels) {
  // next_power_of_2(max(np.array(x).shape)): the channel count takes part for RGB.
  int64_t side = std::max(width, height);
  if (channels >= 3) side = std::max<int64_t>(side, channels);
  int64_t n = 2;
  while (n < side) n *= 2;
  return n;
}

void corrupt_fog(Planes& img, double strength, double decay, Draws& draws) {
  const int64_t side = fog_map_side(img.width, img.height, img.channels);
  if (side > kMaxFogMapSide)
    throw Error(ExitCode::bad_input, "fog: the plasma map of a " + std::to_string(std::max(img.width, img.height)) +
                                         "-pixel side would be " + std::to_string(side) + "^2; crop or tile the image");
  const int n = int(side);
  const std::vector<double> map = plasma_fractal(n, decay, draws);
  double max_val = 0;
  for (float v : img.data) max_val = std::max(max_val, double(v));
  // A black image without fog (strength 0) would be 0 / 0: it stays black.
  const double f = max_val + strength > 0 ? max_val / (max_val + strength) : 1.0;
  for (int c = 0; c < img.channels; ++c) {
    float* p = img.plane(c);
    for (int y = 0; y < img.height; ++y)
      for (int x = 0; x < img.width; ++x) {
        float& v = p[size_t(y) * img.width + x];
        v = clip01((v + strength * map[size_t(y) * n + x]) * f);
      }
  }
}

namespace {

// scipy.ndimage.zoom(order=1, grid_mode=False) of one plane: output side
// round(side * zoom) (half to even, as Python's round), output index k reads
// input coordinate k * (in - 1) / (out - 1), linearly interpolated.
std::vector<double> zoom_linear(const std::vector<double>& in, int w, int h, double zoom, int& ow, int& oh) {
  ow = int(std::nearbyint(w * zoom));
  oh = int(std::nearbyint(h * zoom));
  const double zx = ow > 1 ? double(w - 1) / double(ow - 1) : 1.0;
  const double zy = oh > 1 ? double(h - 1) / double(oh - 1) : 1.0;
  std::vector<int> x0(ow);
  std::vector<double> fx(ow);
  for (int k = 0; k < ow; ++k) {
    const double c = std::min(k * zx, double(w - 1));
    x0[k] = std::min(int(std::floor(c)), w - 1);
    fx[k] = c - x0[k];
  }
  std::vector<double> out(size_t(ow) * oh);
  for (int k = 0; k < oh; ++k) {
    const double c = std::min(k * zy, double(h - 1));
    const int y0 = std::min(int(std::floor(c)), h - 1), y1 = std::min(y0 + 1, h - 1);
    const double fy = c - y0;
    for (int j = 0; j < ow; ++j) {
      const int x1 = std::min(x0[j] + 1, w - 1);
      const double top = in[size_t(y0) * w + x0[j]] * (1 - fx[j]) + in[size_t(y0) * w + x1] * fx[j];
      const double bot = in[size_t(y1) * w + x0[j]] * (1 - fx[j]) + in[size_t(y1) * w + x1] * fx[j];
      out[size_t(k) * ow + j] = top * (1 - fy) + bot * fy;
    }
  }
  return out;
}

}  // namespace

void corrupt_snow(Planes& img, const SnowParams& p, Draws& draws) {
  const int w = img.width, h = img.height;
  std::vector<double> layer(size_t(w) * h);
  for (double& v : layer) v = p.mean + p.std * draws.normal();
  // clipped_zoom: the centre crop of ceil(side / zoom), zoomed back up.
  const int ch = int(std::ceil(h / p.zoom)), cw = int(std::ceil(w / p.zoom));
  const int top = (h - ch) / 2, left = (w - cw) / 2;
  std::vector<double> crop(size_t(cw) * ch);
  for (int y = 0; y < ch; ++y)
    for (int x = 0; x < cw; ++x) crop[size_t(y) * cw + x] = layer[size_t(top + y) * w + left + x];
  int zw = 0, zh = 0;
  std::vector<double> zoomed = zoom_linear(crop, cw, ch, p.zoom, zw, zh);
  for (double& v : zoomed) v = v < p.threshold ? 0.0 : std::clamp(v, 0.0, 1.0);
  std::vector<double> blurred(zoomed.size());
  motion_blur_plane(zoomed.data(), blurred.data(), zw, zh, p.radius, p.sigma, p.angle);
  // Rounded to 8 bits (np.round, half to even), cropped to the image.
  std::vector<double> snow(size_t(w) * h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      snow[size_t(y) * w + x] = std::nearbyint(blurred[size_t(std::min(y, zh - 1)) * zw + std::min(x, zw - 1)] * 255) / 255.0;
  // The image lightened towards 1.5 gray + 0.5 (cv2 RGB2GRAY weights).
  std::vector<float> gray(img.plane_size());
  if (img.channels >= 3) {
    const float *r = img.plane(0), *g = img.plane(1), *b = img.plane(2);
    for (size_t i = 0; i < gray.size(); ++i) gray[i] = 0.299f * r[i] + 0.587f * g[i] + 0.114f * b[i];
  } else {
    std::copy(img.plane(0), img.plane(0) + gray.size(), gray.begin());
  }
  for (int c = 0; c < img.channels; ++c) {
    float* q = img.plane(c);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const size_t i = size_t(y) * w + x;
        const float light = p.blend * q[i] + (1 - p.blend) * std::max(q[i], gray[i] * 1.5f + 0.5f);
        q[i] = clip01(light + snow[i] + snow[size_t(h - 1 - y) * w + (w - 1 - x)]);
      }
  }
}

namespace {

// Poisson(lambda): multiplication of uniforms below 10, Hormann's
// transformed rejection with squeeze (PTRS, 1993) above.
int64_t poisson(double lam, Rng& rng) {
  if (!(lam > 0)) return 0;
  if (lam < 10) {
    const double limit = std::exp(-lam);
    int64_t k = 0;
    double prod = rng.uniform();
    while (prod > limit) prod *= rng.uniform(), ++k;
    return k;
  }
  const double slam = std::sqrt(lam), loglam = std::log(lam);
  const double b = 0.931 + 2.53 * slam, a = -0.059 + 0.02483 * b;
  const double inv_alpha = 1.1239 + 1.1328 / (b - 3.4), vr = 0.9277 - 3.6224 / (b - 2);
  for (;;) {
    const double u = rng.uniform() - 0.5, v = rng.uniform();
    const double us = 0.5 - std::fabs(u);
    const double k = std::floor((2 * a / us + b) * u + lam + 0.43);
    if (us >= 0.07 && v <= vr) return int64_t(k);
    if (k < 0 || (us < 0.013 && v > us)) continue;
    if (std::log(v) + std::log(inv_alpha) - std::log(a / (us * us) + b) <= -lam + k * loglam - std::lgamma(k + 1))
      return int64_t(k);
  }
}

}  // namespace

void corrupt_shot_noise(Planes& img, double photons, Rng& rng) {
  for (float& v : img.data) v = clip01(double(poisson(double(v) * photons, rng)) / photons);
}

void corrupt_impulse_noise(Planes& img, double amount, Rng& rng) {
  for (float& v : img.data)
    if (rng.uniform() < amount) v = rng.uniform() < 0.5 ? 1.f : 0.f;
}

void corrupt_low_light(Planes& img, double gamma, double gain) {
  for (float& v : img.data) v = clip01(gain * std::pow(double(v), gamma));
}

void corrupt_rain(Planes& img, double density, int length, double angle_deg, double opacity, double darken, Rng& rng) {
  const int w = img.width, h = img.height;
  std::vector<uint8_t> drops(img.plane_size());
  for (uint8_t& d : drops) d = rng.uniform() < density;
  // A streak covers the pixels its drop reaches through the line's shifts
  // (nothing wraps or repeats at the borders).
  std::vector<uint8_t> streak(img.plane_size(), 0);
  for (const Shift& s : line_shifts(length, angle_deg))
    for (int y = std::max(0, s.dy); y < std::min(h, h + s.dy); ++y)
      for (int x = std::max(0, s.dx); x < std::min(w, w + s.dx); ++x)
        streak[size_t(y) * w + x] |= drops[size_t(y - s.dy) * w + (x - s.dx)];
  for (int c = 0; c < img.channels; ++c) {
    float* p = img.plane(c);
    for (size_t i = 0; i < img.plane_size(); ++i) {
      const double d = darken * p[i];
      p[i] = clip01(d + (streak[i] ? opacity * (1 - d) : 0.0));
    }
  }
}

// ---- more of ImageNet-C ---------------------------------------------------

namespace {

int border_index(int i, int n, GaussBorder b) {
  if (n == 1) return 0;
  if (b == GaussBorder::nearest) return std::clamp(i, 0, n - 1);
  // reflect, half-sample symmetric: period 2n.
  const int p = 2 * n;
  i %= p;
  if (i < 0) i += p;
  return i < n ? i : p - 1 - i;
}

// The image's values as the reference sees them: 8-bit inputs are exactly
// k / 255 in float64 (np.array(uint8) / 255.), not the float32 nearest.
double as_reference(float v) {
  const double k = std::nearbyint(double(v) * 255.0);
  return std::fabs(double(v) * 255.0 - k) < 1e-3 ? k / 255.0 : double(v);
}

std::vector<double> plane_as_reference(const Planes& img, int c) {
  std::vector<double> out(img.plane_size());
  const float* p = img.plane(c);
  for (size_t i = 0; i < out.size(); ++i) out[i] = as_reference(p[i]);
  return out;
}

// scipy's correlate1d with a symmetric kernel, in its order of summation
// (centre first, then the pairs from the outermost in): glass blur truncates
// the blur to 8 bits, where another order moves values at an integer.
void filter1d(double* data, int n, int stride, int count, int count_stride, const std::vector<double>& k,
              GaussBorder border, std::vector<double>& line) {
  const int r = int(k.size() / 2);
  line.resize(size_t(n) + 2 * r);
  for (int c = 0; c < count; ++c) {
    double* d = data + size_t(c) * count_stride;
    for (int i = -r; i < n + r; ++i) line[i + r] = d[size_t(border_index(i, n, border)) * stride];
    for (int i = 0; i < n; ++i) {
      const double* x = line.data() + i + r;
      double acc = x[0] * k[r];
      for (int j = r; j >= 1; --j) acc += (x[-j] + x[j]) * k[r - j];
      d[size_t(i) * stride] = acc;
    }
  }
}

// NumPy's pairwise sum: a plain loop below 8 elements, eight accumulators
// up to 128, halves (cut at a multiple of 8) summed recursively above.
double numpy_sum(const double* a, size_t n) {
  if (n < 8) {
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += a[i];
    return s;
  }
  if (n > 128) {
    size_t half = n / 2;
    half -= half % 8;
    return numpy_sum(a, half) + numpy_sum(a + half, n - half);
  }
  double r[8];
  for (int j = 0; j < 8; ++j) r[j] = a[j];
  size_t i = 8;
  for (; i < n - n % 8; i += 8)
    for (int j = 0; j < 8; ++j) r[j] += a[i + j];
  double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
  for (; i < n; ++i) s += a[i];
  return s;
}

// scipy's _gaussian_kernel1d: exp(-0.5 / sigma^2 * x^2) / sum.
std::vector<double> gaussian_kernel(double sigma, double truncate) {
  const int r = int(truncate * sigma + 0.5);
  std::vector<double> k(2 * r + 1);
  const double a = -0.5 / (sigma * sigma);
  for (int i = -r; i <= r; ++i) k[i + r] = std::exp(a * double(i * i));
  const double sum = numpy_sum(k.data(), k.size());
  for (double& v : k) v /= sum;
  return k;
}

}  // namespace

void gaussian_filter_plane(double* data, int w, int h, double sigma_y, double sigma_x, double truncate,
                           GaussBorder border) {
  std::vector<double> line;
  // scipy.ndimage.gaussian_filter: axis 0, then axis 1; an axis with sigma
  // <= 1e-15 is left alone.
  if (sigma_y > 1e-15) filter1d(data, h, w, w, 1, gaussian_kernel(sigma_y, truncate), border, line);
  if (sigma_x > 1e-15) filter1d(data, w, 1, h, w, gaussian_kernel(sigma_x, truncate), border, line);
}

void corrupt_speckle_noise(Planes& img, double sigma, Draws& draws) {
  // np.random.normal(size=x.shape) fills HWC order: channel fastest.
  const size_t n = img.plane_size();
  for (size_t i = 0; i < n; ++i)
    for (int c = 0; c < img.channels; ++c) {
      float& v = img.plane(c)[i];
      const double x = as_reference(v);
      v = clip01(x + x * (sigma * draws.normal()));  // normal(scale=sigma) is 0 + sigma z
    }
}

void corrupt_defocus_blur(Planes& img, int radius, double alias_blur) {
  const int half = radius <= 8 ? 8 : radius, side = 2 * half + 1, ks = radius <= 8 ? 3 : 5;
  // The aliased disk, normalised (float32, as the reference).
  std::vector<float> disk(size_t(side) * side);
  float sum = 0;
  for (int y = -half; y <= half; ++y)
    for (int x = -half; x <= half; ++x)
      sum += disk[size_t(y + half) * side + (x + half)] = (x * x + y * y <= radius * radius) ? 1.f : 0.f;
  for (float& v : disk) v /= sum;
  // cv2.GaussianBlur(disk, (ks, ks), alias_blur): separable, BORDER_REFLECT_101.
  std::vector<double> g(ks);
  double gs = 0;
  for (int i = 0; i < ks; ++i) gs += g[i] = std::exp(-double(i - ks / 2) * (i - ks / 2) / (2 * alias_blur * alias_blur));
  for (double& v : g) v /= gs;
  auto r101 = [](int i, int n) {
    if (n == 1) return 0;
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * n - 2 - i;
    return i;
  };
  std::vector<double> tmp(disk.size()), kern(disk.size());
  for (int y = 0; y < side; ++y)
    for (int x = 0; x < side; ++x) {
      double a = 0;
      for (int t = 0; t < ks; ++t) a += g[t] * disk[size_t(y) * side + r101(x + t - ks / 2, side)];
      tmp[size_t(y) * side + x] = a;
    }
  for (int y = 0; y < side; ++y)
    for (int x = 0; x < side; ++x) {
      double a = 0;
      for (int t = 0; t < ks; ++t) a += g[t] * tmp[size_t(r101(y + t - ks / 2, side)) * side + x];
      kern[size_t(y) * side + x] = double(float(a));  // the kernel is float32
    }
  // cv2.filter2D: correlation, BORDER_REFLECT_101 (the pipeline's own
  // vectorised filter: 21x21 over 4000x3000 RGB in about a second).
  Kernel k;
  k.size = side;
  k.k = std::move(kern);
  Planes out = filter2d(img, k, FilterAlgo::direct_large);
  for (size_t i = 0; i < out.data.size(); ++i) img.data[i] = clip01(out.data[i]);
}

void corrupt_zoom_blur(Planes& img, double stop, double step) {
  // np.arange(1, stop, step): ceil((stop - 1) / step) values 1 + i step.
  const double count_d = std::ceil((stop - 1.0) / step);
  if (!(count_d >= 1 && count_d <= 100))
    throw Error(ExitCode::bad_input, "zoom_blur: np.arange(1, " + std::to_string(stop) + ", " + std::to_string(step) +
                                         ") gives " + std::to_string(int64_t(std::max(count_d, 0.0))) +
                                         " zooms (1 to 100 allowed)");
  const int count = int(count_d), w = img.width, h = img.height;
  for (int c = 0; c < img.channels; ++c) {
    float* p = img.plane(c);
    std::vector<double> x(img.plane_size());
    for (size_t i = 0; i < x.size(); ++i) x[i] = double(float(as_reference(p[i])));  // float32 in the reference
    std::vector<double> acc(x.size(), 0.0);
    for (int k = 0; k < count; ++k) {
      // np.arange's values are start + k * ((start + step) - start): with
      // step 0.01 that is 0.010000000000000009, and 1 + k * 0.01 differs
      // from it in the last place for some k, enough to move a crop's size.
      const double z = 1.0 + k * ((1.0 + step) - 1.0);
      const int ch = int(std::ceil(h / z)), cw = int(std::ceil(w / z));
      const int top = (h - ch) / 2, left = (w - cw) / 2;
      std::vector<double> crop(size_t(cw) * ch);
      for (int y = 0; y < ch; ++y)
        for (int xx = 0; xx < cw; ++xx) crop[size_t(y) * cw + xx] = x[size_t(top + y) * w + left + xx];
      int zw = 0, zh = 0;
      const std::vector<double> zoomed = zoom_linear(crop, cw, ch, z, zw, zh);
      for (int y = 0; y < h; ++y)
        for (int xx = 0; xx < w; ++xx)
          acc[size_t(y) * w + xx] += double(float(zoomed[size_t(std::min(y, zh - 1)) * zw + std::min(xx, zw - 1)]));
    }
    for (size_t i = 0; i < x.size(); ++i) p[i] = clip01((x[i] + acc[i]) / (count + 1));
  }
}

void corrupt_glass_blur(Planes& img, double sigma, int d, int iterations, Draws& draws) {
  const int w = img.width, h = img.height, nc = img.channels;
  // Blurred, then truncated to 8 bits (np.uint8 of the 0-255 floats).
  std::vector<std::vector<double>> px(nc);
  for (int c = 0; c < nc; ++c) {
    px[c] = plane_as_reference(img, c);
    gaussian_filter_plane(px[c].data(), w, h, sigma, sigma, 4.0, GaussBorder::nearest);
    for (double& v : px[c]) v = std::trunc(std::clamp(v * 255.0, 0.0, 255.0));
  }
  auto randint = [&](int lo, int hi) { return lo + int(std::floor((hi - lo) * draws.uniform())); };
  for (int it = 0; it < iterations; ++it)
    for (int y = h - d; y > d; --y)
      for (int x = w - d; x > d; --x) {
        const int dx = randint(-d, d), dy = randint(-d, d);
        const size_t a = size_t(y) * w + x, b = size_t(y + dy) * w + (x + dx);
        for (int c = 0; c < nc; ++c) px[c][a] = px[c][b];
      }
  for (int c = 0; c < nc; ++c) {
    for (double& v : px[c]) v /= 255.0;
    gaussian_filter_plane(px[c].data(), w, h, sigma, sigma, 4.0, GaussBorder::nearest);
    float* p = img.plane(c);
    for (size_t i = 0; i < img.plane_size(); ++i) p[i] = clip01(px[c][i]);
  }
}

void corrupt_pixelate(Planes& img, double factor) {
  const Image in = to_image8(img);
  // At least one pixel (the reference's PIL resize fails at 0).
  const int sw = std::max(1, int(img.width * factor)), sh = std::max(1, int(img.height * factor));
  const Image small = pil_resize(in, sw, sh, PilFilter::box);
  img = to_planes(pil_resize(small, img.width, img.height, PilFilter::nearest));
}

void corrupt_saturate(Planes& img, double scale, double shift) {
  const size_t n = img.plane_size();
  const bool gray = img.channels < 3;
  for (size_t i = 0; i < n; ++i) {
    const double r = as_reference(img.plane(0)[i]);
    const double g = gray ? r : as_reference(img.plane(1)[i]);
    const double b = gray ? r : as_reference(img.plane(2)[i]);
    // skimage rgb2hsv: the last of red, green, blue that equals the maximum sets the hue.
    const double v = std::max({r, g, b}), delta = v - std::min({r, g, b});
    double s = delta == 0 ? 0.0 : delta / v, hue = 0;
    if (delta != 0) {
      if (r == v) hue = (g - b) / delta;
      if (g == v) hue = 2.0 + (b - r) / delta;
      if (b == v) hue = 4.0 + (r - g) / delta;
      hue = std::fmod(hue / 6.0, 1.0);
      if (hue < 0) hue += 1.0;
    }
    s = std::clamp(s * scale + shift, 0.0, 1.0);
    // skimage hsv2rgb.
    const double hi_f = std::floor(hue * 6.0), f = hue * 6.0 - hi_f;
    const double p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
    double out[3];
    switch (int(hi_f) % 6) {
      case 0: out[0] = v, out[1] = t, out[2] = p; break;
      case 1: out[0] = q, out[1] = v, out[2] = p; break;
      case 2: out[0] = p, out[1] = v, out[2] = t; break;
      case 3: out[0] = p, out[1] = q, out[2] = v; break;
      case 4: out[0] = t, out[1] = p, out[2] = v; break;
      default: out[0] = v, out[1] = p, out[2] = q; break;
    }
    for (int c = 0; c < img.channels; ++c) img.plane(c)[i] = clip01(out[c]);
  }
}

void corrupt_elastic(Planes& img, double alpha, Draws& draws) {
  const int w = img.width, h = img.height;
  const double max_d = h * 0.005;  // the reference bounds both fields by the height
  std::vector<double> dx(img.plane_size()), dy(img.plane_size());
  for (std::vector<double>* f : {&dx, &dy}) {
    for (double& v : *f) v = -max_d + (max_d - -max_d) * draws.uniform();
    gaussian_filter_plane(f->data(), w, h, h * 0.01, w * 0.01, 3.0, GaussBorder::reflect);
    for (double& v : *f) v = double(float(v * alpha));  // .astype(np.float32)
  }
  // map_coordinates(order=1, mode='reflect'): the coordinate reflected
  // half-sample into range, the taps' indices too.
  auto reflect_coord = [](double c, int n) {
    if (n == 1) return 0.0;
    const double p = 2.0 * n;
    c = std::fmod(c, p);
    if (c < 0) c += p;
    return c < n ? c : p - 1 - c;  // [n, 2n) -> (-1, n - 1]
  };
  for (int c = 0; c < img.channels; ++c) {
    const std::vector<double> src = plane_as_reference(img, c);
    std::vector<float> x32(src.size());
    for (size_t i = 0; i < src.size(); ++i) x32[i] = float(src[i]);  // the image is float32 in the reference
    float* out = img.plane(c);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const size_t i = size_t(y) * w + x;
        const double cy = reflect_coord(y + dy[i], h), cx = reflect_coord(x + dx[i], w);
        const int y0 = int(std::floor(cy)), x0 = int(std::floor(cx));
        const double fy = cy - y0, fx = cx - x0;
        const int ya = border_index(y0, h, GaussBorder::reflect), yb = border_index(y0 + 1, h, GaussBorder::reflect);
        const int xa = border_index(x0, w, GaussBorder::reflect), xb = border_index(x0 + 1, w, GaussBorder::reflect);
        const double top = x32[size_t(ya) * w + xa] * (1 - fx) + x32[size_t(ya) * w + xb] * fx;
        const double bot = x32[size_t(yb) * w + xa] * (1 - fx) + x32[size_t(yb) * w + xb] * fx;
        out[i] = clip01(top * (1 - fy) + bot * fy);
      }
  }
}

}  // namespace rass::degrade
