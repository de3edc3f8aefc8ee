// rass-train plot: axis mapping and log reading against hand values, and a
// drawn PNG whose curve pixels sit where the documented layout puts them.
#include <doctest/doctest.h>

#include <cfloat>
#include <cmath>
#include <limits>
#include <string>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/io/image_io.hpp"
#include "rass/train/plot.hpp"
#include "rass/train/plot_data.hpp"
#include "test_support.hpp"

using namespace rass;
using namespace rass::train;

namespace {

std::string constant_log(double v) {
  std::string s;
  for (int step = 0; step <= 100; step += 10)
    s += "{\"step\":" + std::to_string(step) + ",\"loss\":" + std::to_string(v) + ",\"lr\":0.0001,\"note\":\"x\"}\n";
  return s;
}

struct Px {
  int r, g, b;
  bool operator==(const Px& o) const { return r == o.r && g == o.g && b == o.b; }
};
Px pixel_at(const Image& img, int x, int y) {
  const uint8_t* p = img.u8() + (size_t(y) * img.width + x) * img.channels;
  return {p[0], p[1], p[2]};
}
const Px kBlue{31, 119, 180}, kOrange{255, 127, 14}, kWhite{255, 255, 255};

}  // namespace

TEST_CASE("plot axes: nice limits, ticks and the value-to-pixel map (hand values)") {
  // 0.5 alone: widened by 10% to [0.45, 0.55]; step 0.1/5 = 0.02; limits rounded out to 0.44, 0.56.
  const Axis a = nice_axis(0.5, 0.5, false);
  CHECK(a.lo == doctest::Approx(0.44));
  CHECK(a.hi == doctest::Approx(0.56));
  REQUIRE(a.ticks.size() == 7);
  CHECK(a.ticks[3] == doctest::Approx(0.5));
  // 0.5 sits halfway between 0.44 and 0.56: halfway from pixel 254 (lo) to 34 (hi).
  CHECK(axis_to_pixel(a, 0.5, 254, 34) == doctest::Approx(144));
  const Axis s = nice_axis(0, 100, false);  // span 100 / 5 = 20
  CHECK(s.lo == 0);
  CHECK(s.hi == 100);
  CHECK(s.ticks == std::vector<double>{0, 20, 40, 60, 80, 100});
  CHECK(axis_to_pixel(s, 25, 80, 376) == doctest::Approx(80 + 0.25 * 296));
  const Axis l = nice_axis(0.3, 47, true);  // decades around the data
  CHECK(l.lo == doctest::Approx(0.1));
  CHECK(l.hi == doctest::Approx(100));
  CHECK(l.ticks.size() == 4);
  CHECK(axis_to_pixel(nice_axis(1, 100, true), 10, 0, 200) == doctest::Approx(100));
  CHECK(nice_axis(1, 100, true).ticks == std::vector<double>{1, 2, 5, 10, 20, 50, 100});
  CHECK_THROWS_AS(nice_axis(0, 1, true), Error);
  // Near the double range the span (2e308) is past it: its half 1e308 steps
  // by 2e307 (1e308 / 5), doubled to 4e307; limits -1.2e308 and 1.2e308.
  const Axis huge = nice_axis(-1e308, 1e308, false);
  CHECK(huge.lo == doctest::Approx(-1.2e308));
  CHECK(huge.hi == doctest::Approx(1.2e308));
  CHECK(huge.ticks.size() == 7);
  CHECK(axis_to_pixel(huge, 0, 0, 200) == doctest::Approx(100));
  CHECK(axis_to_pixel(huge, 1e308, 0, 240) == doctest::Approx(220));
  // Past that a limit itself leaves the range: 0..1.7e308 on halves is
  // 0..8.5e307, step 2e307 (1.7e307 rounded up), limits 0 and 1e308,
  // doubled: the top past the range is held at the largest double, the
  // tick there (2e308) left out; 0, 4e307, 8e307, 1.2e308, 1.6e308 stay.
  const Axis top = nice_axis(0, 1.7e308, false);
  CHECK(top.lo == 0);
  CHECK(top.hi == DBL_MAX);
  REQUIRE(top.ticks.size() == 5);
  CHECK(top.ticks[4] == doctest::Approx(1.6e308));
  const Axis both = nice_axis(-1.7e308, 1.7e308, false);  // step 5e307 on halves: ticks -1e308, 0, 1e308
  CHECK(both.lo == -DBL_MAX);
  REQUIRE(both.ticks.size() == 3);
  CHECK(both.ticks[0] == doctest::Approx(-1e308));
  CHECK(both.ticks[1] == 0);
  CHECK(both.ticks[2] == doctest::Approx(1e308));
  CHECK(std::isfinite(axis_to_pixel(both, 1.7e308, 0, 200)));
  CHECK(nice_axis(1.7e308, 1.7e308, false).ticks.size() == 3);  // a constant near the top: padded on halves
  const Box b = panel_box(1, 2, 400, 600);  // the second of two 300-pixel panels
  CHECK(b.left == 80);
  CHECK(b.right == 376);
  CHECK(b.top == 334);
  CHECK(b.bottom == 554);
}

