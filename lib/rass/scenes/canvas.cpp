#include "rass/scenes/canvas.hpp"

#include <algorithm>
#include <cmath>

#include "rass/core/rng.hpp"

namespace rass::scenes {

namespace {

double seg_dist(double px, double py, Vec a, Vec b) {
  const double ex = b.x - a.x, ey = b.y - a.y, wx = px - a.x, wy = py - a.y;
  const double len2 = ex * ex + ey * ey;
  const double t = len2 > 0 ? std::clamp((wx * ex + wy * ey) / len2, 0.0, 1.0) : 0.0;
  const double dx = wx - ex * t, dy = wy - ey * t;
  return std::sqrt(dx * dx + dy * dy);
}

}  // namespace

double Shape::sdf(double x, double y) const {
  switch (kind) {
    case Kind::polygon: {
      // Distance to the nearest edge; inside by the even-odd crossing rule.
      double d = 1e300;
      bool inside = false;
      const size_t n = pts.size();
      for (size_t i = 0, j = n - 1; i < n; j = i++) {
        const Vec a = pts[j], b = pts[i];
        d = std::min(d, seg_dist(x, y, a, b));
        if ((b.y > y) != (a.y > y) && x < (a.x - b.x) * (y - b.y) / (a.y - b.y) + b.x) inside = !inside;
      }
      return inside ? -d : d;
    }
    case Kind::ellipse: {
      // First-order distance |f| / |grad f| of f = |q/r| - 1 in the ellipse's frame.
      const double ca = std::cos(angle), sa = std::sin(angle);
      const double dx = x - c.x, dy = y - c.y;
      const double qx = dx * ca + dy * sa, qy = -dx * sa + dy * ca;
      const double ux = qx / rx, uy = qy / ry;
      const double k = std::sqrt(ux * ux + uy * uy);
      if (k == 0) return -std::min(rx, ry);
      const double gx = ux / rx, gy = uy / ry;
      const double g = std::sqrt(gx * gx + gy * gy);
      return (k - 1) * k / g;
    }
    case Kind::capsule:
      return seg_dist(x, y, pts[0], pts[1]) - r;
    case Kind::ridge: {
      const size_t n = pts.size();
      const double t = (x - x0) / (x1 - x0) * double(n - 1);
      const double ti = std::clamp(std::floor(t), 0.0, double(n - 2));
      const size_t i = size_t(ti);
      const double f = std::clamp(t - ti, 0.0, 1.0);
      const double top = pts[i].y + (pts[i + 1].y - pts[i].y) * f;
      const double slope = (pts[i + 1].y - pts[i].y) / ((x1 - x0) / double(n - 1));
      const double d_top = (top - y) / std::sqrt(1 + slope * slope);
      return std::max({d_top, y - bottom, x0 - x, x - x1});
    }
  }
  return 1;
}

void Shape::bounds(double& bx0, double& by0, double& bx1, double& by1) const {
  switch (kind) {
    case Kind::polygon:
    case Kind::capsule: {
      const double pad = kind == Kind::capsule ? r : 0;
      bx0 = by0 = 1e300;
      bx1 = by1 = -1e300;
      for (const Vec& p : pts) {
        bx0 = std::min(bx0, p.x - pad);
        by0 = std::min(by0, p.y - pad);
        bx1 = std::max(bx1, p.x + pad);
        by1 = std::max(by1, p.y + pad);
      }
      return;
    }
    case Kind::ellipse: {
      const double m = std::max(rx, ry);
      bx0 = c.x - m, by0 = c.y - m, bx1 = c.x + m, by1 = c.y + m;
      return;
    }
    case Kind::ridge: {
      bx0 = x0, bx1 = x1, by1 = bottom, by0 = 1e300;
      for (const Vec& p : pts) by0 = std::min(by0, p.y);
      return;
    }
  }
}

Shape polygon(std::vector<Vec> pts) {
  Shape s;
  s.kind = Shape::Kind::polygon;
  s.pts = std::move(pts);
  return s;
}
Shape rect(double x0, double y0, double x1, double y1) { return polygon({{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}}); }
Shape ellipse(Vec c, double rx, double ry, double angle) {
  Shape s;
  s.kind = Shape::Kind::ellipse;
  s.c = c;
  s.rx = std::max(rx, 1e-3);
  s.ry = std::max(ry, 1e-3);
  s.angle = angle;
  return s;
}
Shape capsule(Vec a, Vec b, double r) {
  Shape s;
  s.kind = Shape::Kind::capsule;
  s.pts = {a, b};
  s.r = r;
  return s;
}
Shape ridge(double x0, double x1, const std::vector<double>& heights, double bottom) {
  Shape s;
  s.kind = Shape::Kind::ridge;
  s.x0 = x0;
  s.x1 = x1;
  s.bottom = bottom;
  for (double h : heights) s.pts.push_back({0, h});
  if (s.pts.size() < 2) s.pts.resize(2, s.pts.empty() ? Vec{0, bottom} : s.pts[0]);
  return s;
}

Canvas::Canvas(int width, int height)
    : w_(width), h_(height), rgb_(size_t(width) * height * 3, 0.f), labels_(size_t(width) * height, 255) {}

// The pixel rows/columns a shape with a soft edge of `pad` pixels can touch.
static void pixel_range(const Shape& s, double pad, int w, int h, int& x0, int& y0, int& x1, int& y1) {
  double bx0, by0, bx1, by1;
  s.bounds(bx0, by0, bx1, by1);
  x0 = std::max(0, int(std::floor(bx0 - pad)));
  y0 = std::max(0, int(std::floor(by0 - pad)));
  x1 = std::min(w, int(std::ceil(bx1 + pad)) + 1);
  y1 = std::min(h, int(std::ceil(by1 + pad)) + 1);
}

void Canvas::fill(const Shape& shape, Cls cls, const Paint& paint, double opacity, double softness, bool label) {
  int x0, y0, x1, y1;
  pixel_range(shape, softness, w_, h_, x0, y0, x1, y1);
  const uint8_t lv = class_label(cls);
  if (record && label) record->push_back({shape, cls});
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) {
      const double px = x + 0.5, py = y + 0.5;
      const double d = shape.sdf(px, py);
      if (d < 0 && label) labels_[size_t(y) * w_ + x] = lv;
      const double a = std::clamp(0.5 - d / softness, 0.0, 1.0) * opacity;
      if (a <= 0) continue;
      const Rgb c = paint.at(px, py);
      float* p = &rgb_[(size_t(y) * w_ + x) * 3];
      const float fa = float(a);
      p[0] += (c.r - p[0]) * fa;
      p[1] += (c.g - p[1]) * fa;
      p[2] += (c.b - p[2]) * fa;
    }
}

