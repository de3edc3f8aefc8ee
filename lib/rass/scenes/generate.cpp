#include "rass/scenes/generate.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

#include "rass/core/error.hpp"
#include "rass/scenes/objects.hpp"

namespace rass::scenes {

Kind parse_kind(const std::string& name) {
  if (name == "mixed") return Kind::mixed;
  if (name == "street") return Kind::street;
  if (name == "landscape") return Kind::landscape;
  if (name == "room") return Kind::room;
  throw_usage("unknown scene kind '" + name + "' (mixed, street, landscape, room)");
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::mixed: return "mixed";
    case Kind::street: return "street";
    case Kind::landscape: return "landscape";
    case Kind::room: return "room";
  }
  return "?";
}

namespace {

// Objects standing on the ground, drawn far to near (painter's order by the
// row of their base), so nearer objects occlude farther ones.
struct Placed {
  double base;
  std::function<void()> draw;
};
void draw_in_depth_order(std::vector<Placed>& objs) {
  std::stable_sort(objs.begin(), objs.end(), [](const Placed& a, const Placed& b) { return a.base < b.base; });
  for (Placed& o : objs) o.draw();
}

// Perspective on a ground plane seen from eye height: a point at row y below
// the horizon is at a depth proportional to 1 / (y - horizon), so sizes grow
// linearly with y - horizon; `near` is the size at the bottom row.
double size_at(double y, double horizon, double bottom, double near) {
  return near * std::max(0.02, (y - horizon) / (bottom - horizon));
}

// A row on the ground between the horizon and the bottom, biased to the near half
// so near objects (large) and far ones (small) both occur.
double ground_row(Ctx& x, double horizon) { return horizon + (x.h - horizon) * std::pow(x.u(0.03, 1.0), 1.4); }

double street(Ctx& x) {
  const double W = x.w, H = x.h, horizon = H * x.u(0.3, 0.55);
  draw_sky(x, horizon + 1, x.chance(0.7));
  if (x.chance(0.3)) draw_mountains(x, horizon);
  // A row of buildings standing on the horizon.
  for (double bx = -x.u(0, 0.2) * W; bx < W;) {
    const double bw = W * x.u(0.12, 0.45);
    if (x.chance(0.85)) draw_building(x, bx, bx + bw, horizon - H * x.u(0.12, 0.45), horizon + 1);
    bx += bw + (x.chance(0.3) ? W * x.u(0.02, 0.1) : 0);
  }
  // Ground: pavement everywhere, grass verges, the road converging to a vanishing point.
  const Rgb pave = x.vary({0.62f, 0.6f, 0.57f}, 0.05);
  const double vx = W * x.u(0.25, 0.75), far = W * 0.01, near = W * x.u(0.3, 0.6);
  x.canvas.fill(rect(0, horizon, W, H), Cls::sidewalk,
                x.ground(x.paint(Pattern::tiles, pave, scale(pave, 0.75), H * 0.08), horizon, vx));
  auto road_edge = [&](double y, double side) { return vx + side * (far + (near - far) * (y - horizon) / (H - horizon)); };
  if (x.chance(0.5)) {
    const Rgb g = x.vary({0.3f, 0.55f, 0.2f}, 0.06);
    // Grass blades stay upright in the image (a ground mapping would fan them out from the vanishing point).
    const Paint gp = x.paint(Pattern::blades, scale(g, 0.7), scale(g, 1.25), H * 0.02);
    const double k = x.u(1.3, 1.8);  // verge beyond the pavement
    x.canvas.fill(polygon({{vx - far * k * 3, horizon}, {-W * 2, H + k * near}, {-W * 2, horizon}}), Cls::grass, gp);
    x.canvas.fill(polygon({{vx + far * k * 3, horizon}, {W * 3, H + k * near}, {W * 3, horizon}}), Cls::grass, gp);
  }
  const Rgb asph = x.vary({0.3f, 0.3f, 0.32f}, 0.03, 0.2);
  x.canvas.fill(polygon({{road_edge(horizon, -1), horizon}, {road_edge(horizon, 1), horizon}, {road_edge(H, 1), H},
                         {road_edge(H, -1), H}}),
                Cls::road, x.ground(x.paint(Pattern::noise, asph, scale(asph, 1.3), H * 0.04), horizon, vx));
  // Dashed centre line (road): dashes shrink with depth.
  const Paint mark = x.paint(Pattern::flat, {0.92f, 0.9f, 0.8f}, {}, 1, 0, 0.05);
  for (double t = 0.05; t < 1; t += 0.16) {
    const double ya = horizon + (H - horizon) * t * t, yb = horizon + (H - horizon) * std::min(1.0, (t + 0.07) * (t + 0.07));
    const double wa = (road_edge(ya, 1) - vx) * 0.04, wb = (road_edge(yb, 1) - vx) * 0.04;
    x.canvas.fill(polygon({{vx - wa, ya}, {vx + wa, ya}, {vx + wb, yb}, {vx - wb, yb}}), Cls::road, mark);
  }
  std::vector<Placed> objs;
  const int cars = x.below(4), people = x.below(6), trees = x.below(5), poles = x.below(3);
  for (int i = 0; i < cars; ++i) {
    const double y = ground_row(x, horizon), l = road_edge(y, -1), r = road_edge(y, 1);
    const double cw = size_at(y, horizon, H, W * 0.5);
    const double cx = x.u(l + cw * 0.3, std::max(l + cw * 0.3, r - cw * 0.3));
    objs.push_back({y, [&x, cx, y, cw] { draw_car(x, cx, y, cw); }});
  }
  auto off_road = [&](double y, double margin) {
    const double l = road_edge(y, -1), r = road_edge(y, 1);
    return x.chance(0.5) ? x.u(std::min(-margin, l - margin), l - margin) : x.u(r + margin, std::max(W + margin, r + margin));
  };
  for (int i = 0; i < people; ++i) {
    const double y = ground_row(x, horizon), ph = size_at(y, horizon, H, H * 0.5);
    const double cx = x.chance(0.2) ? x.u(0, W) : off_road(y, ph * 0.15);  // some cross the road
    objs.push_back({y, [&x, cx, y, ph] { draw_person(x, cx, y, ph); }});
  }
  for (int i = 0; i < trees; ++i) {
    const double y = ground_row(x, horizon), th = size_at(y, horizon, H, H * 0.85), cx = off_road(y, th * 0.3);
    objs.push_back({y, [&x, cx, y, th] { draw_tree(x, cx, y, th); }});
  }
  for (int i = 0; i < poles; ++i) {
    const double y = ground_row(x, horizon), ph = size_at(y, horizon, H, H * 1.2), cx = off_road(y, ph * 0.05);
    objs.push_back({y, [&x, cx, y, ph] { draw_pole(x, cx, y, ph); }});
  }
  if (x.chance(0.3)) {
    const double y = horizon + (H - horizon) * x.u(0.1, 0.5), fh = size_at(y, horizon, H, H * 0.25);
    const bool left = x.chance(0.5);
    const double l = left ? 0 : road_edge(y, 1) + fh, r = left ? road_edge(y, -1) - fh : W;
    if (r > l) objs.push_back({y, [&x, l, r, y, fh] { draw_fence(x, l, r, y, fh); }});
  }
  draw_in_depth_order(objs);
  return horizon;
}

double landscape(Ctx& x) {
  const double W = x.w, H = x.h, horizon = H * x.u(0.3, 0.6);
  draw_sky(x, horizon + 1, x.chance(0.8));
  if (x.chance(0.8)) draw_mountains(x, horizon);
  const Rgb g = x.vary(x.chance(0.25) ? Rgb{0.6f, 0.58f, 0.3f} : Rgb{0.3f, 0.55f, 0.2f}, 0.06);
  const Paint gp = x.paint(Pattern::blades, scale(g, 0.7), scale(g, 1.2), H * 0.02);  // upright blades
  x.canvas.fill(rect(0, horizon, W, H), Cls::grass, gp);
  if (x.chance(0.6)) {
    // A lake: a band from the horizon, its shore a wobbly line.
    const double depth = (H - horizon) * x.u(0.2, 0.7), x0 = x.u(-0.5, 0.3) * W, x1 = x.u(0.6, 1.5) * W;
    const uint64_t s = x.next_seed();
    std::vector<Vec> pts = {{x0, horizon}, {x1, horizon}};
    for (int i = 0; i <= 16; ++i) {
      const double t = 1 - double(i) / 16;
      pts.push_back({x0 + (x1 - x0) * t, horizon + depth * (0.5 + 0.7 * fbm1(t * 3, s, 3)) * std::sin(M_PI * (0.1 + 0.8 * t))});
    }
    const Rgb wc = x.vary({0.25f, 0.42f, 0.6f}, 0.06, 0.2);
    x.canvas.fill(polygon(pts), Cls::water,
                  x.ground(x.paint(Pattern::waves, wc, {0.75f, 0.85f, 0.95f}, H * 0.05), horizon, W / 2));
  }
  if (x.chance(0.35)) {
    // A dirt path (labelled road) winding towards the horizon.
    const double vx = W * x.u(0.2, 0.8), nx = W * x.u(0.2, 0.8), nw = W * x.u(0.08, 0.25);
    const Rgb dirt = x.vary({0.55f, 0.45f, 0.32f}, 0.05);
    x.canvas.fill(polygon({{vx - 1, horizon + 1}, {vx + 1, horizon + 1}, {nx + nw, H}, {nx - nw, H}}), Cls::road,
                  x.ground(x.paint(Pattern::noise, dirt, scale(dirt, 0.8), H * 0.04), horizon, nx));
  }
  std::vector<Placed> objs;
  if (x.chance(0.35)) {  // a house in the distance
    const double y = horizon + (H - horizon) * x.u(0.02, 0.2), bw = size_at(y, horizon, H, W * 0.9);
    const double cx = x.u(0, W), bh = bw * x.u(0.5, 0.9);
    objs.push_back({y, [&x, cx, y, bw, bh] { draw_building(x, cx - bw / 2, cx + bw / 2, y - bh, y); }});
  }
  const int trees = x.below(9), rocks = x.below(5), flowers = x.below(6), people = x.below(3);
  for (int i = 0; i < trees; ++i) {
    const double y = ground_row(x, horizon), th = size_at(y, horizon, H, H * 0.9), cx = x.u(-0.1, 1.1) * W;
    objs.push_back({y, [&x, cx, y, th] { draw_tree(x, cx, y, th); }});
  }
  for (int i = 0; i < rocks; ++i) {
    const double y = ground_row(x, horizon), rs = size_at(y, horizon, H, H * 0.2), cx = x.u(0, W);
    objs.push_back({y, [&x, cx, y, rs] { draw_rock(x, cx, y, rs); }});
  }
  for (int i = 0; i < flowers; ++i) {
    const double y = ground_row(x, horizon), fs = size_at(y, horizon, H, H * 0.08), cx = x.u(0, W);
    objs.push_back({y, [&x, cx, y, fs] { draw_flowers(x, cx, y, fs); }});
  }
  for (int i = 0; i < people; ++i) {
    const double y = ground_row(x, horizon), ph = size_at(y, horizon, H, H * 0.5), cx = x.u(0, W);
    objs.push_back({y, [&x, cx, y, ph] { draw_person(x, cx, y, ph); }});
  }
  if (x.chance(0.3)) {
    const double y = horizon + (H - horizon) * x.u(0.3, 0.9), fh = size_at(y, horizon, H, H * 0.25);
    const double l = x.u(-0.2, 0.5) * W, r = l + x.u(0.3, 1.0) * W;
    objs.push_back({y, [&x, l, r, y, fh] { draw_fence(x, l, r, y, fh); }});
  }
  if (x.chance(0.15)) {
    const double y = ground_row(x, horizon), ph = size_at(y, horizon, H, H * 1.2), cx = x.u(0, W);
    objs.push_back({y, [&x, cx, y, ph] { draw_pole(x, cx, y, ph); }});
  }
  draw_in_depth_order(objs);
  return horizon;
}

void room(Ctx& x) {
  const double W = x.w, H = x.h;
  // The back wall, and the four planes of a box seen from inside.
  const double bx0 = W * x.u(0.1, 0.35), bx1 = W * x.u(0.65, 0.9), by0 = H * x.u(0.1, 0.3), by1 = H * x.u(0.5, 0.72);
  const Rgb wc = x.vary({0.85f, 0.8f, 0.7f}, 0.12, 0.1);
  const Paint wall = x.chance(0.3) ? x.paint(Pattern::stripes, wc, scale(wc, 0.88), H * x.u(0.02, 0.05), M_PI / 2, 0.04)
                                   : x.paint(Pattern::noise, wc, scale(wc, 0.92), H * 0.1, 0, 0.04);
  x.canvas.fill(rect(0, 0, W, H), Cls::wall, wall);
  x.canvas.shade(polygon({{0, 0}, {bx0, by0}, {bx0, by1}, {0, H}}), 0.8);
  x.canvas.shade(polygon({{W, 0}, {bx1, by0}, {bx1, by1}, {W, H}}), 0.88);
  const Rgb cc = x.vary({0.92f, 0.92f, 0.9f}, 0.04);
  x.canvas.fill(polygon({{0, 0}, {W, 0}, {bx1, by0}, {bx0, by0}}), Cls::ceiling,
                x.paint(Pattern::noise, cc, scale(cc, 0.9), H * 0.1, 0, 0.03));
  const Rgb fc = x.vary(x.chance(0.5) ? Rgb{0.6f, 0.42f, 0.25f} : Rgb{0.7f, 0.7f, 0.68f}, 0.08, 0.15);
  const double eye = by1 - (by1 - by0) * 0.6;  // the horizon of the floor's perspective, above the back wall's foot
  const Paint floor = x.ground(x.chance(0.5) ? x.paint(Pattern::planks, fc, scale(fc, 0.7), H * 0.06, x.u(-0.2, 0.2))
                                             : x.paint(Pattern::tiles, fc, scale(fc, 0.6), H * 0.12, x.u(-0.3, 0.3)),
                               eye, (bx0 + bx1) / 2);
  x.canvas.fill(polygon({{bx0, by1}, {bx1, by1}, {W, H}, {0, H}}), Cls::floor, floor);
  // Things on the back wall.
  const double bw = bx1 - bx0, bh = by1 - by0;
  double free_x = bx0 + bw * 0.05;
  if (x.chance(0.7)) {
    const double ww = bw * x.u(0.2, 0.35);
    draw_window(x, free_x + bw * 0.03, by0 + bh * 0.15, free_x + bw * 0.03 + ww, by0 + bh * 0.65, Cls::wall);
    free_x += ww + bw * 0.08;
  }
  if (x.chance(0.6) && free_x < bx1 - bw * 0.2) {
    const double dw = bw * x.u(0.12, 0.2);
    const double dx = x.u(free_x, bx1 - dw - bw * 0.02);
    draw_door(x, dx, by0 + bh * 0.2, dx + dw, by1);
  }
  const int paintings = x.below(3);
  for (int i = 0; i < paintings; ++i) {
    const double pw = bw * x.u(0.1, 0.25), ph = pw * x.u(0.6, 1.3), px = x.u(bx0, bx1 - pw), py = by0 + bh * x.u(0.05, 0.3);
    draw_painting(x, px, py, px + pw, py + ph);
  }
  if (x.chance(0.3)) {  // a side window in perspective
    const double t0 = x.u(0.15, 0.4), t1 = t0 + x.u(0.2, 0.4);
    auto at = [&](double t, double f) { return Vec{W + (bx1 - W) * t, (0 + (by0 - 0) * t) * (1 - f) + (H + (by1 - H) * t) * f}; };
    x.canvas.fill(polygon({at(t0, 0.25), at(t1, 0.25), at(t1, 0.6), at(t0, 0.6)}), Cls::windowpane,
                  x.paint(Pattern::vgradient, {0.8f, 0.9f, 1.0f}, {0.5f, 0.65f, 0.8f}, 1, 0, 0.02));
  }
  // The floor: a rug, then furniture and people far to near.
  if (x.chance(0.5)) {
    const double ry = by1 + (H - by1) * x.u(0.3, 0.7), rw = size_at(ry, by1 - bh * 0.6, H, W * 0.6);
    const Rgb rc = x.vary({float(x.u(0.3, 0.9)), float(x.u(0.1, 0.5)), float(x.u(0.1, 0.5))}, 0.05);
    const double cx = x.u(0.3, 0.7) * W;
    const Shape rug = x.chance(0.5) ? ellipse({cx, ry}, rw * 0.5, rw * 0.15)
                                    : polygon({{cx - rw * 0.4, ry - rw * 0.15}, {cx + rw * 0.4, ry - rw * 0.15},
                                               {cx + rw * 0.5, ry + rw * 0.15}, {cx - rw * 0.5, ry + rw * 0.15}});
    x.canvas.fill(rug, Cls::rug, x.paint(Pattern::stripes, rc, scale(rc, 0.6), rw * 0.05, 0.0));
  }
  std::vector<Placed> objs;
  if (x.chance(0.7)) {
    const double y = x.u(by1 + 2, H * 0.95), tw = size_at(y, eye, H, W * 0.55), cx = x.u(0.25, 0.75) * W;
    objs.push_back({y, [&x, cx, y, tw] {
                      draw_table(x, cx, y, tw);
                      if (x.chance(0.3)) draw_flowers(x, cx, y - tw * 0.6, tw * 0.12);
                    }});
    const int chairs = x.below(3);
    for (int i = 0; i < chairs; ++i) {
      const double cy = y + x.u(-0.05, 0.1) * H, ch = size_at(cy, eye, H, H * 0.45);
      const double ccx = cx + (i == 0 ? -1 : 1) * tw * x.u(0.5, 0.8);
      objs.push_back({cy, [&x, ccx, cy, ch] { draw_chair(x, ccx, cy, ch); }});
    }
  }
  if (x.chance(0.4)) {
    const double y = x.u(by1 + 2, H), ph = size_at(y, eye, H, H * 0.75), cx = x.u(0, W);
    objs.push_back({y, [&x, cx, y, ph] { draw_person(x, cx, y, ph); }});
  }
  if (x.chance(0.25)) {  // a staircase against the back wall
    const bool left = x.chance(0.5);
    const double sw = bw * x.u(0.15, 0.3), sx0 = left ? bx0 : bx1 - sw;
    objs.push_back({by1, [&x, sx0, sw, by0, by1] { draw_stairs(x, sx0, sx0 + sw, by0 + (by1 - by0) * 0.2, by1, 6 + x.below(6), Cls::wall); }});
  }
  draw_in_depth_order(objs);
  // Light from a window or a lamp: a soft bright spot.
  if (x.chance(0.5)) x.canvas.shade(ellipse({x.u(0, W), x.u(0, H)}, W * 0.5, H * 0.5), x.u(1.1, 1.3), W * 0.4);
}

}  // namespace

