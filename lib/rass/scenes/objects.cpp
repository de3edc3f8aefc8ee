#include "rass/scenes/objects.hpp"

#include <algorithm>
#include <cmath>

namespace rass::scenes {

Rgb Ctx::vary(Rgb base, double amount, double bright) {
  const double k = 1 + u(-bright, bright);
  auto ch = [&](float v) { return float(std::clamp((v + u(-amount, amount)) * k, 0.0, 1.0)); };
  return {ch(base.r), ch(base.g), ch(base.b)};
}

Paint Ctx::paint(Pattern p, Rgb a, Rgb b, double size, double angle, double grain) {
  Paint pt;
  pt.pattern = p;
  pt.a = a;
  pt.b = b;
  pt.size = std::max(1.0, size);
  pt.angle = angle;
  pt.grain = grain;
  pt.seed = next_seed();
  return pt;
}

void cast_shadow(Ctx& x, double cx, double base, double half_width, double strength) {
  x.canvas.shade(ellipse({cx, base}, half_width, std::max(1.0, half_width * 0.18)), 1 - strength,
                 std::max(1.0, half_width * 0.3));
}

void draw_sky(Ctx& x, double y_end, bool clouds) {
  // Clear blue, dusk or overcast; brighter towards the horizon.
  static const Rgb zenith[] = {{0.20f, 0.42f, 0.85f}, {0.35f, 0.30f, 0.55f}, {0.58f, 0.62f, 0.66f}, {0.30f, 0.55f, 0.90f}};
  static const Rgb low[] = {{0.70f, 0.83f, 0.97f}, {0.98f, 0.62f, 0.38f}, {0.82f, 0.84f, 0.86f}, {0.85f, 0.92f, 1.0f}};
  const int k = x.below(4);
  Paint p = x.paint(Pattern::vgradient, x.vary(zenith[k], 0.05), x.vary(low[k], 0.05), 1, 0, 0.02);
  p.y0 = 0;
  p.y1 = std::max(2.0, y_end);
  x.canvas.fill(rect(0, 0, x.w, y_end), Cls::sky, p);
  if (!clouds) return;
  const int n = x.below(6);
  for (int i = 0; i < n; ++i) {
    // A cloud: a cluster of soft white ellipses, still labelled sky (as ADE20K does).
    const double cx = x.u(0, x.w), cy = x.u(0, std::max(1.0, y_end * 0.7)), s = x.u(0.04, 0.14) * x.w;
    const Rgb white = x.vary({0.96f, 0.96f, 0.98f}, 0.03, 0.08);
    const Paint cp = x.paint(Pattern::noise, white, scale(white, 0.85), s * 0.5, 0, 0.02);
    for (int j = 0; j < 4; ++j)
      x.canvas.fill(ellipse({cx + x.u(-1.2, 1.2) * s, cy + x.u(-0.3, 0.3) * s}, s * x.u(0.6, 1.2), s * x.u(0.3, 0.55)),
                    Cls::sky, cp, x.u(0.5, 0.9), s * 0.3);
  }
}

void draw_mountains(Ctx& x, double horizon) {
  const int layers = 1 + x.below(3);
  for (int l = 0; l < layers; ++l) {
    // Far ranges are paler (aerial perspective) and higher.
    const double far = double(layers - l) / layers;
    const double amp = x.u(0.08, 0.3) * x.h * (0.6 + 0.4 * far);
    const uint64_t s = x.next_seed();
    const double freq = x.u(2, 6);
    std::vector<double> top;
    const int n = 48;
    for (int i = 0; i < n; ++i) top.push_back(horizon - amp * fbm1(double(i) / n * freq, s, 4) * 1.4);
    Rgb base = x.vary(x.chance(0.5) ? Rgb{0.35f, 0.40f, 0.48f} : Rgb{0.38f, 0.36f, 0.30f}, 0.05);
    base = mix(base, {0.7f, 0.75f, 0.85f}, 0.45 * far);
    const Paint p = x.paint(Pattern::noise, base, scale(base, 1.35), x.w * 0.05, 0, 0.05);
    x.canvas.fill(ridge(-2, x.w + 2, top, horizon + 1), Cls::mountain, p);
  }
}

void draw_tree(Ctx& x, double cx, double base, double height) {
  const bool conifer = x.chance(0.35);
  const double trunk_w = std::max(1.0, height * x.u(0.04, 0.08));
  const Rgb bark = x.vary({0.36f, 0.25f, 0.16f}, 0.05);
  const Rgb leaf = x.vary(x.chance(0.2) ? Rgb{0.60f, 0.45f, 0.15f} : Rgb{0.20f, 0.45f, 0.16f}, 0.07);
  cast_shadow(x, cx, base, height * 0.3, 0.35);
  x.canvas.fill(capsule({cx, base}, {cx, base - height * 0.55}, trunk_w),
                Cls::tree, x.paint(Pattern::stripes, bark, scale(bark, 0.7), trunk_w * 0.6, M_PI / 2));
  const Paint lp = x.paint(Pattern::leaves, scale(leaf, 0.65), scale(leaf, 1.3), std::max(2.0, height * 0.08));
  if (conifer) {
    const int tiers = 3 + x.below(2);
    for (int t = 0; t < tiers; ++t) {
      const double y1 = base - height * (0.2 + 0.7 * t / tiers), y0 = y1 - height * 0.4;
      const double hw = height * 0.28 * (1 - 0.6 * t / tiers);
      x.canvas.fill(polygon({{cx - hw, y1}, {cx + hw, y1}, {cx, y0}}), Cls::tree, lp);
    }
  } else {
    const int blobs = 3 + x.below(4);
    for (int b = 0; b < blobs; ++b) {
      const double r = height * x.u(0.18, 0.3);
      x.canvas.fill(ellipse({cx + x.u(-0.2, 0.2) * height, base - height * x.u(0.55, 0.8)}, r, r * x.u(0.75, 1.0)),
                    Cls::tree, lp);
    }
  }
}

void draw_person(Ctx& x, double cx, double base, double height) {
  static const Rgb skins[] = {{0.95f, 0.80f, 0.68f}, {0.80f, 0.60f, 0.45f}, {0.55f, 0.38f, 0.26f}, {0.36f, 0.24f, 0.16f}};
  const Rgb skin = x.vary(skins[x.below(4)], 0.03);
  const Rgb shirt = x.vary({float(x.u(0, 1)), float(x.u(0, 1)), float(x.u(0, 1))}, 0.0);
  const Rgb pants = x.vary(x.chance(0.5) ? Rgb{0.15f, 0.2f, 0.4f} : Rgb{0.2f, 0.2f, 0.2f}, 0.1);
  const double hu = height / 7.5;  // the head unit of figure drawing
  const double lean = x.u(-0.05, 0.05) * height, stride = x.u(0, 0.9) * hu;
  cast_shadow(x, cx, base, hu * 1.6, 0.4);
  const Vec hip{cx + lean * 0.3, base - 3.6 * hu}, neck{cx + lean, base - 6.3 * hu};
  const Paint pp = x.paint(Pattern::noise, pants, scale(pants, 0.8), hu);
  x.canvas.fill(capsule(hip, {cx - stride, base - hu * 0.25}, hu * 0.42), Cls::person, pp);
  x.canvas.fill(capsule(hip, {cx + stride, base - hu * 0.25}, hu * 0.42), Cls::person, pp);
  const Paint sp = x.paint(x.chance(0.3) ? Pattern::stripes : Pattern::noise, shirt, scale(shirt, 0.7), hu * 0.5);
  x.canvas.fill(polygon({{neck.x - hu * 0.9, neck.y}, {neck.x + hu * 0.9, neck.y}, {hip.x + hu * 0.7, hip.y + hu * 0.3},
                         {hip.x - hu * 0.7, hip.y + hu * 0.3}}),
                Cls::person, sp);
  const double swing = x.u(-1, 1) * hu;
  x.canvas.fill(capsule({neck.x - hu * 0.8, neck.y + hu * 0.3}, {cx - hu * 1.1 + swing, hip.y + hu * 0.2}, hu * 0.3),
                Cls::person, sp);
  x.canvas.fill(capsule({neck.x + hu * 0.8, neck.y + hu * 0.3}, {cx + hu * 1.1 - swing, hip.y + hu * 0.2}, hu * 0.3),
                Cls::person, sp);
  x.canvas.fill(ellipse({neck.x, neck.y - hu * 0.55}, hu * 0.45, hu * 0.58), Cls::person,
                x.paint(Pattern::flat, skin, skin, 1, 0, 0.04));
  if (x.chance(0.6)) {  // hair or a hat
    const Rgb hair = x.vary({0.15f, 0.1f, 0.07f}, 0.1);
    x.canvas.fill(ellipse({neck.x, neck.y - hu * 0.85}, hu * 0.47, hu * 0.3), Cls::person,
                  x.paint(Pattern::noise, hair, scale(hair, 1.4), hu * 0.2));
  }
}

void draw_car(Ctx& x, double cx, double base, double width) {
  static const Rgb paints[] = {{0.75f, 0.1f, 0.1f}, {0.1f, 0.2f, 0.6f}, {0.9f, 0.9f, 0.9f}, {0.15f, 0.15f, 0.15f},
                               {0.6f, 0.6f, 0.62f}, {0.9f, 0.75f, 0.1f}, {0.1f, 0.45f, 0.25f}};
  const Rgb body = x.vary(paints[x.below(7)], 0.04);
  const double hgt = width * x.u(0.32, 0.42), wheel = width * 0.11;
  const double x0 = cx - width / 2, x1 = cx + width / 2, y1 = base - wheel * 0.6, y0 = y1 - hgt * 0.5;
  cast_shadow(x, cx, base, width * 0.6, 0.5);
  const Paint bp = x.paint(Pattern::vgradient, scale(body, 1.15), scale(body, 0.75), 1, 0, 0.03);
  Paint bpg = bp;
  bpg.y0 = base - hgt;
  bpg.y1 = base;
  // Cabin first, then the body over its lower edge, then glass and wheels: all car.
  const double cab0 = x0 + width * x.u(0.15, 0.3), cab1 = x1 - width * x.u(0.12, 0.25);
  x.canvas.fill(polygon({{cab0, y0 + 1}, {cab1, y0 + 1}, {cab1 - width * 0.08, y0 - hgt * 0.45},
                         {cab0 + width * 0.1, y0 - hgt * 0.45}}),
                Cls::car, bpg);
  x.canvas.fill(polygon({{x0 + width * 0.02, y1}, {x1, y1}, {x1, y0 + hgt * 0.12}, {x1 - width * 0.05, y0},
                         {x0 + width * 0.04, y0}, {x0, y0 + hgt * 0.15}}),
                Cls::car, bpg);
  const Rgb glass = x.vary({0.25f, 0.32f, 0.4f}, 0.05);
  Paint gp = x.paint(Pattern::vgradient, scale(glass, 1.5), glass, 1, 0, 0.02);
  gp.y0 = y0 - hgt * 0.4;
  gp.y1 = y0;
  const double mid = (cab0 + cab1) / 2;
  x.canvas.fill(polygon({{cab0 + width * 0.03, y0}, {mid - width * 0.01, y0}, {mid - width * 0.01, y0 - hgt * 0.38},
                         {cab0 + width * 0.11, y0 - hgt * 0.38}}),
                Cls::car, gp);
  x.canvas.fill(polygon({{mid + width * 0.01, y0}, {cab1 - width * 0.03, y0}, {cab1 - width * 0.09, y0 - hgt * 0.38},
                         {mid + width * 0.01, y0 - hgt * 0.38}}),
                Cls::car, gp);
  const Paint tyre = x.paint(Pattern::flat, {0.06f, 0.06f, 0.06f}, {0, 0, 0}, 1, 0, 0.05);
  const Paint rim = x.paint(Pattern::flat, {0.6f, 0.6f, 0.62f}, {0, 0, 0}, 1, 0, 0.05);
  for (double wx : {x0 + width * 0.2, x1 - width * 0.2}) {
    x.canvas.fill(ellipse({wx, base - wheel}, wheel, wheel), Cls::car, tyre);
    x.canvas.fill(ellipse({wx, base - wheel}, wheel * 0.5, wheel * 0.5), Cls::car, rim);
  }
  const Paint lamp = x.paint(Pattern::flat, {1.0f, 0.95f, 0.7f}, {0, 0, 0}, 1, 0, 0.02);
  x.canvas.fill(ellipse({x1 - width * 0.02, y0 + hgt * 0.12}, width * 0.02, hgt * 0.06), Cls::car, lamp);
}

void draw_window(Ctx& x, double x0, double y0, double x1, double y1, Cls frame_cls) {
  const Rgb sky = x.vary({0.55f, 0.7f, 0.85f}, 0.1, 0.3);
  Paint gp = x.paint(Pattern::vgradient, scale(sky, 1.1), scale(sky, 0.55), 1, 0, 0.02);
  gp.y0 = y0;
  gp.y1 = y1;
  const double fw = std::max(0.6, (x1 - x0) * 0.08);
  const Rgb frame = x.vary({0.92f, 0.92f, 0.9f}, 0.08, 0.2);
  const Paint fp = x.paint(Pattern::flat, frame, frame, 1, 0, 0.03);
  x.canvas.fill(rect(x0 - fw, y0 - fw, x1 + fw, y1 + fw), frame_cls, fp);
  x.canvas.fill(rect(x0, y0, x1, y1), Cls::windowpane, gp);
  // The bars belong to the window: ADE20K labels the whole pane, frame bars included.
  if (x.chance(0.6) && x1 - x0 > 6) {
    x.canvas.fill(rect((x0 + x1) / 2 - fw / 2, y0, (x0 + x1) / 2 + fw / 2, y1), Cls::windowpane, fp);
    x.canvas.fill(rect(x0, (y0 + y1) / 2 - fw / 2, x1, (y0 + y1) / 2 + fw / 2), Cls::windowpane, fp);
  }
}

void draw_door(Ctx& x, double x0, double y0, double x1, double y1) {
  static const Rgb woods[] = {{0.45f, 0.28f, 0.15f}, {0.25f, 0.15f, 0.1f}, {0.6f, 0.15f, 0.12f}, {0.15f, 0.3f, 0.45f}};
  const Rgb c = x.vary(woods[x.below(4)], 0.05);
  x.canvas.fill(rect(x0, y0, x1, y1), Cls::door,
                x.paint(Pattern::planks, c, scale(c, 0.6), std::max(1.5, (x1 - x0) * 0.25), M_PI / 2));
  const double kw = std::max(0.6, (x1 - x0) * 0.07);
  x.canvas.fill(ellipse({x1 - (x1 - x0) * 0.2, (y0 + y1) / 2 + (y1 - y0) * 0.05}, kw, kw), Cls::door,
                x.paint(Pattern::flat, {0.85f, 0.75f, 0.3f}, {0, 0, 0}, 1, 0, 0.05));
}

void draw_building(Ctx& x, double x0, double x1, double top, double base) {
  static const Rgb walls[] = {{0.65f, 0.32f, 0.24f}, {0.8f, 0.76f, 0.66f}, {0.55f, 0.55f, 0.57f},
                              {0.85f, 0.65f, 0.45f}, {0.9f, 0.88f, 0.8f},  {0.45f, 0.5f, 0.6f}};
  const int style = x.below(6);
  const Rgb wc = x.vary(walls[style], 0.05);
  const double w = x1 - x0, hgt = base - top;
  const Paint facade = style == 0 ? x.paint(Pattern::bricks, wc, {0.75f, 0.72f, 0.68f}, std::max(1.5, hgt * 0.02))
                                  : x.paint(Pattern::noise, wc, scale(wc, 0.85), std::max(2.0, w * 0.1));
  x.canvas.fill(rect(x0, top, x1, base), Cls::building, facade);
  if (x.chance(0.4)) {  // a pitched roof
    const Rgb rc = x.vary({0.45f, 0.2f, 0.15f}, 0.08);
    x.canvas.fill(polygon({{x0 - w * 0.04, top + 1}, {x1 + w * 0.04, top + 1}, {(x0 + x1) / 2, top - hgt * x.u(0.1, 0.3)}}),
                  Cls::building, x.paint(Pattern::tiles, rc, scale(rc, 0.7), std::max(1.5, w * 0.05)));
  }
  // A side in shadow, so the box reads as a volume.
  if (x.chance(0.5)) x.canvas.shade(rect(x1 - w * x.u(0.1, 0.25), top, x1, base), 0.72);
  // Window grid; the ground floor gets a door.
  const int cols = std::max(1, int(w / (x.u(0.035, 0.1) * x.w)));  // window cells scale with the image
  const int rows = std::max(1, int(hgt / (w / cols) * x.u(0.6, 0.9)));
  const double cw = w / cols, rh = hgt / (rows + 0.6);
  const double gx = cw * x.u(0.2, 0.35), gy = rh * x.u(0.2, 0.35);
  const int door_col = x.below(cols);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      const double wx0 = x0 + c * cw + gx, wx1 = x0 + (c + 1) * cw - gx;
      const double wy0 = top + rh * 0.4 + r * rh + gy, wy1 = top + rh * 0.4 + (r + 1) * rh - gy;
      if (r == rows - 1 && c == door_col) {
        // Sometimes a few steps lead up to the door.
        const double steps_h = x.chance(0.35) ? (base - wy0) * 0.25 : 0;
        draw_door(x, wx0, wy0, wx1, base - steps_h);
        if (steps_h >= 3)
          draw_stairs(x, wx0 - cw * 0.2, wx1 + cw * 0.2, base - steps_h, base, 2 + x.below(3), Cls::building);
        continue;
      }
      if (wx1 - wx0 >= 1.5 && wy1 - wy0 >= 1.5) draw_window(x, wx0, wy0, wx1, wy1, Cls::building);
    }
}

