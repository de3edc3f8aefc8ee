// Procedural textures of rass-scenes: what colour a shape has at a point.
// A Paint is a pattern (value noise, stripes, bricks, leaves, planks, tiles,
// waves, grass blades, a vertical gradient) over two colours, evaluated at
// pixel centres, so a class gets its look from a pattern family and its
// variation from the colours, scale and angle the generator draws.
#pragma once
#include <cstdint>

namespace rass::scenes {

struct Rgb {
  float r = 0, g = 0, b = 0;
};
Rgb mix(const Rgb& a, const Rgb& b, double t);
Rgb scale(const Rgb& a, double k);

// Value noise in [0,1) on an integer lattice hashed with `seed` (smoothstep
// interpolation), and its fractal sum (octaves halving in size and weight).
double value_noise(double x, double y, uint64_t seed);
double fbm(double x, double y, uint64_t seed, int octaves);
// 1-D fractal noise in [0,1), for ridge lines.
double fbm1(double x, uint64_t seed, int octaves);

enum class Pattern { flat, noise, stripes, bricks, leaves, planks, tiles, waves, blades, vgradient };

struct Paint {
  Pattern pattern = Pattern::flat;
  Rgb a, b;             // main colour, second colour (mortar, stripe, highlight)
  double size = 8;      // feature size in pixels (brick height, stripe period, noise cell)
  double angle = 0;     // pattern rotation in radians (stripes, planks)
  double grain = 0.08;  // strength of the fine noise on top of every pattern
  double y0 = 0, y1 = 1;  // vgradient: rows where a turns into b
  uint64_t seed = 0;
  // Ground perspective (ground_k > 0): the pattern lies on a ground plane
  // whose horizon is row ground_h, seen from above: a point at row y maps to
  // depth ground_k^2 / (y - ground_h) and lateral position (x - ground_cx) *
  // ground_k / (y - ground_h), so pattern features are 1:1 at y = ground_h +
  // ground_k and shrink towards the horizon, where the pattern fades to its
  // mean colour instead of aliasing.
  double ground_h = 0, ground_k = 0, ground_cx = 0;
  Rgb at(double x, double y) const;
};

}  // namespace rass::scenes
