#include "rass/metrics/psnr_ssim.hpp"

#include <cmath>
#include <limits>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "rass/core/error.hpp"

namespace rass::metrics {

namespace {

void check_pair(const Image& a, const Image& b) {
  if (a.width != b.width || a.height != b.height)
    throw Error(ExitCode::bad_input, "size mismatch: " + std::to_string(a.width) + "x" + std::to_string(a.height) +
                                         " vs " + std::to_string(b.width) + "x" + std::to_string(b.height));
  if ((a.channels >= 3) != (b.channels >= 3))
    throw Error(ExitCode::bad_input, "one image is gray and the other colour");
}

double mse(const Channels& a, const Channels& b) {
  double s = 0;
  for (size_t i = 0; i < a.data.size(); ++i) {
    const double d = a.data[i] - b.data[i];
    s += d * d;
  }
  return s / double(a.data.size());
}

// The 11x11 Gaussian window (cv2.getGaussianKernel(11, 1.5) outer itself): separable.
cv::Mat gauss_1d() {
  cv::Mat g(11, 1, CV_64F);
  double sum = 0;
  for (int i = 0; i < 11; ++i) sum += g.at<double>(i) = std::exp(-double((i - 5) * (i - 5)) / (2 * 1.5 * 1.5));
  return g / sum;
}

}  // namespace

double ssim_plane(const double* x, const double* y, int w, int h, bool relu_cs) {
  if (w < 11 || h < 11) throw Error(ExitCode::bad_input, "SSIM needs images of at least 11x11 pixels");
  static const cv::Mat g = gauss_1d();
  cv::Mat X(h, w, CV_64F, const_cast<double*>(x)), Y(h, w, CV_64F, const_cast<double*>(y));
  // Filter everything, then keep the valid region [5, n-5): same as 'valid' correlation.
  auto blur = [&](const cv::Mat& m) {
    cv::Mat out;
    cv::sepFilter2D(m, out, CV_64F, g, g, cv::Point(-1, -1), 0, cv::BORDER_REFLECT_101);
    return out(cv::Rect(5, 5, w - 10, h - 10));  // a view: rows are read through ptr()
  };
  const cv::Mat mu1 = blur(X), mu2 = blur(Y);
  const cv::Mat xx = blur(X.mul(X)), yy = blur(Y.mul(Y)), xy = blur(X.mul(Y));
  const double c1 = (0.01 * 255) * (0.01 * 255), c2 = (0.03 * 255) * (0.03 * 255);
  double sum = 0;
  const int vw = w - 10, vh = h - 10;
  for (int r = 0; r < vh; ++r) {
    const double *m1 = mu1.ptr<double>(r), *m2 = mu2.ptr<double>(r);
    const double *sxx = xx.ptr<double>(r), *syy = yy.ptr<double>(r), *sxy = xy.ptr<double>(r);
    for (int c = 0; c < vw; ++c) {
      const double mu1_sq = m1[c] * m1[c], mu2_sq = m2[c] * m2[c], mu12 = m1[c] * m2[c];
      const double s1 = sxx[c] - mu1_sq, s2 = syy[c] - mu2_sq, s12 = sxy[c] - mu12;
      double cs = (2 * s12 + c2) / (s1 + s2 + c2);
      if (relu_cs && cs < 0) cs = 0;
      sum += (2 * mu12 + c1) / (mu1_sq + mu2_sq + c1) * cs;
    }
  }
  return sum / (double(vw) * vh);
}

double psnr_basicsr(const Image& a, const Image& b, int crop_border, bool y_channel) {
  check_pair(a, b);
  // BasicSR crops, then converts to Y.
  const Channels x = crop(y_channel ? y_basicsr(a, false) : to_channels(a), crop_border);
  const Channels y = crop(y_channel ? y_basicsr(b, false) : to_channels(b), crop_border);
  const double m = mse(x, y);
  if (m == 0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(255.0 * 255.0 / m);
}

double ssim_basicsr(const Image& a, const Image& b, int crop_border, bool y_channel) {
  check_pair(a, b);
  const Channels x = crop(y_channel ? y_basicsr(a, false) : to_channels(a), crop_border);
  const Channels y = crop(y_channel ? y_basicsr(b, false) : to_channels(b), crop_border);
  double s = 0;
  for (int c = 0; c < x.count; ++c) s += ssim_plane(x.plane(c), y.plane(c), x.width, x.height, false);
  return s / x.count;
}

double psnr_pyiqa(const Image& a, const Image& b, bool y_channel, int crop_border) {
  check_pair(a, b);
  auto unit = [&](const Image& img) {
    if (y_channel) return crop(y_pyiqa(img, 1.0), crop_border);
    Channels c = to_channels(img);
    if (c.count == 1) {  // pyiqa loads gray images as RGB
      Channels rgb = c;
      rgb.count = 3;
      rgb.data.insert(rgb.data.end(), c.data.begin(), c.data.end());
      rgb.data.insert(rgb.data.end(), c.data.begin(), c.data.end());
      c = rgb;
    }
    for (double& v : c.data) v = double(float(v) / 255.f);
    return crop(c, crop_border);
  };
  const double m = mse(unit(a), unit(b));
  return 10.0 * std::log10(1.0 / (m + 1e-8));
}

double ssim_pyiqa(const Image& a, const Image& b, bool y_channel, int crop_border) {
  check_pair(a, b);
  const Channels x = crop(y_channel ? y_pyiqa(a, 255.0) : to_channels(a), crop_border);
  const Channels y = crop(y_channel ? y_pyiqa(b, 255.0) : to_channels(b), crop_border);
  double s = 0;
  // ssimc averages the SSIM map over the channels, which equals averaging per-channel means.
  for (int c = 0; c < x.count; ++c) s += ssim_plane(x.plane(c), y.plane(c), x.width, x.height, true);
  return s / x.count;
}

}  // namespace rass::metrics