void draw_fence(Ctx& x, double x0, double x1, double base, double height) {
  const Rgb c = x.vary(x.chance(0.5) ? Rgb{0.55f, 0.4f, 0.25f} : Rgb{0.85f, 0.85f, 0.82f}, 0.06);
  const Paint p = x.paint(Pattern::planks, c, scale(c, 0.75), std::max(1.5, height * 0.2), M_PI / 2);
  const double pw = std::max(1.0, height * 0.1), gap = height * x.u(0.35, 0.7);
  for (double px = x0; px <= x1; px += gap) x.canvas.fill(rect(px - pw / 2, base - height, px + pw / 2, base), Cls::fence, p);
  for (double f : {0.3, 0.75}) {
    const double ry = base - height * f;
    x.canvas.fill(rect(x0 - pw / 2, ry - pw * 0.4, x1 + pw / 2, ry + pw * 0.4), Cls::fence, p);
  }
}

void draw_rock(Ctx& x, double cx, double base, double size) {
  std::vector<Vec> pts;
  const int n = 7 + x.below(5);
  for (int i = 0; i < n; ++i) {
    const double a = M_PI + M_PI * i / (n - 1);  // upper half: the rock sits on the ground
    const double r = size * x.u(0.7, 1.1);
    pts.push_back({cx + std::cos(a) * r * 1.3, base + std::sin(a) * r * x.u(0.6, 0.9)});
  }
  const Rgb c = x.vary({0.5f, 0.48f, 0.45f}, 0.06, 0.2);
  cast_shadow(x, cx, base, size * 1.4, 0.35);
  x.canvas.fill(polygon(pts), Cls::rock, x.paint(Pattern::noise, scale(c, 1.2), scale(c, 0.7), std::max(1.5, size * 0.3)));
}

