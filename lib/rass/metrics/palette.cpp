#include "rass/metrics/palette.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include "rass/core/error.hpp"

namespace rass::metrics {

namespace {

// printable ASCII 32..126, 10 rows of 6 bits each (bit 5 = leftmost column)
constexpr uint8_t kFont[95][10] = {
#include "rass/metrics/font_6x10.inc"
};
constexpr int kGlyphW = 6, kGlyphH = 10;

void fill_rect(Image& img, int x0, int y0, int w, int h, const Rgb& c) {
  for (int y = std::max(0, y0); y < std::min(img.height, y0 + h); ++y)
    for (int x = std::max(0, x0); x < std::min(img.width, x0 + w); ++x)
      for (int k = 0; k < 3; ++k) img.u8()[(size_t(y) * img.width + x) * 3 + k] = c[k];
}

void draw_text(Image& img, int x0, int y0, const std::string& s, const Rgb& c) {
  int x = x0;
  for (unsigned char ch : s) {
    const int g = (ch >= 32 && ch <= 126) ? ch - 32 : '?' - 32;
    for (int y = 0; y < kGlyphH; ++y)
      for (int b = 0; b < kGlyphW; ++b)
        if (kFont[g][y] >> (kGlyphW - 1 - b) & 1) fill_rect(img, x + b, y0 + y, 1, 1, c);
    x += kGlyphW;
  }
}

uint32_t label_at(const Image& labels, size_t i) { return labels.depth == 16 ? labels.u16()[i] : labels.u8()[i]; }

}  // namespace

const std::vector<Rgb>& ade20k_palette() {
  // mmsegmentation ADE20KDataset.PALETTE (METAINFO['palette']), class order.
  static const std::vector<Rgb> p = {
      {120, 120, 120}, {180, 120, 120}, {6, 230, 230}, {80, 50, 50}, {4, 200, 3}, {120, 120, 80},
      {140, 140, 140}, {204, 5, 255}, {230, 230, 230}, {4, 250, 7}, {224, 5, 255}, {235, 255, 7},
      {150, 5, 61}, {120, 120, 70}, {8, 255, 51}, {255, 6, 82}, {143, 255, 140}, {204, 255, 4},
      {255, 51, 7}, {204, 70, 3}, {0, 102, 200}, {61, 230, 250}, {255, 6, 51}, {11, 102, 255},
      {255, 7, 71}, {255, 9, 224}, {9, 7, 230}, {220, 220, 220}, {255, 9, 92}, {112, 9, 255},
      {8, 255, 214}, {7, 255, 224}, {255, 184, 6}, {10, 255, 71}, {255, 41, 10}, {7, 255, 255},
      {224, 255, 8}, {102, 8, 255}, {255, 61, 6}, {255, 194, 7}, {255, 122, 8}, {0, 255, 20},
      {255, 8, 41}, {255, 5, 153}, {6, 51, 255}, {235, 12, 255}, {160, 150, 20}, {0, 163, 255},
      {140, 140, 140}, {250, 10, 15}, {20, 255, 0}, {31, 255, 0}, {255, 31, 0}, {255, 224, 0},
      {153, 255, 0}, {0, 0, 255}, {255, 71, 0}, {0, 235, 255}, {0, 173, 255}, {31, 0, 255},
      {11, 200, 200}, {255, 82, 0}, {0, 255, 245}, {0, 61, 255}, {0, 255, 112}, {0, 255, 133},
      {255, 0, 0}, {255, 163, 0}, {255, 102, 0}, {194, 255, 0}, {0, 143, 255}, {51, 255, 0},
      {0, 82, 255}, {0, 255, 41}, {0, 255, 173}, {10, 0, 255}, {173, 255, 0}, {0, 255, 153},
      {255, 92, 0}, {255, 0, 255}, {255, 0, 245}, {255, 0, 102}, {255, 173, 0}, {255, 0, 20},
      {255, 184, 184}, {0, 31, 255}, {0, 255, 61}, {0, 71, 255}, {255, 0, 204}, {0, 255, 194},
      {0, 255, 82}, {0, 10, 255}, {0, 112, 255}, {51, 0, 255}, {0, 194, 255}, {0, 122, 255},
      {0, 255, 163}, {255, 153, 0}, {0, 255, 10}, {255, 112, 0}, {143, 255, 0}, {82, 0, 255},
      {163, 255, 0}, {255, 235, 0}, {8, 184, 170}, {133, 0, 255}, {0, 255, 92}, {184, 0, 255},
      {255, 0, 31}, {0, 184, 255}, {0, 214, 255}, {255, 0, 112}, {92, 255, 0}, {0, 224, 255},
      {112, 224, 255}, {70, 184, 160}, {163, 0, 255}, {153, 0, 255}, {71, 255, 0}, {255, 0, 163},
      {255, 204, 0}, {255, 0, 143}, {0, 255, 235}, {133, 255, 0}, {255, 0, 235}, {245, 0, 255},
      {255, 0, 122}, {255, 245, 0}, {10, 190, 212}, {214, 255, 0}, {0, 204, 255}, {20, 0, 255},
      {255, 255, 0}, {0, 153, 255}, {0, 41, 255}, {0, 255, 204}, {41, 0, 255}, {41, 255, 0},
      {173, 0, 255}, {0, 245, 255}, {71, 0, 255}, {122, 0, 255}, {0, 255, 184}, {0, 92, 255},
      {184, 255, 0}, {0, 133, 255}, {255, 214, 0}, {25, 194, 194}, {102, 255, 0}, {92, 0, 255},
  };
  return p;
}

Rgb voc_color(uint32_t k) {
  // VOCdevkit labelcolormap: bits 0, 1, 2 of the index go to the top bits of R, G, B, three at a time.
  uint32_t r = 0, g = 0, b = 0, c = k;
  for (int j = 0; j < 8; ++j) {
    r |= ((c >> 0) & 1) << (7 - j);
    g |= ((c >> 1) & 1) << (7 - j);
    b |= ((c >> 2) & 1) << (7 - j);
    c >>= 3;
  }
  return {uint8_t(r), uint8_t(g), uint8_t(b)};
}

std::vector<Rgb> class_palette(size_t classes) {
  if (classes == 150) return ade20k_palette();
  std::vector<Rgb> p(classes);
  for (size_t k = 0; k < classes; ++k) p[k] = voc_color(uint32_t(k));
  return p;
}

Image colorize(const Image& labels, const std::vector<Rgb>& palette) {
  Image out(labels.width, labels.height, 3);
  const size_t n = size_t(labels.width) * labels.height;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t l = label_at(labels, i);
    const Rgb c = l < palette.size() ? palette[l] : Rgb{0, 0, 0};
    std::copy(c.begin(), c.end(), out.u8() + i * 3);
  }
  return out;
}