std::string caption_of(Kind kind, const std::vector<Cls>& tags) {
  std::string phrase;
  auto has = [&](Cls c) { return std::find(tags.begin(), tags.end(), c) != tags.end(); };
  switch (kind) {
    case Kind::street: phrase = "a city street"; break;
    case Kind::landscape: phrase = has(Cls::water) ? "a lake landscape" : has(Cls::mountain) ? "a mountain landscape" : "a meadow"; break;
    case Kind::room: phrase = "a room"; break;
    case Kind::mixed: phrase = "a scene"; break;
  }
  std::string text = "a photo of " + phrase + " with ";
  const size_t n = std::min<size_t>(tags.size(), 6);
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) text += i + 1 == n ? " and " : ", ";
    text += class_name(tags[i]);
  }
  return text;
}

std::vector<std::string> scene_words() {
  // caption_of's fixed words; keep in step with it (tests/scenes checks that
  // every word of many generated captions is listed).
  std::vector<std::string> w = {"a", "photo", "of", "city", "street", "lake", "landscape", "mountain", "meadow",
                                "room", "scene", "with", "and"};
  for (Cls c : all_classes()) w.push_back(class_name(c));
  std::sort(w.begin(), w.end());
  w.erase(std::unique(w.begin(), w.end()), w.end());
  return w;
}