void draw_pole(Ctx& x, double cx, double base, double height) {
  const double r = std::max(0.6, height * 0.02);
  const Rgb c = x.vary({0.35f, 0.36f, 0.38f}, 0.05);
  const Paint p = x.paint(Pattern::vgradient, scale(c, 1.2), scale(c, 0.8), 1, 0, 0.03);
  x.canvas.fill(capsule({cx, base}, {cx, base - height}, r), Cls::pole, p);
  if (x.chance(0.6)) {  // an arm with a lamp
    const double d = x.chance(0.5) ? 1 : -1;
    x.canvas.fill(capsule({cx, base - height}, {cx + d * height * 0.15, base - height * 1.03}, r * 0.8), Cls::pole, p);
  }
}

void draw_flowers(Ctx& x, double cx, double base, double size) {
  static const Rgb petals[] = {{0.95f, 0.2f, 0.3f}, {0.98f, 0.85f, 0.1f}, {0.9f, 0.9f, 0.95f}, {0.65f, 0.3f, 0.85f},
                               {1.0f, 0.55f, 0.1f}};
  const Rgb c = x.vary(petals[x.below(5)], 0.05);
  const Paint p = x.paint(Pattern::noise, c, scale(c, 0.75), std::max(1.0, size * 0.2), 0, 0.05);
  const int n = 3 + x.below(8);
  for (int i = 0; i < n; ++i) {
    const double r = std::max(0.8, size * x.u(0.15, 0.3));
    x.canvas.fill(ellipse({cx + x.u(-1, 1) * size, base - x.u(0, 0.6) * size}, r, r * 0.85), Cls::flower, p);
  }
}