Image overlay(const Image& rgb, const Image& labels, const std::vector<Rgb>& palette, const std::vector<std::string>& names,
              double alpha, size_t max_entries) {
  if (rgb.channels != 3 || rgb.depth != 8 || rgb.width != labels.width || rgb.height != labels.height)
    throw_runtime("overlay: the image must be 8-bit RGB of the label map's size");
  Image out = rgb;
  const size_t n = size_t(rgb.width) * rgb.height;
  std::map<uint32_t, size_t> area;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t l = label_at(labels, i);
    if (l >= palette.size()) continue;
    ++area[l];
    for (int k = 0; k < 3; ++k)
      out.u8()[i * 3 + k] = uint8_t(std::lround((1 - alpha) * rgb.u8()[i * 3 + k] + alpha * palette[l][k]));
  }
  std::vector<std::pair<size_t, uint32_t>> present;
  for (const auto& [l, a] : area) present.push_back({a, l});
  std::stable_sort(present.begin(), present.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  if (present.size() > max_entries) present.resize(max_entries);
  // Legend: a dark box, then per class a swatch and "index name".
  const int line = kGlyphH + 2;
  size_t widest = 0;
  std::vector<std::string> texts;
  for (const auto& [a, l] : present) {
    std::string t = std::to_string(l) + (l < names.size() ? " " + names[l] : "");
    while (!t.empty() && t.back() == ' ') t.pop_back();
    texts.push_back(t);
    widest = std::max(widest, t.size());
  }
  if (present.empty()) return out;
  const int box_w = 4 + 10 + 4 + int(widest) * kGlyphW + 4, box_h = 4 + int(present.size()) * line + 2;
  fill_rect(out, 0, 0, box_w, box_h, {0, 0, 0});
  for (size_t i = 0; i < present.size(); ++i) {
    const int y = 4 + int(i) * line;
    fill_rect(out, 4, y, 10, kGlyphH, palette[present[i].second]);
    draw_text(out, 18, y, texts[i], {255, 255, 255});
  }
  return out;
}

}  // namespace rass::metrics