Scene generate_scene(uint64_t seed, const std::string& key, const SceneOptions& opt) {
  if (opt.width < kMinSide || opt.width > kMaxSide || opt.height < kMinSide || opt.height > kMaxSide)
    throw_usage("scene size " + std::to_string(opt.width) + "x" + std::to_string(opt.height) + " is outside " +
                std::to_string(kMinSide) + ".." + std::to_string(kMaxSide) + " per side");
  Rng rng(seed, key, "scene");
  Canvas canvas(opt.width, opt.height);
  canvas.record = opt.record;
  Ctx x{canvas, rng, stream_seed(seed, key, "texture"), opt.width, opt.height};
  Scene s;
  s.kind = opt.kind;
  if (s.kind == Kind::mixed) s.kind = Kind(1 + rng.below(3));
  double horizon = -1;
  switch (s.kind) {
    case Kind::street: horizon = street(x); break;
    case Kind::landscape: horizon = landscape(x); break;
    default: room(x); break;
  }
  // Outdoors, sometimes haze or mist along the horizon.
  if (horizon >= 0 && x.chance(0.4))
    canvas.haze(horizon, opt.height * x.u(0.05, 0.3), x.u(0.15, 0.6), x.vary({0.8f, 0.82f, 0.85f}, 0.05, 0.1));
  // Global light: white balance, exposure, a gradient across the frame, a tone curve.
  if (x.chance(0.5)) {
    const double warm = x.u(-0.12, 0.12);
    canvas.tint({float(1 + warm), 1.0f, float(1 - warm)});
  }
  canvas.light(x.u(0.6, 1.15), x.u(0, 0.35), x.u(0, 2 * M_PI), x.u(0.8, 1.25));
  s.image = canvas.image(0.012, stream_seed(seed, key, "grain"));
  s.labels = canvas.labels();
  std::vector<uint64_t> count;
  s.tags = visible_classes(s.labels, &count);
  for (Cls c : s.tags) s.pixels.push_back(count[class_label(c)]);
  s.caption = caption_of(s.kind, s.tags);
  return s;
}

std::vector<Cls> visible_classes(const Image& labels, std::vector<uint64_t>* count_out) {
  std::vector<uint64_t> count(256, 0);
  for (uint8_t v : labels.data) ++count[v];
  std::vector<Cls> vis;
  for (Cls c : all_classes())
    if (count[class_label(c)] > 0) vis.push_back(c);
  // Largest area first, ties by label value: the order rass-caption-map lists a label map's classes in.
  std::sort(vis.begin(), vis.end(), [&](Cls a, Cls b) {
    const uint64_t na = count[class_label(a)], nb = count[class_label(b)];
    return na != nb ? na > nb : class_label(a) < class_label(b);
  });
  if (count_out) *count_out = std::move(count);
  return vis;
}

std::string tags_line(const std::vector<Cls>& tags) {
  std::string line;
  for (Cls c : tags) line += (line.empty() ? "" : ", ") + class_name(c);
  return line;
}

std::string tags_line(const Scene& s) { return tags_line(s.tags); }

}  // namespace rass::scenes
