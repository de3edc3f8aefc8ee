// pil_resize against Pillow's Image.resize, byte for byte: the goldens in
// tests/fixtures/pil_resize/ were written by Pillow 13.0.0
// (tests/fixtures/make_pil_resize_fixtures.py), whose input formula is
// reproduced here.
#include <doctest/doctest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "rass/core/error.hpp"
#include "rass/degrade/pil_resize.hpp"
#include "rass/io/image_io.hpp"

using rass::Image;
using rass::PilFilter;

namespace {

const std::string kDir = std::string(RASS_FIXTURES) + "/pil_resize/";

// The fixture script's make_input (uint32 wrapping arithmetic).
Image make_input(int w, int h, const std::string& mode) {
  const int ch = int(mode.size());
  const bool has_alpha = mode == "LA" || mode == "RGBA";
  Image img(w, h, ch);
  for (uint32_t y = 0; y < uint32_t(h); ++y)
    for (uint32_t x = 0; x < uint32_t(w); ++x)
      for (int c = 0; c < ch; ++c) {
        const bool is_alpha = has_alpha && c == ch - 1;
        const uint32_t cc = is_alpha ? 3 : uint32_t(c);
        uint32_t hs = (x * 73856093u) ^ (y * 19349663u) ^ (cc * 83492791u);
        hs ^= hs >> 13;
        hs *= 0x5bd1e995u;
        hs ^= hs >> 15;
        uint32_t v = (hs & 63u) + (x * 3 + y * 2 + cc * 50) % 192;
        if (is_alpha) {
          if ((x * y) % 7 == 0) v = 255;
          if ((x + y) % 11 == 0) v = 0;
        }
        img.data[(size_t(y) * w + x) * ch + c] = uint8_t(v);
      }
  return img;
}

PilFilter parse_filter(const std::string& s) {
  if (s == "nearest") return PilFilter::nearest;
  if (s == "box") return PilFilter::box;
  if (s == "bilinear") return PilFilter::bilinear;
  if (s == "hamming") return PilFilter::hamming;
  if (s == "bicubic") return PilFilter::bicubic;
  if (s == "lanczos") return PilFilter::lanczos;
  FAIL("unknown filter " << s);
  return PilFilter::nearest;
}

}  // namespace

TEST_CASE("pil_resize equals Pillow's Image.resize byte for byte (every filter, L/LA/RGB/RGBA)") {
  std::ifstream cases(kDir + "cases.tsv");
  REQUIRE(cases.good());
  std::string line;
  int checked = 0;
  while (std::getline(cases, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream f(line);
    std::string name, mode, filter, golden;
    int iw, ih, ow, oh;
    REQUIRE(bool(f >> name >> iw >> ih >> mode >> filter >> ow >> oh >> golden));
    CAPTURE(name);
    const Image ref = rass::read_image(kDir + golden);
    REQUIRE(ref.channels == int(mode.size()));
    const Image out = rass::pil_resize(make_input(iw, ih, mode), ow, oh, parse_filter(filter));
    REQUIRE(out.width == ow);
    REQUIRE(out.height == oh);
    REQUIRE(out.channels == ref.channels);
    size_t differ = 0, first = 0;
    for (size_t i = 0; i < out.data.size(); ++i)
      if (out.data[i] != ref.data[i] && differ++ == 0) first = i;
    INFO(differ << " samples differ, first at sample " << first << ": got " << int(out.data[first])
                << ", Pillow " << int(ref.data[first]));
    CHECK(differ == 0);
    ++checked;
  }
  CHECK(checked == 180);  // every case of the fixture script
}

TEST_CASE("pil_resize: bicubic weights a = -0.5 on a hand-worked 2 -> 4 upscale") {
  // Output 1's centre is (1 + .5) * 2/4 = 0.75; its taps are inputs 0 and 1
  // (input -1 is outside), at distances (0 + .5) - .75 = -0.25 and 0.75:
  // w(.25) = (1.5*.25 - 2.5)*.25^2 + 1 = 0.8671875,
  // w(.75) = (1.5*.75 - 2.5)*.75^2 + 1 = 0.2265625; normalised by their sum
  // 1.09375: 10*0.792857 + 250*0.207143 = 59.71 -> 60. Output 2 mirrors it:
  // 10*0.207143 + 250*0.792857 = 200.29 -> 200.
  Image in(2, 1, 1);
  in.data = {10, 250};
  const Image out = rass::pil_resize(in, 4, 1, PilFilter::bicubic);
  REQUIRE(out.data.size() == 4);
  CHECK(out.data[1] == 60);
  CHECK(out.data[2] == 200);
}

TEST_CASE("pil_resize refuses 16-bit images and empty sizes") {
  Image in16(4, 4, 1, 16);
  CHECK_THROWS_AS(rass::pil_resize(in16, 2, 2, PilFilter::bicubic), rass::Error);
  Image in(4, 4, 3);
  try {
    rass::pil_resize(in, 0, 3, PilFilter::lanczos);
    FAIL("no error");
  } catch (const rass::Error& e) {
    CHECK(e.code() == rass::ExitCode::usage);
  }
}