TEST_CASE("plot data: moving average and log reading") {
  CHECK(moving_average({1, 2, 3, 4, 5}, 2) == std::vector<double>{1, 1.5, 2.5, 3.5, 4.5});
  CHECK(moving_average({1, 2, 3}, 0) == std::vector<double>{1, 2, 3});
  // A gap (NaN) stays one and the average starts afresh after it:
  // 1, (1+3)/2, gap, 10, (10+20)/2, (20+30)/2.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> gapped = moving_average({1, 3, nan, 10, 20, 30}, 2);
  REQUIRE(gapped.size() == 6);
  CHECK(gapped[0] == 1);
  CHECK(gapped[1] == 2);
  CHECK(std::isnan(gapped[2]));
  CHECK(gapped[3] == 10);
  CHECK(gapped[4] == 15);
  CHECK(gapped[5] == 25);
  test::TempDir dir;
  write_file_atomic(dir / "log.jsonl",
                    "{\"step\":1,\"loss\":2.5,\"l_region\":0.5,\"tag\":\"a\",\"skipped\":false}\n\n"
                    "{\"step\":2,\"loss\":null,\"lr\":1e-4,\"skipped\":true}\r\n");
  const TrainingLog log = read_training_log(dir / "log.jsonl");
  CHECK(log.records == 2);
  CHECK(log.terms == std::vector<std::string>{"loss", "l_region", "lr"});
  CHECK(log.flags == std::vector<std::string>{"skipped"});
  const Series& loss = log.series.at("loss");
  CHECK(loss.x == std::vector<double>{1, 2});
  REQUIRE(loss.y.size() == 2);
  CHECK(loss.y[0] == 2.5);
  CHECK(std::isnan(loss.y[1]));  // null is a gap
  CHECK(log.series.at("lr").x == std::vector<double>{2});
  CHECK(log.series.at("skipped").y == std::vector<double>{0, 1});
  write_file_atomic(dir / "bad.jsonl", "{\"step\":1,\"loss\":1}\n{\"step\":2,\"loss\":\n");
  try {
    read_training_log(dir / "bad.jsonl");
    FAIL("a malformed line must be refused");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::bad_input);
    CHECK(std::string(e.what()).find(dir / "bad.jsonl:2: not JSON") == 0);
  }
  write_file_atomic(dir / "nostep.jsonl", "{\"loss\":1}\n");
  CHECK_THROWS_WITH_AS(read_training_log(dir / "nostep.jsonl"), doctest::Contains("nostep.jsonl:1: no numeric \"step\""),
                       Error);
  write_file_atomic(dir / "empty.jsonl", "\n");
  CHECK_THROWS_AS(read_training_log(dir / "empty.jsonl"), Error);
  CHECK_THROWS_AS(read_training_log(dir / "missing.jsonl"), Error);
}

