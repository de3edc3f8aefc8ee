// The raster of rass-scenes: shapes given by a signed distance (negative
// inside, in pixels), painted in order onto a float RGB image and an 8-bit
// label map.
//
// Labels are exact: a label pixel is the class of the last filled shape that
// covers the pixel centre (x + 0.5, y + 0.5), i.e. sdf < 0 there; painter's
// order makes it the visible class. Anti-aliasing exists only in the image:
// a shape's opacity at a pixel is clamp(0.5 - sdf / softness, 0, 1) (about
// the covered fraction of the pixel for softness 1), so edges are smooth
// while the label map keeps hard, exact boundaries. Shading (shadows, light)
// changes the image, never the labels.
#pragma once
#include <cstdint>
#include <vector>

#include "rass/core/image.hpp"
#include "rass/scenes/classes.hpp"
#include "rass/scenes/paint.hpp"

namespace rass::scenes {

struct Vec {
  double x = 0, y = 0;
};

struct Shape {
  enum class Kind { polygon, ellipse, capsule, ridge } kind = Kind::polygon;
  std::vector<Vec> pts;  // polygon: vertices (any simple polygon); capsule: the two end points;
                         // ridge: top-edge heights sampled evenly from x0 to x1 (pts[i].y)
  Vec c;                 // ellipse centre
  double rx = 0, ry = 0, angle = 0;  // ellipse radii and rotation
  double r = 0;          // capsule radius
  double x0 = 0, x1 = 0, bottom = 0;  // ridge: x extent and bottom row (inside: top(x) < y < bottom)
  // Signed distance (approximate away from the boundary, exact in sign).
  double sdf(double x, double y) const;
  bool covers(double x, double y) const { return sdf(x, y) < 0; }
  // Bounding box (inclusive-exclusive, in pixel coordinates, not clipped).
  void bounds(double& bx0, double& by0, double& bx1, double& by1) const;
};

Shape polygon(std::vector<Vec> pts);
Shape rect(double x0, double y0, double x1, double y1);
Shape ellipse(Vec c, double rx, double ry, double angle = 0);
Shape capsule(Vec a, Vec b, double r);
// A mountain-like region below a top edge: heights[i] at x0 + i * (x1 - x0) / (n - 1).
Shape ridge(double x0, double x1, const std::vector<double>& heights, double bottom);

// One labelled fill, as recorded for tests (Canvas::record).
struct DrawOp {
  Shape shape;
  Cls cls;
};

class Canvas {
 public:
  // When set, every labelled fill is appended here, in painting order.
  std::vector<DrawOp>* record = nullptr;
  Canvas(int width, int height);
  int width() const { return w_; }
  int height() const { return h_; }
  // Paints `shape` with `paint` at `opacity`, and sets the label of every
  // pixel whose centre it covers to `cls` (unless label is false: decoration
  // that belongs to whatever is below, e.g. a shadow-free highlight).
  void fill(const Shape& shape, Cls cls, const Paint& paint, double opacity = 1, double softness = 1,
            bool label = true);
  // Multiplies the image under `shape` by `factor` (soft edge of `softness`
  // pixels); labels unchanged.
  void shade(const Shape& shape, double factor, double softness = 1);
  // Whole-image light: gain * (1 + gradient * (projection of the pixel on
  // direction `angle`, -1..1)), then gamma.
  void light(double gain, double gradient, double angle, double gamma);
  // White balance: each channel multiplied by its factor (warm or cool light).
  void tint(const Rgb& factors);
  // Haze: the image pulled towards `colour`, by `strength` at row `horizon`
  // and less away from it (falling off over `spread` rows): aerial perspective.
  void haze(double horizon, double spread, double strength, const Rgb& colour);
  // The label at pixel (x, y); 255 where nothing was drawn.
  uint8_t label_at(int x, int y) const { return labels_[size_t(y) * w_ + x]; }
  // The 8-bit RGB image (rounded, clamped, with `grain` of keyed sensor noise)
  // and the 1-channel label map.
  Image image(double grain, uint64_t seed) const;
  Image labels() const;

 private:
  int w_, h_;
  std::vector<float> rgb_;
  std::vector<uint8_t> labels_;
};

}  // namespace rass::scenes
