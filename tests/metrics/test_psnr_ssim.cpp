// PSNR/SSIM against hand-worked values and the numpy oracle (make_iqa_golden.py).
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "rass/core/error.hpp"
#include "rass/io/image_io.hpp"
#include "rass/metrics/psnr_ssim.hpp"

using namespace rass;
using namespace rass::metrics;

static Image flat(int w, int h, int c, uint8_t v) {
  Image img(w, h, c);
  std::fill(img.data.begin(), img.data.end(), v);
  return img;
}

TEST_CASE("PSNR of a constant offset, worked by hand") {
  Image a = flat(32, 24, 3, 100), b = flat(32, 24, 3, 110);
  // mse = 10^2 = 100 -> 10 log10(255^2 / 100) = 28.1308036...
  CHECK(psnr_basicsr(a, b, 0, false) == doctest::Approx(10 * std::log10(65025.0 / 100)).epsilon(1e-12));
  // pyiqa: mse = (10/255)^2 on [0, 1] data, plus eps 1e-8.
  const double m = std::pow(10.0 / 255, 2);
  CHECK(psnr_pyiqa(a, b, false, 0) == doctest::Approx(10 * std::log10(1 / (m + 1e-8))).epsilon(1e-6));
  // Y of a grey offset: limited range scales by 219/255: mse = (10 * 219/255)^2.
  CHECK(psnr_basicsr(a, b, 0, true) == doctest::Approx(10 * std::log10(65025.0 / std::pow(10 * 219.0 / 255, 2))).epsilon(1e-5));
}

