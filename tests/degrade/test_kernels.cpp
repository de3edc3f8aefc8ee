// Blur kernels against (a) values worked by hand from the formulas and (b) the
// numpy/scipy oracle in make_kernel_golden.py (fixture kernels.json).
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "rass/degrade/kernels.hpp"

using namespace rass::degrade;

TEST_CASE("isotropic Gaussian: neighbour ratio is exp(-1/(2 sigma^2))") {
  KernelParams p;
  p.type = KernelType::iso;
  p.size = 9;
  p.sigma_x = p.sigma_y = 1.3;
  Kernel k = make_kernel(p);
  CHECK(k.at(0, 1) / k.at(0, 0) == doctest::Approx(std::exp(-1.0 / (2 * 1.3 * 1.3))).epsilon(1e-12));
  CHECK(k.at(2, 2) / k.at(0, 0) == doctest::Approx(std::exp(-8.0 / (2 * 1.3 * 1.3))).epsilon(1e-12));
  double sum = 0;
  for (double v : k.k) sum += v;
  CHECK(sum == doctest::Approx(1.0).epsilon(1e-14));
}

TEST_CASE("anisotropic Gaussian: axes follow sigma_x (columns) and sigma_y (rows), theta rotates them") {
  KernelParams p;
  p.type = KernelType::aniso;
  p.size = 11;
  p.sigma_x = 2.0;
  p.sigma_y = 0.8;
  p.theta = 0;
  Kernel k = make_kernel(p);
  CHECK(k.at(0, 1) / k.at(0, 0) == doctest::Approx(std::exp(-1.0 / (2 * 4.0))).epsilon(1e-12));
  CHECK(k.at(1, 0) / k.at(0, 0) == doctest::Approx(std::exp(-1.0 / (2 * 0.64))).epsilon(1e-12));
  // Rotating by pi/2 swaps the axes.
  p.theta = M_PI / 2;
  Kernel r = make_kernel(p);
  CHECK(r.at(1, 0) / r.at(0, 0) == doctest::Approx(std::exp(-1.0 / (2 * 4.0))).epsilon(1e-9));
  CHECK(r.at(0, 1) / r.at(0, 0) == doctest::Approx(std::exp(-1.0 / (2 * 0.64))).epsilon(1e-9));
  // Point symmetry: k(x) = k(-x), so correlation equals convolution.
  p.theta = 0.9;
  Kernel s = make_kernel(p);
  for (int dy = -5; dy <= 5; ++dy)
    for (int dx = -5; dx <= 5; ++dx) CHECK(s.at(dy, dx) == doctest::Approx(s.at(-dy, -dx)).epsilon(1e-14));
}

TEST_CASE("generalized Gaussian and plateau: hand-computed ratios") {
  KernelParams p;
  p.size = 7;
  p.sigma_x = p.sigma_y = 1.5;
  p.beta = 2.0;
  p.type = KernelType::generalized_iso;
  Kernel g = make_kernel(p);
  // q at (0,1) = 1/sigma^2; value exp(-0.5 q^beta); centre exp(0) = 1.
  const double q = 1.0 / (1.5 * 1.5);
  CHECK(g.at(0, 1) / g.at(0, 0) == doctest::Approx(std::exp(-0.5 * q * q)).epsilon(1e-12));
  p.type = KernelType::plateau_iso;
  Kernel pl = make_kernel(p);
  CHECK(pl.at(0, 1) / pl.at(0, 0) == doctest::Approx(1.0 / (q * q + 1.0)).epsilon(1e-12));
}

TEST_CASE("sinc: centre is wc^2/(4 pi) before normalisation") {
  KernelParams p;
  p.type = KernelType::sinc;
  p.size = 9;
  p.cutoff = M_PI / 3;
  Kernel k = make_kernel(p);
  const double wc = M_PI / 3;
  // Ratio of an off-centre value to the centre, from the formula by hand.
  const double off = wc * std::cyl_bessel_j(1.0, wc * 2.0) / (2 * M_PI * 2.0);
  CHECK(k.at(0, 2) / k.at(0, 0) == doctest::Approx(off / (wc * wc / (4 * M_PI))).epsilon(1e-12));
  CHECK(k.at(2, 0) == doctest::Approx(k.at(0, 2)).epsilon(1e-15));
}

TEST_CASE("every kernel type matches the numpy/scipy oracle") {
  std::ifstream f(std::string(RASS_FIXTURES) + "/degrade/kernels.json");
  REQUIRE(f.good());
  nlohmann::json golden = nlohmann::json::parse(f);
  REQUIRE(golden.size() >= 11);
  for (const auto& g : golden) {
    KernelParams p;
    p.type = parse_kernel_type(g["type"]);
    p.size = g["size"];
    if (p.type == KernelType::sinc) {
      p.cutoff = g["cutoff"];
    } else {
      p.sigma_x = g["sigma_x"];
      p.sigma_y = g["sigma_y"];
      p.theta = g["theta"];
      p.beta = g.value("beta", 1.0);
    }
    Kernel k = make_kernel(p);
    const auto& want = g["kernel"];
    REQUIRE(want.size() == k.k.size());
    double worst = 0;
    for (size_t i = 0; i < k.k.size(); ++i) worst = std::max(worst, std::fabs(k.k[i] - want[i].get<double>()));
    INFO(g["type"].get<std::string>(), " size ", p.size);
    CHECK(worst < 1e-12);
  }
}

TEST_CASE("bad kernel sizes are refused") {
  KernelParams p;
  p.size = 8;
  CHECK_THROWS(make_kernel(p));
  CHECK_THROWS(parse_kernel_type("box"));
}

TEST_CASE("isotropic kernels are the outer product of their separable factor") {
  KernelParams p;
  p.type = KernelType::iso;
  p.size = 15;
  p.sigma_x = p.sigma_y = 2.2;
  std::vector<double> g;
  REQUIRE(separable_factor(p, g));
  Kernel k = make_kernel(p);
  for (int y = 0; y < 15; ++y)
    for (int x = 0; x < 15; ++x) CHECK(k.k[y * 15 + x] == doctest::Approx(g[y] * g[x]).epsilon(1e-13));
  p.type = KernelType::aniso;
  CHECK(!separable_factor(p, g));
}
