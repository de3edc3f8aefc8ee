#include "rass/model/sam_prompts.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>

#include "rass/core/decimal.hpp"
#include "rass/core/error.hpp"
#include "rass/core/rng.hpp"

namespace rass::model {

namespace {

// Comma-separated finite numbers, exactly `n` or `m` of them.
std::vector<double> sam_numbers(const std::string& s, const std::string& what, size_t n, size_t m) {
  std::vector<double> v;
  size_t a = 0;
  while (true) {
    const size_t b = s.find(',', a);
    const std::string part = s.substr(a, b == std::string::npos ? std::string::npos : b - a);
    double x = 0;
    bool too_large = false;
    if (!parse_decimal(part, &x, &too_large))
      throw_usage(what + " '" + s + "': '" + part + (too_large ? "' is out of range" : "' is not a decimal number"));
    v.push_back(x);
    if (b == std::string::npos) break;
    a = b + 1;
  }
  if (v.size() != n && v.size() != m)
    throw_usage(what + " '" + s + "': expected " + std::to_string(n) + (m != n ? " or " + std::to_string(m) : "") +
                " comma-separated numbers");
  return v;
}

}  // namespace

std::pair<std::array<double, 2>, int> parse_sam_point(const std::string& s) {
  const std::vector<double> v = sam_numbers(s, "--point", 2, 3);
  int label = 1;
  if (v.size() == 3) {
    if (v[2] != 0 && v[2] != 1) throw_usage("--point '" + s + "': the label is 1 (foreground) or 0 (background)");
    label = int(v[2]);
  }
  return {{v[0], v[1]}, label};
}

std::array<double, 4> parse_sam_box(const std::string& s) {
  const std::vector<double> v = sam_numbers(s, "--box", 4, 4);
  if (v[0] > v[2] || v[1] > v[3]) throw_usage("--box '" + s + "': expected X0,Y0,X1,Y1 with X0 <= X1 and Y0 <= Y1");
  return {v[0], v[1], v[2], v[3]};
}

SamPromptKind parse_sam_prompt_kind(const std::string& s) {
  if (s == "box") return SamPromptKind::box;
  if (s == "points") return SamPromptKind::points;
  if (s == "box+points") return SamPromptKind::box_points;
  throw_usage("--prompt-type " + s + ": expected box, points or box+points");
}

std::vector<uint32_t> sam_sample_pixels(std::vector<uint32_t>& px, int n, Rng& rng) {
  const size_t take = std::min(px.size(), size_t(n));
  if (px.size() >= size_t(n))
    for (size_t k = 0; k < take; ++k) std::swap(px[k], px[k + rng.below(px.size() - k)]);
  std::vector<uint32_t> out;
  for (int k = 0; k < n; ++k) out.push_back(px[std::min(size_t(k), take - 1)]);  // too few: the last one again
  return out;
}

std::vector<SamObject> sam_objects_from_labels(const Image& labels, const SamLabelPrompts& how, const std::string& key,
                                               const std::string& name) {
  if (labels.channels != 1)
    throw_bad_input(name, "has " + std::to_string(labels.channels) +
                              " channels; a label map for --prompts-from is single-channel (class or instance ids)");
  const int w = labels.width, h = labels.height;
  auto at = [&](size_t i) { return labels.depth == 16 ? int(labels.u16()[i]) : int(labels.u8()[i]); };
  struct Extent {
    int x0, y0, x1, y1;
    std::vector<uint32_t> pixels;  // indices, row-major (filled only when points are drawn)
  };
  const bool want_points = how.kind != SamPromptKind::box;
  std::map<int, Extent> found;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const size_t i = size_t(y) * w + x;
      const int v = at(i);
      if (std::find(how.skip.begin(), how.skip.end(), v) != how.skip.end()) continue;
      auto it = found.find(v);
      if (it == found.end()) it = found.emplace(v, Extent{x, y, x, y, {}}).first;
      Extent& e = it->second;
      e.x0 = std::min(e.x0, x), e.y0 = std::min(e.y0, y), e.x1 = std::max(e.x1, x), e.y1 = std::max(e.y1, y);
      if (want_points) e.pixels.push_back(uint32_t(i));
    }
  std::vector<SamObject> out;
  for (auto& [v, e] : found) {
    SamObject o;
    o.label = v;
    if (how.kind != SamPromptKind::points) o.box = std::array<double, 4>{double(e.x0), double(e.y0), double(e.x1), double(e.y1)};
    if (want_points) {
      Rng rng(how.seed, key, "sam-points-" + std::to_string(v));
      for (const uint32_t i : sam_sample_pixels(e.pixels, how.points, rng)) {
        o.points.push_back({double(i % uint32_t(w)), double(i / uint32_t(w))});
        o.point_labels.push_back(1);
      }
    }
    out.push_back(std::move(o));
  }
  return out;
}

void check_sam_objects(const std::vector<SamObject>& objects, int width, int height, const std::string& what) {
  auto inside = [&](double x, double y) { return x >= 0 && y >= 0 && x <= width && y <= height; };
  for (const SamObject& o : objects) {
    for (const auto& p : o.points)
      if (!inside(p[0], p[1]))
        throw_usage(what + ": point (" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ") lies outside the " +
                    std::to_string(width) + "x" + std::to_string(height) + " image");
    if (o.box && (!inside((*o.box)[0], (*o.box)[1]) || !inside((*o.box)[2], (*o.box)[3])))
      throw_usage(what + ": box (" + std::to_string((*o.box)[0]) + ", " + std::to_string((*o.box)[1]) + ", " +
                  std::to_string((*o.box)[2]) + ", " + std::to_string((*o.box)[3]) + ") reaches outside the " +
                  std::to_string(width) + "x" + std::to_string(height) + " image");
  }
}

}  // namespace rass::model