void Canvas::shade(const Shape& shape, double factor, double softness) {
  int x0, y0, x1, y1;
  pixel_range(shape, softness, w_, h_, x0, y0, x1, y1);
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) {
      const double a = std::clamp(0.5 - shape.sdf(x + 0.5, y + 0.5) / softness, 0.0, 1.0);
      if (a <= 0) continue;
      const float k = float(1 + (factor - 1) * a);
      float* p = &rgb_[(size_t(y) * w_ + x) * 3];
      p[0] *= k, p[1] *= k, p[2] *= k;
    }
}

void Canvas::light(double gain, double gradient, double angle, double gamma) {
  const double ca = std::cos(angle), sa = std::sin(angle);
  for (int y = 0; y < h_; ++y)
    for (int x = 0; x < w_; ++x) {
      const double u = (2 * (x + 0.5) / w_ - 1) * ca + (2 * (y + 0.5) / h_ - 1) * sa;  // -1.4..1.4
      const float k = float(gain * (1 + gradient * std::clamp(u, -1.0, 1.0)));
      float* p = &rgb_[(size_t(y) * w_ + x) * 3];
      for (int c = 0; c < 3; ++c) p[c] = float(std::pow(std::clamp(p[c] * k, 0.f, 1.f), gamma));
    }
}

void Canvas::tint(const Rgb& f) {
  for (size_t i = 0; i < rgb_.size(); i += 3) {
    rgb_[i] *= f.r;
    rgb_[i + 1] *= f.g;
    rgb_[i + 2] *= f.b;
  }
}

void Canvas::haze(double horizon, double spread, double strength, const Rgb& colour) {
  const float col[3] = {colour.r, colour.g, colour.b};
  for (int y = 0; y < h_; ++y) {
    const float k = float(strength * std::exp(-std::abs(y + 0.5 - horizon) / std::max(1.0, spread)));
    for (int x = 0; x < w_; ++x) {
      float* p = &rgb_[(size_t(y) * w_ + x) * 3];
      for (int c = 0; c < 3; ++c) p[c] += (col[c] - p[c]) * k;
    }
  }
}

Image Canvas::image(double grain, uint64_t seed) const {
  Image img(w_, h_, 3);
  Rng rng(seed);
  uint8_t* o = img.u8();
  for (size_t i = 0; i < rgb_.size(); ++i) {
    const double n = grain > 0 ? grain * (rng.uniform() + rng.uniform() - 1) : 0;  // triangular, keyed
    o[i] = uint8_t(std::clamp(std::lround((rgb_[i] + n) * 255.0), 0L, 255L));
  }
  return img;
}

Image Canvas::labels() const {
  Image img(w_, h_, 1);
  std::copy(labels_.begin(), labels_.end(), img.u8());
  return img;
}

}  // namespace rass::scenes
