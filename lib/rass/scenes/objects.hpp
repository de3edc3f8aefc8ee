// The things a scene is made of, each drawn onto a Canvas with its class:
// sky, mountains, trees, people, cars, buildings (windows, doors), fences,
// rocks, poles, flowers, stairs and room furniture. Every draw comes from the
// scene's keyed Rng; sizes are in pixels (the caller scales them by depth).
#pragma once
#include <algorithm>
#include <cstdint>

#include "rass/core/rng.hpp"
#include "rass/scenes/canvas.hpp"

namespace rass::scenes {

struct Ctx {
  Ctx(Canvas& c, Rng& r, uint64_t s, int width, int height) : canvas(c), rng(r), seed(s), w(width), h(height) {}
  Canvas& canvas;
  Rng& rng;
  uint64_t seed;  // base of the texture seeds
  int w, h;
  uint64_t next_seed() { return mix64(seed + ++paints_); }
  double u(double lo, double hi) { return rng.uniform(lo, hi); }
  bool chance(double p) { return rng.uniform() < p; }
  int below(int n) { return int(rng.below(uint64_t(n))); }
  // `base` with each channel moved by up to +-amount and the whole by +-bright.
  Rgb vary(Rgb base, double amount, double bright = 0.1);
  Paint paint(Pattern p, Rgb a, Rgb b, double size, double angle = 0, double grain = 0.08);
  // The same on the ground plane below row `horizon` (Paint::ground_*), centred on column cx.
  Paint ground(Paint p, double horizon, double cx) {
    p.ground_h = horizon;
    p.ground_k = std::max(1.0, h - horizon);
    p.ground_cx = cx;
    return p;
  }

 private:
  uint64_t paints_ = 0;
};

void draw_sky(Ctx& x, double y_end, bool clouds);
void draw_mountains(Ctx& x, double horizon);
void draw_tree(Ctx& x, double cx, double base, double height);
void draw_person(Ctx& x, double cx, double base, double height);
void draw_car(Ctx& x, double cx, double base, double width);
// A facade from x0 to x1, roof at top, standing on base; windows and a door.
void draw_building(Ctx& x, double x0, double x1, double top, double base);
void draw_fence(Ctx& x, double x0, double x1, double base, double height);
void draw_rock(Ctx& x, double cx, double base, double size);
void draw_pole(Ctx& x, double cx, double base, double height);
void draw_flowers(Ctx& x, double cx, double base, double size);
void draw_stairs(Ctx& x, double x0, double x1, double top, double base, int steps, Cls under_cls);
void draw_table(Ctx& x, double cx, double base, double width);
void draw_chair(Ctx& x, double cx, double base, double height);
void draw_painting(Ctx& x, double x0, double y0, double x1, double y1);
// A window on a wall: glass (windowpane) with a view of sky, frame and bars.
void draw_window(Ctx& x, double x0, double y0, double x1, double y1, Cls frame_cls);
void draw_door(Ctx& x, double x0, double y0, double x1, double y1);
// A soft dark ellipse on the ground under an object (image only).
void cast_shadow(Ctx& x, double cx, double base, double half_width, double strength);

}  // namespace rass::scenes
