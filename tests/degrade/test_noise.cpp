// Noise statistics: sample moments against the model's formulas.
#include <doctest/doctest.h>

#include <cmath>

#include "rass/degrade/noise.hpp"

using namespace rass;
using namespace rass::degrade;

static Planes flat(int w, int h, int c, float v) {
  Planes p(w, h, c);
  std::fill(p.data.begin(), p.data.end(), v);
  return p;
}

TEST_CASE("Gaussian noise: sample std within 3% of sigma, zero mean, per-channel fields") {
  for (double sigma : {5.0, 12.0, 25.0}) {
    Planes img = flat(1024, 1024, 3, 0.5f);  // mid-grey: clipping at 0/1 is > 5 sigma away
    Rng rng(42);
    add_gaussian_noise(img, sigma, false, rng);
    double s = 0, s2 = 0;
    for (float v : img.data) {
      const double d = (v - 0.5) * 255.0;
      s += d;
      s2 += d * d;
    }
    const double n = double(img.data.size());
    const double mean = s / n, sd = std::sqrt(s2 / n - mean * mean);
    INFO("sigma ", sigma, " sample sd ", sd);
    CHECK(std::fabs(sd - sigma) < 0.03 * sigma);
    CHECK(std::fabs(mean) < 0.05);
    // Colour noise: channels differ.
    CHECK(img.plane(0)[100] != img.plane(1)[100]);
  }
}

TEST_CASE("gray noise is the same field on every channel") {
  Planes img = flat(64, 64, 3, 0.5f);
  Rng rng(7);
  add_gaussian_noise(img, 10, true, rng);
  for (size_t i = 0; i < img.plane_size(); ++i) {
    CHECK(img.plane(0)[i] == img.plane(1)[i]);
    CHECK(img.plane(1)[i] == img.plane(2)[i]);
  }
}

TEST_CASE("Poisson noise: variance q/vals per pixel (scale 1) and vals = 2^ceil(log2 #levels)") {
  // 256 levels, each on 4096 pixels: vals = 256, so noise at level q has variance q/256.
  Planes img(1024, 1024, 1);
  for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = float(i % 256) / 255.0f;
  Planes orig = img;
  Rng rng(3);
  CHECK(add_poisson_noise(img, 1.0, false, rng) == 256);
  double var = 0, expect = 0, mean = 0;
  size_t n = 0;
  for (size_t i = 0; i < img.data.size(); ++i) {
    const int level = int(i % 256);
    if (level < 64 || level > 191) continue;  // away from the clamps at 0 and 1
    const double d = img.data[i] - orig.data[i];
    mean += d;
    var += d * d;
    expect += (level / 255.0) / 256.0;
    ++n;
  }
  CHECK(std::fabs(mean / n) < 2e-4);
  CHECK(var / expect == doctest::Approx(1.0).epsilon(0.03));

  Planes three(30, 30, 1);
  for (size_t i = 0; i < three.data.size(); ++i) three.data[i] = float(i % 3) * 100 / 255.0f;
  Rng r2(1);
  CHECK(add_poisson_noise(three, 0.1, false, r2) == 4);
}

TEST_CASE("Poisson noise with a scale: variance scales with scale^2, results stay in [0, 1]") {
  Planes img(512, 512, 3);
  for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = float(i % 256) / 255.0f;
  Planes orig = img;
  Rng rng(5);
  add_poisson_noise(img, 0.5, true, rng);
  for (float v : img.data) {
    CHECK(v >= 0.f);
    CHECK(v <= 1.f);
  }
  // Variance of the added noise is scale^2 q / vals (vals = 256) away from the clamps.
  double var = 0, expect = 0;
  for (size_t i = 0; i < img.plane_size(); ++i) {
    const int level = int(i % 256);
    if (level < 64 || level > 191) continue;
    // Gray noise: the field comes from the quantised luma q of the pixel.
    const double d = img.plane(0)[i] - orig.plane(0)[i];
    var += d * d;
    const double q = 0.2989 * orig.plane(0)[i] + 0.587 * orig.plane(1)[i] + 0.114 * orig.plane(2)[i];
    expect += 0.25 * q / 256.0;
  }
  CHECK(var / expect == doctest::Approx(1.0).epsilon(0.05));
  // Gray: one field on all channels, except where a clamp cut one channel.
  size_t same = 0;
  for (size_t i = 0; i < img.plane_size(); ++i)
    same += std::fabs((img.plane(0)[i] - orig.plane(0)[i]) - (img.plane(1)[i] - orig.plane(1)[i])) < 1e-6;
  CHECK(same > img.plane_size() * 9 / 10);
}

TEST_CASE("noise depends only on the generator's seed") {
  Planes a = flat(50, 40, 3, 0.3f), b = a, c = a;
  Rng r1(99), r2(99), r3(100);
  add_gaussian_noise(a, 8, false, r1);
  add_gaussian_noise(b, 8, false, r2);
  add_gaussian_noise(c, 8, false, r3);
  CHECK(a.data == b.data);
  CHECK(a.data != c.data);
}
