#include "rass/model/restore_size.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "rass/core/error.hpp"
#include "rass/degrade/pil_resize.hpp"

namespace rass::model {

namespace {

// Image.resize: a copy when the size does not change.
Image resize(const Image& img, int w, int h, PilFilter f) {
  if (img.width == w && img.height == h) return img;
  return pil_resize(img, w, h, f);
}

Image pad_replicate(const Image& img, int w, int h) {
  Image out(w, h, img.channels);
  const size_t c = size_t(img.channels);
  for (int y = 0; y < h; ++y) {
    const uint8_t* src = img.u8() + size_t(std::min(y, img.height - 1)) * img.width * c;
    uint8_t* dst = out.u8() + size_t(y) * w * c;
    std::memcpy(dst, src, size_t(img.width) * c);
    for (int x = img.width; x < w; ++x) std::memcpy(dst + x * c, src + (img.width - 1) * c, c);
  }
  return out;
}

void check_size(int w, int h, const std::string& name, const std::string& why) {
  if (w >= 8 && h >= 8) return;
  throw_bad_input(name, "image too small: " + why + " it becomes " + std::to_string(w) + "x" + std::to_string(h) +
                            ", and the VAE needs at least 8x8 pixels (one latent pixel); use a larger --upscale or "
                            "--size-policy pad");
}

}  // namespace

Image to_rgb8(Image img, const std::string& name) {
  if (img.depth != 8)
    throw_bad_input(name, "is a " + std::to_string(img.depth) + "-bit image; the model takes 8-bit images (as "
                          "the reference's PIL loading): convert it to 8-bit first");
  img = drop_alpha(std::move(img));
  if (img.channels == 3) return img;
  Image out(img.width, img.height, 3);
  const size_t n = size_t(img.width) * img.height;
  for (size_t i = 0; i < n; ++i) out.data[3 * i] = out.data[3 * i + 1] = out.data[3 * i + 2] = img.data[i];
  return out;
}

std::pair<int, int> processed_size(int w, int h, int upscale, SizePolicy policy, int process_size) {
  if (upscale < 1 || w < 1 || h < 1) return {0, 0};
  int64_t pw = w, ph = h;
  if (policy == SizePolicy::osediff) {
    const int small = process_size / upscale;
    if (w < small || h < small) {
      const double scale = double(small) / double(std::min(w, h));
      const double dw = scale * w * upscale, dh = scale * h * upscale;
      if (dw > 65536 || dh > 65536 || dw * dh > double(1 << 30)) return {0, 0};
      pw = int64_t(scale * w);
      ph = int64_t(scale * h);
    }
    pw *= upscale;
    ph *= upscale;
    pw -= pw % 8;
    ph -= ph % 8;
  } else {
    pw = (pw * upscale + 7) / 8 * 8;
    ph = (ph * upscale + 7) / 8 * 8;
  }
  if (pw < 8 || ph < 8 || pw > (int64_t(1) << 30) || ph > (int64_t(1) << 30)) return {0, 0};
  return {int(pw), int(ph)};
}

PreparedInput prepare_input(const Image& rgb, int upscale, SizePolicy policy, int process_size, const std::string& name) {
  if (upscale < 1) throw_usage("--upscale must be >= 1");
  PreparedInput p;
  Image img = rgb;
  if (policy == SizePolicy::osediff) {
    const int small = process_size / upscale;
    if (img.width < small || img.height < small) {
      // Python: scale = (P // r) / min(w, h); int(scale * w) truncates. Same doubles here.
      const double scale = double(small) / double(std::min(img.width, img.height));
      // Before the int casts: a huge --process-size on a small image overflowed
      // them (and called the image too small) or ran out of memory.
      const double dw = scale * img.width * upscale, dh = scale * img.height * upscale;
      if (dw > 65536 || dh > 65536 || dw * dh > double(1 << 30))
        throw_bad_input(name, "the --process-size " + std::to_string(process_size) + " rule would make it " +
                                  std::to_string(int64_t(dw)) + " x " + std::to_string(int64_t(dh)) +
                                  " px (over 65536 px a side or 2^30 px): lower --process-size");
      const int w = int(scale * img.width), h = int(scale * img.height);
      if (w < 1 || h < 1) throw_bad_input(name, "image too small to resize");
      img = resize(img, w, h, PilFilter::bicubic);
    }
    img = resize(img, img.width * upscale, img.height * upscale, PilFilter::bicubic);
    const int w = img.width - img.width % 8, h = img.height - img.height % 8;
    check_size(w, h, name, "cut down to a multiple of 8,");
    img = resize(img, w, h, PilFilter::lanczos);
    p.out_width = w;
    p.out_height = h;
    p.reference = img;
    p.image = std::move(img);
    return p;
  }
  img = resize(img, img.width * upscale, img.height * upscale, PilFilter::bicubic);
  p.out_width = img.width;
  p.out_height = img.height;
  const int w = (img.width + 7) / 8 * 8, h = (img.height + 7) / 8 * 8;
  p.image = (w == img.width && h == img.height) ? img : pad_replicate(img, w, h);
  p.reference = std::move(img);
  return p;
}

}  // namespace rass::model
