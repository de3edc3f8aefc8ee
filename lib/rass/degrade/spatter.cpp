#include "rass/degrade/spatter.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

namespace rass::degrade {

namespace {

// The reference's rgb2gray: np.dot(rgb, [0.2989, 0.5870, 0.1140]).
double luma(double r, double g, double b) { return r * 0.2989 + g * 0.5870 + b * 0.1140; }

}  // namespace

void corrupt_spatter(Planes& img, const SpatterParams& p, Draws& draws) {
  const int w = img.width, h = img.height;
  const size_t n = img.plane_size();
  std::vector<double> liquid(n);
  for (double& v : liquid) v = p.mean + p.std * draws.normal();
  gaussian_filter_plane(liquid.data(), w, h, p.sigma, p.sigma, 4.0, GaussBorder::nearest);
  for (double& v : liquid)
    if (v < p.threshold) v = 0;
  // The colour added per pixel (RGB, 0-1), and how much of the image stays.
  std::vector<double> keep(n, 1.0);
  std::vector<double> add[3] = {std::vector<double>(n, 0.0), std::vector<double>(n, 0.0), std::vector<double>(n, 0.0)};
  if (!p.mud) {
    // (liquid * 255).astype(np.uint8): truncated, and wrapped past 255 as the cast does.
    cv::Mat l8(h, w, CV_8U);
    for (size_t i = 0; i < n; ++i) l8.data[i] = uint8_t(int64_t(std::trunc(liquid[i] * 255)) & 255);
    cv::Mat edges, dist;
    cv::Canny(l8, edges, 50, 150);
    cv::Mat inv = 255 - edges;
    cv::distanceTransform(inv, dist, cv::DIST_L2, 5);
    cv::threshold(dist, dist, 20, 20, cv::THRESH_TRUNC);
    cv::Mat blurred;
    cv::blur(dist, blurred, cv::Size(3, 3));
    cv::Mat d8(h, w, CV_8U);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) d8.at<uint8_t>(y, x) = uint8_t(int(blurred.at<float>(y, x)));  // astype: truncation
    cv::equalizeHist(d8, d8);
    const cv::Mat ker = (cv::Mat_<float>(3, 3) << -2, -1, 0, -1, 1, 1, 0, 1, 2);
    cv::Mat emb;
    cv::filter2D(d8, emb, CV_8U, ker);
    cv::blur(emb, emb, cv::Size(3, 3));
    // m = liquid8 * dist (float32), over its maximum, times gain.
    std::vector<float> m(n);
    float mx = 0;
    for (size_t i = 0; i < n; ++i) mx = std::max(mx, m[i] = float(l8.data[i]) * float(emb.data[i]));
    const float scale = mx > 0 ? 1.f / mx : 0.f;  // the reference divides 0 by 0 (NaN) on a dry layer
    static const double water[3] = {175 / 255., 238 / 255., 238 / 255.};
    for (size_t i = 0; i < n; ++i) {
      const double mi = double(float(m[i] * scale) * float(p.gain));
      for (int c = 0; c < 3; ++c) add[c][i] = mi * water[c];
    }
  } else {
    std::vector<double> mask(n);
    for (size_t i = 0; i < n; ++i) mask[i] = liquid[i] > p.threshold ? 1.0 : 0.0;
    gaussian_filter_plane(mask.data(), w, h, p.gain, p.gain, 4.0, GaussBorder::nearest);
    static const double mud[3] = {63 / 255., 42 / 255., 20 / 255.};
    for (size_t i = 0; i < n; ++i) {
      const double mi = mask[i] < 0.8 ? 0.0 : mask[i];
      keep[i] = 1 - mi;
      for (int c = 0; c < 3; ++c) add[c][i] = mi * mud[c];
    }
  }
  if (img.channels >= 3) {
    for (int c = 0; c < 3; ++c) {
      float* q = img.plane(c);
      for (size_t i = 0; i < n; ++i) q[i] = clip01(double(q[i]) * keep[i] + add[c][i]);
    }
  } else {
    float* q = img.plane(0);
    for (size_t i = 0; i < n; ++i) {
      const double a = p.mud ? luma(add[0][i], add[1][i], add[2][i])
                             : luma(std::min(add[0][i], 1.0), std::min(add[1][i], 1.0), std::min(add[2][i], 1.0));
      q[i] = clip01(double(q[i]) * keep[i] + a);
    }
  }
}

}  // namespace rass::degrade
