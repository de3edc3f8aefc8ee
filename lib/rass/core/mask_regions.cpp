#include "rass/core/mask_regions.hpp"

#include <cstddef>

namespace rass {

namespace {

int32_t find_root(std::vector<int32_t>& parent, int32_t x) {
  while (parent[size_t(x)] != x) {
    parent[size_t(x)] = parent[size_t(parent[size_t(x)])];  // path halving
    x = parent[size_t(x)];
  }
  return x;
}

}  // namespace

int label_regions_8(const uint8_t* fg, int w, int h, std::vector<int32_t>& labels, std::vector<int64_t>& sizes) {
  const size_t n = size_t(w) * size_t(h);
  labels.assign(n, 0);
  sizes.clear();
  // Pass 1: provisional labels with union-find.
  std::vector<int32_t> parent{0};
  auto join = [&](int32_t a, int32_t b) {
    a = find_root(parent, a), b = find_root(parent, b);
    if (a < b) parent[size_t(b)] = a;
    else if (b < a) parent[size_t(a)] = b;
  };
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const size_t i = size_t(y) * size_t(w) + size_t(x);
      if (!fg[i]) continue;
      int32_t l = 0;
      // The four neighbours already visited: W, NW, N, NE.
      const int nx[4] = {x - 1, x - 1, x, x + 1}, ny[4] = {y, y - 1, y - 1, y - 1};
      for (int k = 0; k < 4; ++k) {
        if (nx[k] < 0 || nx[k] >= w || ny[k] < 0) continue;
        const int32_t m = labels[size_t(ny[k]) * size_t(w) + size_t(nx[k])];
        if (!m) continue;
        if (!l) l = m;
        else join(l, m);
      }
      if (!l) {
        l = int32_t(parent.size());
        parent.push_back(l);
      }
      labels[i] = l;
    }
  // Pass 2: final labels 1..N in the order OpenCV's block-based algorithms
  // (its default for 8-connectivity) number them: by the first 2x2 block,
  // blocks in raster order, holding a pixel of the component. (One 2x2 block
  // never holds two components: its pixels all touch.)
  std::vector<int32_t> final_label(parent.size(), 0);
  int32_t count = 0;
  for (int by = 0; by < h; by += 2)
    for (int bx = 0; bx < w; bx += 2)
      for (int y = by; y < by + 2 && y < h; ++y)
        for (int x = bx; x < bx + 2 && x < w; ++x) {
          const size_t i = size_t(y) * size_t(w) + size_t(x);
          if (labels[i] && !final_label[size_t(find_root(parent, labels[i]))])
            final_label[size_t(find_root(parent, labels[i]))] = ++count;
        }
  sizes.assign(size_t(count), 0);
  for (size_t i = 0; i < n; ++i) {
    if (!labels[i]) continue;
    labels[i] = final_label[size_t(find_root(parent, labels[i]))];
    ++sizes[size_t(labels[i] - 1)];
  }
  return count;
}

bool remove_small_regions(std::vector<uint8_t>& mask, int w, int h, int64_t min_area, SmallRegionMode mode) {
  const bool holes = mode == SmallRegionMode::holes;
  const size_t n = size_t(w) * size_t(h);
  std::vector<uint8_t> work(n);
  for (size_t i = 0; i < n; ++i) work[i] = uint8_t((mask[i] != 0) != holes);
  std::vector<int32_t> labels;
  std::vector<int64_t> sizes;
  const int count = label_regions_8(work.data(), w, h, labels, sizes);
  std::vector<char> small(size_t(count) + 1, 0);
  bool any = false;
  for (int k = 1; k <= count; ++k)
    if (sizes[size_t(k - 1)] < min_area) small[size_t(k)] = 1, any = true;
  if (!any) return false;
  if (holes) {
    // The mask (label 0 of its complement) and the small holes.
    for (size_t i = 0; i < n; ++i) mask[i] = uint8_t(labels[i] == 0 || small[size_t(labels[i])]);
    return true;
  }
  std::vector<char> keep(size_t(count) + 1, 0);
  bool kept = false;
  for (int k = 1; k <= count; ++k) keep[size_t(k)] = !small[size_t(k)], kept = kept || keep[size_t(k)];
  if (!kept) {  // np.argmax: the first of the largest
    int best = 1;
    for (int k = 2; k <= count; ++k)
      if (sizes[size_t(k - 1)] > sizes[size_t(best - 1)]) best = k;
    keep[size_t(best)] = 1;
  }
  for (size_t i = 0; i < n; ++i) mask[i] = uint8_t(keep[size_t(labels[i])]);
  return true;
}

bool fill_small_logit_regions(float* logits, int w, int h, int64_t max_area, float threshold) {
  const size_t n = size_t(w) * size_t(h);
  std::vector<uint8_t> fg(n), bg(n);
  for (size_t i = 0; i < n; ++i) fg[i] = uint8_t(logits[i] > threshold), bg[i] = uint8_t(!fg[i]);
  std::vector<int32_t> hole_labels, fg_labels;
  std::vector<int64_t> hole_sizes, fg_sizes;
  label_regions_8(bg.data(), w, h, hole_labels, hole_sizes);
  label_regions_8(fg.data(), w, h, fg_labels, fg_sizes);
  bool changed = false;
  for (size_t i = 0; i < n; ++i) {
    if (hole_labels[i] > 0 && hole_sizes[size_t(hole_labels[i] - 1)] <= max_area) {
      logits[i] = threshold + 10.0f, changed = true;
    } else if (fg_labels[i] > 0 && fg_sizes[size_t(fg_labels[i] - 1)] <= max_area) {
      logits[i] = threshold - 10.0f, changed = true;
    }
  }
  return changed;
}

}  // namespace rass