void draw_stairs(Ctx& x, double x0, double x1, double top, double base, int steps, Cls) {
  const Rgb c = x.vary({0.7f, 0.68f, 0.64f}, 0.08, 0.15);
  const double sh = (base - top) / steps, inset = (x1 - x0) * x.u(0.0, 0.25) / steps;
  for (int s = 0; s < steps; ++s) {
    // Step s (from the top): a tread (lit) over a riser (darker); lower steps are wider.
    const double y0 = top + s * sh, l = x0 + inset * (steps - s), r = x1 - inset * (steps - s);
    x.canvas.fill(rect(l, y0, r, y0 + sh * 0.4), Cls::stairs, x.paint(Pattern::noise, scale(c, 1.1), c, sh));
    x.canvas.fill(rect(l, y0 + sh * 0.4, r, y0 + sh + 0.01), Cls::stairs,
                  x.paint(Pattern::noise, scale(c, 0.7), scale(c, 0.6), sh));
  }
}

void draw_table(Ctx& x, double cx, double base, double width) {
  const Rgb c = x.vary({0.5f, 0.33f, 0.2f}, 0.08, 0.2);
  const Paint p = x.paint(Pattern::planks, c, scale(c, 0.7), std::max(1.5, width * 0.06));
  const double hgt = width * x.u(0.45, 0.6), top = base - hgt, leg = std::max(1.0, width * 0.04);
  cast_shadow(x, cx, base, width * 0.55, 0.3);
  for (double lx : {cx - width * 0.42, cx + width * 0.42})
    x.canvas.fill(rect(lx - leg, top, lx + leg, base), Cls::table, p);
  x.canvas.fill(polygon({{cx - width * 0.5, top}, {cx + width * 0.5, top}, {cx + width * 0.42, top - width * 0.12},
                         {cx - width * 0.42, top - width * 0.12}}),
                Cls::table, p);
  x.canvas.fill(rect(cx - width * 0.5, top, cx + width * 0.5, top + std::max(1.0, width * 0.05)), Cls::table,
                x.paint(Pattern::flat, scale(c, 0.7), c, 1));
}

