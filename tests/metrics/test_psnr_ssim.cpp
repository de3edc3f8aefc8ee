// PSNR/SSIM against hand-worked values and the numpy oracle (make_iqa_golden.py).
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

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

TEST_CASE("mismatched pairs are bad input") {
  CHECK_THROWS_AS(psnr_basicsr(flat(10, 10, 3, 0), flat(11, 10, 3, 0), 0, false), Error);
  CHECK_THROWS_AS(ssim_pyiqa(flat(20, 20, 3, 0), flat(20, 20, 1, 0), true, 0), Error);
  CHECK_THROWS_AS(ssim_basicsr(flat(8, 8, 3, 0), flat(8, 8, 3, 0), 0, false), Error);  // smaller than the window
  CHECK_THROWS_AS(psnr_basicsr(flat(8, 8, 3, 0), flat(8, 8, 3, 0), 4, false), Error);  // crop eats it all
}
