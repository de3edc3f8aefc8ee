// Resize index/weight rules of torch F.interpolate, checked on values worked by hand.
#include <doctest/doctest.h>

#include "rass/degrade/resize.hpp"

using namespace rass::degrade;

static Planes row(std::initializer_list<float> v) {
  Planes p(int(v.size()), 1, 1);
  std::copy(v.begin(), v.end(), p.data.begin());
  return p;
}

TEST_CASE("bilinear x2 of [0, 1]: src = (i + .5)/2 - .5 clamped at 0") {
  Planes out = resize(row({0, 1}), 4, 1, ResizeMode::bilinear);
  REQUIRE(out.width == 4);
  CHECK(out.data[0] == doctest::Approx(0.0));
  CHECK(out.data[1] == doctest::Approx(0.25));
  CHECK(out.data[2] == doctest::Approx(0.75));
  CHECK(out.data[3] == doctest::Approx(1.0));
}

TEST_CASE("area is adaptive average pooling") {
  Planes a = resize(row({1, 2, 3, 4}), 2, 1, ResizeMode::area);
  CHECK(a.data[0] == doctest::Approx(1.5));
  CHECK(a.data[1] == doctest::Approx(3.5));
  // 3 -> 2: bins [0, 2) and [1, 3) overlap.
  Planes b = resize(row({1, 2, 3}), 2, 1, ResizeMode::area);
  CHECK(b.data[0] == doctest::Approx(1.5));
  CHECK(b.data[1] == doctest::Approx(2.5));
  // 2 -> 3 (upsampling): bins [0,1), [0,2), [1,2).
  Planes c = resize(row({1, 3}), 3, 1, ResizeMode::area);
  CHECK(c.data[0] == doctest::Approx(1.0));
  CHECK(c.data[1] == doctest::Approx(2.0));
  CHECK(c.data[2] == doctest::Approx(3.0));
}

TEST_CASE("bicubic: Keys A=-0.75 weights at t = 0.5 are (-3/32, 19/32, 19/32, -3/32)") {
  // 4 -> 2 downscale: output 0 maps to src = 2*(0.5) - 0.5 = 0.5, taps -1..2 clamped.
  Planes out = resize(row({0, 0, 1, 0}), 2, 1, ResizeMode::bicubic);
  // taps at indices clamp(-1)=0, 0, 1, 2 -> values 0, 0, 0, 1 -> weight of the last tap.
  CHECK(out.data[0] == doctest::Approx(-3.0 / 32));
  // output 1: src = 2.5, taps 1, 2, 3, 4->3: values 0, 1, 0, 0 -> weight of the second tap.
  CHECK(out.data[1] == doctest::Approx(19.0 / 32));
}

TEST_CASE("scale_factor mapping differs from size mapping, as in torch") {
  // 10 px with factor 0.35: size floor(3.5) = 3, but coordinates scale by 1/0.35, not 10/3.
  Planes in(10, 1, 1);
  for (int i = 0; i < 10; ++i) in.data[i] = float(i);
  Planes by_factor = resize(in, 3, 1, ResizeMode::bilinear, 0.35);
  Planes by_size = resize(in, 3, 1, ResizeMode::bilinear);
  // src(0) = (0.5)/0.35 - 0.5 = 0.928571...; by size: 0.5*10/3 - 0.5 = 1.1666...
  CHECK(by_factor.data[0] == doctest::Approx(0.5 / 0.35 - 0.5).epsilon(1e-5));
  CHECK(by_size.data[0] == doctest::Approx(0.5 * 10 / 3 - 0.5).epsilon(1e-5));
}

TEST_CASE("constant images stay constant and identity sizes are exact") {
  Planes c(37, 23, 3);
  std::fill(c.data.begin(), c.data.end(), 0.42f);
  for (ResizeMode m : {ResizeMode::area, ResizeMode::bilinear, ResizeMode::bicubic, ResizeMode::nearest}) {
    Planes o = resize(c, 61, 11, m);
    CHECK(o.width == 61);
    CHECK(o.height == 11);
    CHECK(o.channels == 3);
    for (float v : o.data) CHECK(v == doctest::Approx(0.42f).epsilon(1e-6));
  }
  Planes g(5, 4, 1);
  for (size_t i = 0; i < g.data.size(); ++i) g.data[i] = float(i * i % 7);
  for (ResizeMode m : {ResizeMode::area, ResizeMode::bilinear, ResizeMode::bicubic}) CHECK(resize(g, 5, 4, m).data == g.data);
}
