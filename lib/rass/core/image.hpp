// An 8- or 16-bit interleaved image as decoded from a file. Pixel processing
// (degradation, metrics) converts to float planes; this type is what codecs
// produce and consume.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

namespace rass {

struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;  // 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
  int depth = 8;     // bits per sample: 8 or 16
  // Interleaved samples, row-major. depth 8: one byte per sample; depth 16:
  // native-endian uint16 per sample (2 bytes).
  std::vector<uint8_t> data;

  Image() = default;
  Image(int w, int h, int c, int d = 8)
      : width(w), height(h), channels(c), depth(d),
        data(static_cast<size_t>(w) * h * c * (d == 16 ? 2 : 1)) {}

  size_t samples() const { return static_cast<size_t>(width) * height * channels; }
  bool empty() const { return width == 0 || height == 0; }
  uint8_t* u8() { return data.data(); }
  const uint8_t* u8() const { return data.data(); }
  uint16_t* u16() { return reinterpret_cast<uint16_t*>(data.data()); }
  const uint16_t* u16() const { return reinterpret_cast<const uint16_t*>(data.data()); }
};

// The same image without its alpha channel (gray+alpha -> gray, RGBA -> RGB);
// images without alpha are returned unchanged.
inline Image drop_alpha(Image img) {
  if (img.channels != 2 && img.channels != 4) return img;
  const int c = img.channels - 1, bytes = img.depth / 8;
  Image out(img.width, img.height, c, img.depth);
  const size_t n = size_t(img.width) * img.height;
  for (size_t i = 0; i < n; ++i)
    std::memcpy(out.data.data() + i * c * bytes, img.data.data() + i * (c + 1) * bytes, size_t(c) * bytes);
  return out;
}

// The w x h region of an image from (x0, y0) (inside it), any depth and channels.
inline Image crop_image(const Image& img, int x0, int y0, int w, int h) {
  Image out(w, h, img.channels, img.depth);
  const size_t px = size_t(img.channels) * size_t(img.depth / 8), row = size_t(w) * px;
  for (int y = 0; y < h; ++y)
    std::memcpy(out.data.data() + size_t(y) * row, img.data.data() + (size_t(y0 + y) * size_t(img.width) + size_t(x0)) * px,
                row);
  return out;
}

}  // namespace rass