void draw_chair(Ctx& x, double cx, double base, double height) {
  const Rgb c = x.vary(x.chance(0.5) ? Rgb{0.55f, 0.35f, 0.2f} : Rgb{0.3f, 0.45f, 0.55f}, 0.08, 0.2);
  const Paint p = x.paint(Pattern::noise, c, scale(c, 0.75), std::max(1.5, height * 0.1));
  const double w = height * 0.45, seat = base - height * 0.45, leg = std::max(0.8, height * 0.03);
  const double d = x.chance(0.5) ? 1 : -1;  // which side the back is on
  for (double lx : {cx - w / 2, cx + w / 2}) x.canvas.fill(rect(lx - leg, seat, lx + leg, base), Cls::chair, p);
  x.canvas.fill(rect(cx - w / 2 - leg, seat - height * 0.06, cx + w / 2 + leg, seat), Cls::chair, p);
  const double bx = cx + d * w / 2;
  x.canvas.fill(rect(bx - leg * 1.5, base - height, bx + leg * 1.5, seat), Cls::chair, p);
  x.canvas.fill(rect(std::min(bx, cx + d * w * 0.1), base - height, std::max(bx, cx + d * w * 0.1), base - height * 0.85),
                Cls::chair, p);
}

void draw_painting(Ctx& x, double x0, double y0, double x1, double y1) {
  const Rgb frame = x.vary({0.55f, 0.4f, 0.15f}, 0.1, 0.2);
  const double fw = std::max(0.8, (x1 - x0) * 0.06);
  x.canvas.fill(rect(x0, y0, x1, y1), Cls::painting, x.paint(Pattern::flat, frame, frame, 1, 0, 0.05));
  // The picture: a landscape-ish gradient with a few blobs of colour (all painting).
  const Rgb a = x.vary({float(x.u(0, 1)), float(x.u(0, 1)), float(x.u(0, 1))}, 0), b = x.vary({0.3f, 0.5f, 0.3f}, 0.2);
  Paint pp = x.paint(Pattern::vgradient, a, b, 1, 0, 0.05);
  pp.y0 = y0;
  pp.y1 = y1;
  x.canvas.fill(rect(x0 + fw, y0 + fw, x1 - fw, y1 - fw), Cls::painting, pp);
  const int n = x.below(4);
  for (int i = 0; i < n; ++i) {
    const double r = (x1 - x0) * x.u(0.08, 0.2);
    const Vec c{x.u(x0 + fw + r, std::max(x0 + fw + r, x1 - fw - r)), x.u(y0 + fw + r, std::max(y0 + fw + r, y1 - fw - r))};
    x.canvas.fill(ellipse(c, r, r * x.u(0.5, 1)), Cls::painting,
                  x.paint(Pattern::flat, x.vary({float(x.u(0, 1)), float(x.u(0, 1)), float(x.u(0, 1))}, 0), {}, 1));
  }
}

}  // namespace rass::scenes