TEST_CASE("plot: a constant loss is a horizontal line at the documented row") {
  test::TempDir dir;
  write_file_atomic(dir / "a.jsonl", constant_log(0.5));
  PlotJob job;
  job.logs = {dir / "a.jsonl"};
  job.output = dir / "curves.png";
  job.terms = {"loss"};
  job.width = 400;
  job.height = 300;
  job.quiet = true;
  plot_training_log(job);
  const Image img = read_image(job.output);
  REQUIRE(img.width == 400);
  REQUIRE(img.height == 300);
  REQUIRE(img.channels == 3);
  // One panel: plot area x 80..376, y 34..254; y axis 0.44..0.56 (see above), so
  // 0.5 is row 144; the 2-pixel line covers rows 143 and 144 exactly.
  for (int x : {100, 170, 230, 300}) {
    CAPTURE(x);
    CHECK(pixel_at(img, x, 143) == kBlue);
    CHECK(pixel_at(img, x, 144) == kBlue);
    CHECK(pixel_at(img, x, 120) == kWhite);
    CHECK(pixel_at(img, x, 170) == kWhite);
  }
  CHECK(!(pixel_at(img, 40, 144) == kBlue));  // left of the plot area: tick labels, no curve
}

TEST_CASE("plot: a null breaks the curve; a boolean is drawn only when named") {
  // The constant 0.5 of constant_log, null at steps 40 and 50 (as grad_norm
  // at skipped fp16 steps): no line from step 30 (x 80 + 0.3 * 296 = 168.8)
  // to step 60 (257.6); the line stays on row 143/144 elsewhere.
  std::string text;
  for (int step = 0; step <= 100; step += 10)
    text += "{\"step\":" + std::to_string(step) + ",\"loss\":" + (step == 40 || step == 50 ? "null" : "0.5") +
            ",\"skipped\":" + (step == 40 || step == 50 ? "true" : "false") + "}\n";
  test::TempDir dir;
  write_file_atomic(dir / "gap.jsonl", text);
  PlotJob job;
  job.logs = {dir / "gap.jsonl"};
  job.output = dir / "gap.png";
  job.width = 400;
  job.height = 0;  // 300 per panel: the default draws loss alone (skipped is a flag)
  job.quiet = true;
  job.smooth = 3;  // the smoothed curve breaks too
  plot_training_log(job);
  const Image img = read_image(job.output);
  REQUIRE(img.height == 300);
  for (int x : {100, 150, 290, 350}) {
    CAPTURE(x);
    CHECK(pixel_at(img, x, 143) == kBlue);
  }
  for (int x : {190, 213, 240}) {
    CAPTURE(x);
    for (int y = 34; y < 254; ++y) CHECK(pixel_at(img, x, y).b - pixel_at(img, x, y).r < 40);
  }
  // Named, the flag gets its panel: 0/1 on an axis 0..1 (step 0.2).
  job.terms = {"loss", "skipped"};
  job.smooth = 0;
  job.output = dir / "flag.png";
  plot_training_log(job);
  const Image flag = read_image(job.output);
  REQUIRE(flag.height == 600);
  // Second panel: y 334 (1) to 554 (0), drawn over the frame: 1 at steps 40
  // and 50 (x 198.4 to 228), 0 elsewhere (e.g. step 20, x 139.2).
  CHECK(pixel_at(flag, 213, 334) == kBlue);
  CHECK(pixel_at(flag, 139, 553) == kBlue);
  CHECK(!(pixel_at(flag, 139, 334) == kBlue));
}

