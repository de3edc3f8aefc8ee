#include "rass/degrade/color_aug.hpp"

#include <algorithm>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "rass/core/error.hpp"

namespace rass::degrade {

ColorAugDraws draw_color_aug(const ColorAugSsd& c, Rng& rng) {
  // Same draw order as the reference: brightness (flag, value), the branch,
  // then per step its flag and value.
  ColorAugDraws d;
  d.brightness = rng.below(2) == 1;
  if (d.brightness) d.beta = rng.uniform(-c.brightness_delta, c.brightness_delta);
  d.contrast_first = rng.below(2) == 1;
  auto contrast = [&] {
    d.contrast = rng.below(2) == 1;
    if (d.contrast) d.alpha = rng.uniform(c.contrast_low, c.contrast_high);
  };
  auto sat_hue = [&] {
    d.saturation = rng.below(2) == 1;
    if (d.saturation) d.sat_alpha = rng.uniform(c.saturation_low, c.saturation_high);
    d.hue = rng.below(2) == 1;
    if (d.hue) d.hue_shift = int(rng.below(uint64_t(2 * c.hue_delta + 1))) - c.hue_delta;
  };
  if (d.contrast_first) {
    contrast();
    sat_hue();
  } else {
    sat_hue();
    contrast();
  }
  return d;
}

namespace {

// np.clip(x.astype(float32) * alpha + beta, 0, 255).astype(uint8)
void convert(cv::Mat& m, double alpha, double beta) {
  const float a = float(alpha), b = float(beta);
  for (int y = 0; y < m.rows; ++y) {
    uint8_t* p = m.ptr<uint8_t>(y);
    const size_t n = size_t(m.cols) * m.channels();
    for (size_t i = 0; i < n; ++i) p[i] = uint8_t(std::clamp(float(p[i]) * a + b, 0.0f, 255.0f));
  }
}

void saturation(cv::Mat& bgr, double alpha) {
  cv::Mat hsv;
  cv::cvtColor(bgr, hsv, cv::COLOR_BGR2HSV);
  std::vector<cv::Mat> ch;
  cv::split(hsv, ch);
  convert(ch[1], alpha, 0);
  cv::merge(ch, hsv);
  cv::cvtColor(hsv, bgr, cv::COLOR_HSV2BGR);
}

void hue(cv::Mat& bgr, int shift) {
  cv::Mat hsv;
  cv::cvtColor(bgr, hsv, cv::COLOR_BGR2HSV);
  for (int y = 0; y < hsv.rows; ++y) {
    uint8_t* p = hsv.ptr<uint8_t>(y);
    for (int x = 0; x < hsv.cols; ++x) p[3 * x] = uint8_t(((int(p[3 * x]) + shift) % 180 + 180) % 180);
  }
  cv::cvtColor(hsv, bgr, cv::COLOR_HSV2BGR);
}

}  // namespace

Image apply_color_aug(const Image& rgb, const ColorAugDraws& d) {
  if (rgb.depth != 8 || rgb.channels != 3) throw_bad_input("color augmentation", "needs an 8-bit RGB image");
  cv::Mat in(rgb.height, rgb.width, CV_8UC3, const_cast<uint8_t*>(rgb.u8()));
  cv::Mat bgr;
  cv::cvtColor(in, bgr, cv::COLOR_RGB2BGR);
  if (d.brightness) convert(bgr, 1, d.beta);
  auto contrast = [&] {
    if (d.contrast) convert(bgr, d.alpha, 0);
  };
  auto sat_hue = [&] {
    if (d.saturation) saturation(bgr, d.sat_alpha);
    if (d.hue) hue(bgr, d.hue_shift);
  };
  if (d.contrast_first) {
    contrast();
    sat_hue();
  } else {
    sat_hue();
    contrast();
  }
  Image out(rgb.width, rgb.height, 3, 8);
  cv::Mat o(out.height, out.width, CV_8UC3, out.u8());
  cv::cvtColor(bgr, o, cv::COLOR_BGR2RGB);
  return out;
}

}  // namespace rass::degrade
