#include "rass/degrade/resize.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "rass/core/error.hpp"

namespace rass::degrade {

const char* resize_mode_name(ResizeMode m) {
  switch (m) {
    case ResizeMode::area: return "area";
    case ResizeMode::bilinear: return "bilinear";
    case ResizeMode::bicubic: return "bicubic";
    case ResizeMode::nearest: return "nearest";
  }
  return "?";
}

ResizeMode parse_resize_mode(const std::string& s) {
  for (ResizeMode m : {ResizeMode::area, ResizeMode::bilinear, ResizeMode::bicubic, ResizeMode::nearest})
    if (s == resize_mode_name(m)) return m;
  throw_usage("unknown resize mode '" + s + "' (expected area, bilinear, bicubic or nearest)");
}

namespace {

// One output sample = sum of weights[j] * in[index[j]] over its taps.
struct Taps {
  int per_output = 0;
  std::vector<int> index;     // out_size * per_output
  std::vector<float> weight;  // out_size * per_output
};

float cubic_inner(float x, float A) { return ((A + 2) * x - (A + 3)) * x * x + 1; }         // |x| <= 1
float cubic_outer(float x, float A) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; }  // 1 < |x| < 2

Taps make_taps(int in, int out, ResizeMode mode, double scale_factor) {
  Taps t;
  // torch computes the coordinate scale in float (accscalar_t for float is float... it is
  // opmath float on CPU); the difference to double is below float rounding of the result.
  const float s = scale_factor > 0 ? float(1.0 / scale_factor) : float(in) / float(out);
  auto clampi = [in](int v) { return std::min(std::max(v, 0), in - 1); };
  switch (mode) {
    case ResizeMode::nearest: {
      t.per_output = 1;
      for (int i = 0; i < out; ++i) {
        t.index.push_back(std::min(int(std::floor(i * s)), in - 1));
        t.weight.push_back(1.f);
      }
      break;
    }
    case ResizeMode::bilinear: {
      t.per_output = 2;
      if (in == out) {  // ATen copies an axis of unchanged size, whatever the scale factor
        for (int i = 0; i < out; ++i) {
          t.index.insert(t.index.end(), {i, i});
          t.weight.insert(t.weight.end(), {1.f, 0.f});
        }
        break;
      }
      for (int i = 0; i < out; ++i) {
        float src = s * (i + 0.5f) - 0.5f;
        if (src < 0) src = 0;
        int x0 = int(src);
        int x1 = x0 + (x0 < in - 1 ? 1 : 0);
        float l1 = src - x0;
        t.index.insert(t.index.end(), {x0, x1});
        t.weight.insert(t.weight.end(), {1.f - l1, l1});
      }
      break;
    }
    case ResizeMode::bicubic: {
      t.per_output = 4;
      const float A = -0.75f;
      for (int i = 0; i < out; ++i) {
        float src = s * (i + 0.5f) - 0.5f;
        int x0 = int(std::floor(src));
        float d = src - x0;
        t.index.insert(t.index.end(), {clampi(x0 - 1), clampi(x0), clampi(x0 + 1), clampi(x0 + 2)});
        t.weight.insert(t.weight.end(),
                        {cubic_outer(d + 1, A), cubic_inner(d, A), cubic_inner(1 - d, A), cubic_outer(2 - d, A)});
      }
      break;
    }
    case ResizeMode::area: {
      // Adaptive average pooling bins, integer arithmetic as ATen.
      int widest = 0;
      std::vector<std::pair<int, int>> bins;
      for (int i = 0; i < out; ++i) {
        int a = int((int64_t(i) * in) / out);
        int b = int((int64_t(i + 1) * in + out - 1) / out);
        bins.emplace_back(a, b);
        widest = std::max(widest, b - a);
      }
      t.per_output = widest;
      for (auto [a, b] : bins) {
        for (int j = 0; j < widest; ++j) {
          t.index.push_back(a + j < b ? a + j : a);
          t.weight.push_back(a + j < b ? 1.f / float(b - a) : 0.f);
        }
      }
      break;
    }
  }
  return t;
}

// d[x] = sum over the taps of x, in tap order from 0 (TAPS 0: tx.per_output).
template <int TAPS>
void horizontal_pass(const float* s, const Taps& tx, int out_w, float* d) {
  const int taps = TAPS > 0 ? TAPS : tx.per_output;
  const int* idx = tx.index.data();
  const float* w = tx.weight.data();
  for (int x = 0; x < out_w; ++x, idx += taps, w += taps) {
    float acc = 0;
    for (int j = 0; j < taps; ++j) acc += w[j] * s[idx[j]];
    d[x] = acc;
  }
}

}  // namespace

Planes resize(const Planes& in, int out_w, int out_h, ResizeMode mode, double scale_factor) {
  if (out_w < 1 || out_h < 1) throw_runtime("resize to an empty size " + std::to_string(out_w) + "x" + std::to_string(out_h));
  if (out_w == in.width && out_h == in.height && (scale_factor == 0 || scale_factor == 1)) return in;
  const Taps tx = make_taps(in.width, out_w, mode, scale_factor);
  const Taps ty = make_taps(in.height, out_h, mode, scale_factor);
  Planes out(out_w, out_h, in.channels);
  std::vector<float> rows(size_t(out_w) * in.height);  // horizontal pass result
  for (int c = 0; c < in.channels; ++c) {
    const float* src = in.plane(c);
    for (int y = 0; y < in.height; ++y) {
      const float* s = src + size_t(y) * in.width;
      float* d = rows.data() + size_t(y) * out_w;
      switch (tx.per_output) {  // bilinear and bicubic with the tap count known: unrolled, same sums
        case 2: horizontal_pass<2>(s, tx, out_w, d); break;
        case 4: horizontal_pass<4>(s, tx, out_w, d); break;
        default: horizontal_pass<0>(s, tx, out_w, d); break;
      }
    }
    float* dst = out.plane(c);
    for (int y = 0; y < out_h; ++y) {
      const int* idx = &ty.index[size_t(y) * ty.per_output];
      const float* w = &ty.weight[size_t(y) * ty.per_output];
      float* d = dst + size_t(y) * out_w;
      std::fill(d, d + out_w, 0.f);
      for (int j = 0; j < ty.per_output; ++j) {
        const float* s = rows.data() + size_t(idx[j]) * out_w;
        const float wj = w[j];
        for (int x = 0; x < out_w; ++x) d[x] += wj * s[x];
      }
    }
  }
  return out;
}

}  // namespace rass::degrade