TEST_CASE("plot axes at the ends of the double range; keys numeric or boolean over the whole log") {
  // Subnormal values (a 1-2-5 step of 1e-324 underflowed to 0): drawn as a constant near 0.
  const Axis sub = nice_axis(5e-324, 1e-323, false);
  CHECK(sub.lo < 0);
  CHECK(sub.hi > 0);
  CHECK(!sub.ticks.empty());
  CHECK(std::isfinite(axis_to_pixel(sub, 1e-323, 0, 100)));
  // Log axes: decades held to 1e-307..1e308 (10^-324 is 0, 10^309 infinite),
  // at most about a dozen ticks over 300 decades.
  const Axis tiny = nice_axis(5e-324, 1, true);
  CHECK(tiny.lo == doctest::Approx(1e-307));
  CHECK(tiny.hi == 1);
  CHECK(tiny.ticks.size() <= 14);
  const Axis big = nice_axis(1, 1.7e308, true);
  CHECK(big.lo == 1);
  CHECK(big.hi == doctest::Approx(1e308));
  CHECK(big.ticks.size() <= 14);
  CHECK(std::isfinite(axis_to_pixel(big, 1e300, 0, 100)));

  test::TempDir dir;
  // x: a boolean first, numbers after: a term (its booleans 0/1); skipped:
  // null, then booleans only: a flag.
  write_file_atomic(dir / "mixed.jsonl",
                    "{\"step\":1,\"x\":true,\"skipped\":null,\"loss\":1}\n"
                    "{\"step\":2,\"x\":0.7,\"skipped\":true,\"loss\":1}\n"
                    "{\"step\":3,\"x\":5,\"skipped\":false,\"loss\":1}\n");
  const TrainingLog log = read_training_log(dir / "mixed.jsonl");
  CHECK(log.terms == std::vector<std::string>{"x", "loss"});
  CHECK(log.flags == std::vector<std::string>{"skipped"});
  CHECK(log.series.at("x").y == std::vector<double>{1, 0.7, 5});
}

TEST_CASE("plot: a dense log keeps its extremes (each pixel column's lowest and highest points)") {
  // 200000 steps of 0.5 with one step at 1.0 (step 100000) on a 400-pixel
  // panel: the spike's column reaches the top of the axis (0.5..1 on
  // 0.5..1: row 34), the curve stays on 0.5 (row 254) elsewhere.
  std::string text;
  text.reserve(200000 * 32);
  for (int step = 0; step < 200000; ++step)
    text += "{\"step\":" + std::to_string(step) + ",\"loss\":" + (step == 100000 ? "1" : "0.5") + "}\n";
  test::TempDir dir;
  write_file_atomic(dir / "dense.jsonl", text);
  PlotJob job;
  job.logs = {dir / "dense.jsonl"};
  job.output = dir / "dense.png";
  job.width = 400;
  job.height = 300;
  job.quiet = true;
  plot_training_log(job);
  const Image img = read_image(job.output);
  // Step 100000 of 0..199999 (axis 0..200000): x = 80 + 0.5 * 296 = 228.
  bool top = false;
  for (int x = 226; x <= 230; ++x) top = top || pixel_at(img, x, 36) == kBlue;
  CHECK(top);
  CHECK(pixel_at(img, 150, 36) == kWhite);
  CHECK(pixel_at(img, 150, 253) == kBlue);
}

