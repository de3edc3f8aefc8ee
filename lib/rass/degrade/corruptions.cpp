#include "rass/degrade/corruptions.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "rass/core/error.hpp"

namespace rass::degrade {

namespace {

float clip01(double v) { return float(v < 0 ? 0 : v > 1 ? 1 : v); }

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

}  // namespace rass::degrade