TEST_CASE("identical images: PSNR inf (BasicSR), SSIM 1") {
  Image a = read_image(std::string(RASS_FIXTURES) + "/metrics/pair_a.png");
  CHECK(std::isinf(psnr_basicsr(a, a, 0, false)));
  CHECK(ssim_basicsr(a, a, 0, false) == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(ssim_basicsr(a, a, 3, true) == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(ssim_pyiqa(a, a, true, 0) == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(psnr_pyiqa(a, a, false, 0) == doctest::Approx(80.0).epsilon(1e-9));  // 10 log10(1 / 1e-8)
}

TEST_CASE("both conventions match the numpy oracle") {
  std::ifstream f(std::string(RASS_FIXTURES) + "/metrics/iqa_golden.json");
  REQUIRE(f.good());
  const auto g = nlohmann::json::parse(f);
  for (const char* pair : {"pair", "gray"}) {
    INFO(pair);
    const auto& e = g[pair];
    Image a = read_image(std::string(RASS_FIXTURES) + "/metrics/" + pair + "_a.png");
    Image b = read_image(std::string(RASS_FIXTURES) + "/metrics/" + pair + "_b.png");
    CHECK(psnr_pyiqa(a, b, false, 0) == doctest::Approx(e["psnr"].get<double>()).epsilon(1e-6));
    CHECK(psnr_pyiqa(a, b, true, 0) == doctest::Approx(e["psnry"].get<double>()).epsilon(1e-6));
    CHECK(ssim_pyiqa(a, b, true, 0) == doctest::Approx(e["ssim"].get<double>()).epsilon(1e-6));
    CHECK(ssim_pyiqa(a, b, false, 0) == doctest::Approx(e["ssimc"].get<double>()).epsilon(1e-6));
    for (int crop : {0, 4})
      for (int y : {0, 1}) {
        const std::string sfx = "/crop" + std::to_string(crop) + "/y" + std::to_string(y);
        INFO(sfx);
        CHECK(psnr_basicsr(a, b, crop, y) == doctest::Approx(e["psnr@basicsr" + sfx].get<double>()).epsilon(1e-6));
        CHECK(ssim_basicsr(a, b, crop, y) == doctest::Approx(e["ssim@basicsr" + sfx].get<double>()).epsilon(1e-6));
      }
  }
}

// The whole-plane SSIM the streamed one replaced: OpenCV's sepFilter2D of full
// float64 planes, then the valid region.
static double ssim_whole_plane(const std::vector<double>& x, const std::vector<double>& y, int w, int h, bool relu) {
  cv::Mat g(11, 1, CV_64F);
  double sum = 0;
  for (int i = 0; i < 11; ++i) sum += g.at<double>(i) = std::exp(-double((i - 5) * (i - 5)) / (2 * 1.5 * 1.5));
  g = g / sum;
  cv::Mat X(h, w, CV_64F, const_cast<double*>(x.data())), Y(h, w, CV_64F, const_cast<double*>(y.data()));
  auto blur = [&](const cv::Mat& m) {
    cv::Mat out;
    cv::sepFilter2D(m, out, CV_64F, g, g, cv::Point(-1, -1), 0, cv::BORDER_REFLECT_101);
    return cv::Mat(out(cv::Rect(5, 5, w - 10, h - 10)));
  };
  const cv::Mat mu1 = blur(X), mu2 = blur(Y), xx = blur(X.mul(X)), yy = blur(Y.mul(Y)), xy = blur(X.mul(Y));
  const double c1 = (0.01 * 255) * (0.01 * 255), c2 = (0.03 * 255) * (0.03 * 255);
  double s = 0;
  for (int r = 0; r < h - 10; ++r)
    for (int c = 0; c < w - 10; ++c) {
      const double m1 = mu1.at<double>(r, c), m2 = mu2.at<double>(r, c);
      const double mu1_sq = m1 * m1, mu2_sq = m2 * m2, mu12 = m1 * m2;
      const double s1 = xx.at<double>(r, c) - mu1_sq, s2 = yy.at<double>(r, c) - mu2_sq, s12 = xy.at<double>(r, c) - mu12;
      double cs = (2 * s12 + c2) / (s1 + s2 + c2);
      if (relu && cs < 0) cs = 0;
      s += (2 * mu12 + c1) / (mu1_sq + mu2_sq + c1) * cs;
    }
  return s / (double(w - 10) * (h - 10));
}

TEST_CASE("streamed SSIM equals the whole-plane OpenCV computation") {
  // Widths around the filters' unrolling and chunking (4 and 256 columns), heights
  // from the window size up; integer data (uint8 planes) and fractional data (Y).
  uint32_t st = 7;
  auto next = [&] { return (st = st * 1664525u + 1013904223u) >> 8; };
  for (auto [w, h] : {std::pair{11, 11}, {12, 17}, {37, 23}, {270, 19}, {523, 41}}) {
    std::vector<double> x(size_t(w) * h), y(x.size()), fx(x.size()), fy(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      x[i] = double((i % 97) * 2 + next() % 40);
      y[i] = std::min(255.0, x[i] + double(next() % 30));
      fx[i] = x[i] + double(next() % 1000) / 997;
      fy[i] = y[i] * 0.93 + double(next() % 1000) / 991;
    }
    INFO(w, "x", h);
    for (bool relu : {false, true}) {
      // Same arithmetic in the same order: equal up to the last bits (equal where the
      // FMA choice matches OpenCV's dispatch, as on the machines this was tested on).
      CHECK(ssim_plane(x.data(), y.data(), w, h, relu) == doctest::Approx(ssim_whole_plane(x, y, w, h, relu)).epsilon(1e-13));
      CHECK(ssim_plane(fx.data(), fy.data(), w, h, relu) == doctest::Approx(ssim_whole_plane(fx, fy, w, h, relu)).epsilon(1e-13));
    }
  }
}

TEST_CASE("mismatched pairs are bad input") {
  CHECK_THROWS_AS(psnr_basicsr(flat(10, 10, 3, 0), flat(11, 10, 3, 0), 0, false), Error);
  CHECK_THROWS_AS(ssim_pyiqa(flat(20, 20, 3, 0), flat(20, 20, 1, 0), true, 0), Error);
  CHECK_THROWS_AS(ssim_basicsr(flat(8, 8, 3, 0), flat(8, 8, 3, 0), 0, false), Error);  // smaller than the window
  CHECK_THROWS_AS(psnr_basicsr(flat(8, 8, 3, 0), flat(8, 8, 3, 0), 4, false), Error);  // crop eats it all
}