TEST_CASE("plot: log y, smoothing, overlaid logs, every term, SVG and PDF") {
  test::TempDir dir;
  write_file_atomic(dir / "up.jsonl", "{\"step\":0,\"loss\":1}\n{\"step\":50,\"loss\":10}\n{\"step\":100,\"loss\":100}\n");
  PlotJob job;
  job.logs = {dir / "up.jsonl"};
  job.output = dir / "log.png";
  job.width = 400;
  job.height = 300;
  job.log_y = true;
  job.quiet = true;
  plot_training_log(job);
  // Decades 1..100: 10 is half-way up (row 144) at step 50 (x 80 + 148 = 228).
  // The line is slanted there, so its pixels are blends: the blue-dominated
  // pixels of column 228 centre on row 144 (pixel centres are at row + 0.5).
  const Image lg = read_image(job.output);
  double rows = 0, n = 0;
  for (int y = 34; y < 254; ++y) {
    const Px p = pixel_at(lg, 228, y);
    if (p.b - p.r > 40) rows += y + 0.5, ++n;
  }
  REQUIRE(n > 0);
  CHECK(rows / n == doctest::Approx(144).epsilon(0.01));

  write_file_atomic(dir / "a.jsonl", constant_log(0.5));
  write_file_atomic(dir / "b.jsonl", constant_log(0.3));
  job = PlotJob{};
  job.logs = {dir / "a.jsonl", dir / "b.jsonl"};
  job.output = dir / "two.png";
  job.smooth = 3;
  job.quiet = true;
  plot_training_log(job);
  const Image two = read_image(job.output);
  CHECK(two.width == 1200);
  CHECK(two.height == 600);  // every numeric term: loss and lr, 300 pixels each
  size_t blue = 0, orange = 0;
  for (int y = 0; y < two.height; ++y)
    for (int x = 0; x < two.width; ++x) {
      blue += pixel_at(two, x, y) == kBlue;
      orange += pixel_at(two, x, y) == kOrange;
    }
  CHECK(blue > 500);
  CHECK(orange > 500);

  job.output = dir / "two.svg";
  plot_training_log(job);
  const std::vector<uint8_t> svg = read_file_bytes(job.output);
  CHECK(std::string(svg.begin(), svg.begin() + 5) == "<?xml");
  job.output = dir / "two.pdf";
  plot_training_log(job);
  const std::vector<uint8_t> pdf = read_file_bytes(job.output);
  CHECK(std::string(pdf.begin(), pdf.begin() + 4) == "%PDF");
}

TEST_CASE("plot: bad requests") {
  test::TempDir dir;
  write_file_atomic(dir / "a.jsonl", constant_log(0.5));
  PlotJob job;
  job.logs = {dir / "a.jsonl"};
  job.quiet = true;
  job.output = dir / "x.gif";
  CHECK_THROWS_WITH_AS(plot_training_log(job), doctest::Contains(".png, .svg or .pdf"), Error);
  job.output = dir / "x.png";
  job.terms = {"l_pixel"};
  try {
    plot_training_log(job);
    FAIL("an absent term must be refused");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::bad_input);
    CHECK(std::string(e.what()).find("a.jsonl: no term \"l_pixel\" (the log has: loss, lr)") != std::string::npos);
  }
  CHECK(!file_exists(dir / "x.png"));  // nothing written
  // More terms than fit the largest automatic height (16384 / 120 pixels
  // a panel): a usage error naming --terms, where cairo's own failed.
  std::string wide;
  for (int step = 0; step < 3; ++step) {
    wide += "{\"step\":" + std::to_string(step);
    for (int t = 0; t < 200; ++t) wide += ",\"t" + std::to_string(t) + "\":" + std::to_string(t + step);
    wide += "}\n";
  }
  write_file_atomic(dir / "wide.jsonl", wide);
  job.logs = {dir / "wide.jsonl"};
  job.terms = {};
  CHECK_THROWS_WITH_AS(plot_training_log(job),
                       "the largest height, 16384, leaves too little room for 200 panels (pick fewer terms with --terms)",
                       Error);
  CHECK(!file_exists(dir / "x.png"));
  job.terms = {"t1", "t2", "t1"};  // a term given twice is drawn once
  plot_training_log(job);
  const Image two = read_image(dir / "x.png");
  CHECK(two.height == 600);
  job.logs = {dir / "a.jsonl"};
  job.terms = {};
  // Never over its input, however the path is spelled (a log oddly named .png).
  write_file_atomic(dir / "log.png", constant_log(0.5));
  job.logs = {dir / "log.png"};
  job.output = dir.path + "/./log.png";
  CHECK_THROWS_AS(plot_training_log(job), Error);
  CHECK(read_file_bytes(dir / "log.png").size() == constant_log(0.5).size());
}
