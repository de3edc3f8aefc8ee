// The RAS data pipeline (lib/rass/train/ras_data.hpp): hand-worked sizes,
// crops, pads and flips; determinism of samples; label checks.
#include <doctest/doctest.h>

#include <fstream>
#include <set>

#include "rass/core/error.hpp"
#include "rass/degrade/color_aug.hpp"
#include "rass/io/image_io.hpp"
#include "rass/train/ras_data.hpp"
#include "test_support.hpp"

using namespace rass;
using namespace rass::train;

namespace {

// A w x h image whose red channel is 10 * label + 5 and whose green is x,
// blue y, with the label map (label = (x / 2 + y) % 3).
void write_pair(const std::string& dir, const std::string& name, int w, int h, int raw_offset = 0) {
  Image img(w, h, 3, 8), lab(w, h, 1, 8);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const int l = (x / 2 + y) % 3;
      uint8_t* p = img.u8() + (size_t(y) * w + x) * 3;
      p[0] = uint8_t(10 * l + 5), p[1] = uint8_t(x), p[2] = uint8_t(y);
      lab.u8()[size_t(y) * w + x] = uint8_t(l + raw_offset);
    }
  write_image(dir + "/images/" + name + ".png", img);
  write_image(dir + "/labels/" + name + ".png", lab);
}

RasDataConfig plain_config(const std::string& dir) {
  RasDataConfig c;
  c.images = dir + "/images";
  c.labels = dir + "/labels";
  c.num_classes = 3;
  c.color_aug = false;
  c.preset = "none";
  return c;
}

}  // namespace

TEST_CASE("ras data: the released shortest-edge list, detectron2's output shape, torch's nearest index") {
  // [int(x * 0.1 * 512) for x in range(5, 21)] as Python prints it.
  CHECK(released_min_sizes(512) ==
        std::vector<int>{256, 307, 358, 409, 460, 512, 563, 614, 665, 716, 768, 819, 870, 921, 972, 1024});
  CHECK(released_min_sizes(64) == std::vector<int>{32, 38, 44, 51, 57, 64, 70, 76, 83, 89, 96, 102, 108, 115, 121, 128});
  // h < w: h = 50, w = 200 * 0.5 = 100.
  CHECK(shortest_edge_shape(100, 200, 50, 2048) == std::pair<int, int>{50, 100});
  // 100 x 1000 to 512: 512 x 5120 > 2048, times 0.4: 204.8 -> int(205.3) = 205, 2048.
  CHECK(shortest_edge_shape(100, 1000, 512, 2048) == std::pair<int, int>{205, 2048});
  // 3 -> 5 columns: scale 0.6, floor(0, 0.6, 1.2, 1.8, 2.4) = 0 0 1 1 2.
  LabelMap l{3, 1, {7, 8, 9}};
  CHECK(resize_label_nearest(l, 5, 1).v == std::vector<int32_t>{7, 7, 8, 8, 9});
  // 5 -> 2: scale 2.5: floor(0, 2.5) = 0, 2.
  LabelMap l5{5, 1, {1, 2, 3, 4, 5}};
  CHECK(resize_label_nearest(l5, 2, 1).v == std::vector<int32_t>{1, 3});
}

TEST_CASE("ras data: crop, flip and pad (128 in the image, ignore in the label)") {
  Image img(4, 3, 3, 8);
  LabelMap lab{4, 3, std::vector<int32_t>(12)};
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 4; ++x) {
      for (int c = 0; c < 3; ++c) img.u8()[(size_t(y) * 4 + x) * 3 + c] = uint8_t(10 * y + x);
      lab.v[size_t(y) * 4 + x] = 10 * y + x;
    }
  Image io;
  LabelMap lo;
  // Crop x 1..2, y 1..2, mirrored, padded to 4 x 4.
  crop_flip_pad(img, lab, 1, 1, 2, 2, true, 4, 255, io, lo);
  REQUIRE(io.width == 4);
  REQUIRE(io.height == 4);
  const std::vector<int32_t> want{12, 11, 255, 255,  //
                                  22, 21, 255, 255,  //
                                  255, 255, 255, 255, 255, 255, 255, 255};
  CHECK(lo.v == want);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) {
      const int expect = want[size_t(y) * 4 + x] == 255 ? 128 : want[size_t(y) * 4 + x];
      for (int c = 0; c < 3; ++c) CHECK(int(io.u8()[(size_t(y) * 4 + x) * 3 + c]) == expect);
    }
  // Without flip.
  crop_flip_pad(img, lab, 1, 1, 2, 2, false, 4, 255, io, lo);
  CHECK(lo.v[0] == 11);
  CHECK(lo.v[1] == 12);
  CHECK(int(io.u8()[0]) == 11);
}

TEST_CASE("ras data: samples are keyed, flips move image and label together, pads are 128 / 255") {
  test::TempDir t;
  std::filesystem::create_directories(t.path + "/images");
  std::filesystem::create_directories(t.path + "/labels");
  write_pair(t.path, "a", 24, 16);
  write_pair(t.path, "b", 16, 20);
  RasDataConfig c = plain_config(t.path);
  c.crop_size = 32;         // larger than any image: the whole image, padded
  c.min_sizes = {16};       // a's short side: no resize for a
  RasData d(c, 7);
  REQUIRE(d.size() == 2);
  CHECK(d.key(0) == "a");
  std::set<bool> flips;
  for (int64_t step = 0; step < 12; ++step) {
    const RasSample s = d.sample(0, step, 3);
    REQUIRE(s.hq.width == 32);
    REQUIRE(s.label.width == 32);
    // The image is 24 x 16 at the top left; the rest is padding.
    bool flipped = s.hq.u8()[1] != 0;  // green = x: 0 at the left unless mirrored
    flips.insert(flipped);
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) {
        const uint8_t* p = s.hq.u8() + (size_t(y) * 32 + x) * 3;
        const int32_t l = s.label.at(x, y);
        if (x >= 24 || y >= 16) {
          CHECK(l == 255);
          CHECK((p[0] == 128 && p[1] == 128 && p[2] == 128));
        } else {
          const int sx = flipped ? 23 - x : x;
          CHECK(int(p[1]) == sx);
          CHECK(l == (sx / 2 + y) % 3);
          CHECK(int(p[0]) == 10 * l + 5);  // the pixel carries its own label
        }
      }
    CHECK(s.classes == std::vector<int>{0, 1, 2});
    CHECK(s.lq.data == s.hq.data);  // preset "none"
  }
  CHECK(flips.size() == 2);
  // A pure function of (seed, item, step, sample).
  RasData d2(c, 7);
  CHECK(d.sample(1, 5, 2).hq.data == d2.sample(1, 5, 2).hq.data);
}

TEST_CASE("ras data: resized crops keep labels of the image; the LQ is degraded, keyed") {
  test::TempDir t;
  std::filesystem::create_directories(t.path + "/images");
  std::filesystem::create_directories(t.path + "/labels");
  write_pair(t.path, "a", 80, 60);
  RasDataConfig c = plain_config(t.path);
  c.crop_size = 64;
  c.preset = "rass";
  c.color_aug = true;
  RasData d(c, 1);
  const RasSample s1 = d.sample(0, 0, 0), s2 = d.sample(0, 0, 0), s3 = d.sample(0, 1, 0);
  CHECK(s1.lq.data == s2.lq.data);
  CHECK(s1.hq.data == s2.hq.data);
  CHECK(s1.lq.data != s1.hq.data);
  CHECK(s1.hq.data != s3.hq.data);
  REQUIRE(s1.lq.width == 64);
  REQUIRE(s1.lq.height == 64);
  for (int32_t v : s1.label.v) CHECK((v == 255 || (v >= 0 && v < 3)));
}

TEST_CASE("ras data: labels outside the classes name the file; reduce_zero_label maps 0 to ignore") {
  test::TempDir t;
  std::filesystem::create_directories(t.path + "/images");
  std::filesystem::create_directories(t.path + "/labels");
  write_pair(t.path, "a", 8, 8, 1);  // raw labels 1..3
  RasDataConfig c = plain_config(t.path);
  c.crop_size = 8;
  RasData d(c, 0);
  try {
    d.check_labels();
    FAIL("a label 3 with 3 classes was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::bad_input);
    CHECK(std::string(e.what()).find("labels/a.png") != std::string::npos);
    CHECK(std::string(e.what()).find("label 3") != std::string::npos);
  }
  c.reduce_zero_label = true;  // 1..3 -> 0..2
  RasData r(c, 0);
  r.check_labels();
  const auto [img, lab] = r.load(0);
  CHECK(lab.at(0, 0) == 0);
  CHECK(lab.at(2, 0) == 1);
  // Raw 0 -> ignore, 255 stays ignore.
  Image raw(2, 1, 1, 8);
  raw.u8()[0] = 0, raw.u8()[1] = 255;
  Image im(2, 1, 3, 8);
  write_image(t.path + "/images/z.png", im);
  write_image(t.path + "/labels/z.png", raw);
  RasData z(c, 0);
  const auto [zi, zl] = z.load(1);
  CHECK(zl.v == std::vector<int32_t>{255, 255});
}

TEST_CASE("colour augmentation: brightness and contrast on uint8 as the reference (float32, clip, truncate)") {
  Image img(2, 1, 3, 8);
  const uint8_t px[6] = {250, 100, 0, 101, 3, 255};
  std::copy(px, px + 6, img.u8());
  degrade::ColorAugDraws d;
  d.brightness = true;
  d.beta = 10.7;  // 250 + 10.7 -> 255 (clip), 100 -> 110.7 -> 110, 0 -> 10
  Image o = degrade::apply_color_aug(img, d);
  CHECK(std::vector<int>(o.u8(), o.u8() + 6) == std::vector<int>{255, 110, 10, 111, 13, 255});
  degrade::ColorAugDraws c;
  c.contrast = true;
  c.alpha = 0.5;  // 101 * 0.5 = 50.5 -> 50, 3 -> 1, 255 -> 127
  o = degrade::apply_color_aug(img, c);
  CHECK(std::vector<int>(o.u8(), o.u8() + 6) == std::vector<int>{125, 50, 0, 50, 1, 127});
  // Hue by a full turn (180) is the identity after OpenCV's round trip on gray pixels.
  Image gray(1, 1, 3, 8);
  gray.u8()[0] = gray.u8()[1] = gray.u8()[2] = 77;
  degrade::ColorAugDraws h;
  h.hue = true;
  h.hue_shift = 17;
  o = degrade::apply_color_aug(gray, h);
  CHECK(std::vector<int>(o.u8(), o.u8() + 3) == std::vector<int>{77, 77, 77});  // no saturation: hue moves nothing
}

TEST_CASE("ras data: a JSON-lines manifest with image and label fields; a pair without its label names the file") {
  test::TempDir t;
  std::filesystem::create_directories(t.path + "/images");
  std::filesystem::create_directories(t.path + "/labels");
  write_pair(t.path, "a", 8, 8);
  write_pair(t.path, "b", 8, 8);
  {
    std::ofstream m(t.path + "/train.jsonl");
    m << "{\"image\": \"" << t.path << "/images/b.png\", \"label\": \"" << t.path << "/labels/b.png\"}\n";
    m << "{\"image\": \"" << t.path << "/images/a.png\", \"label\": \"" << t.path << "/labels/a.png\"}\n";
  }
  RasDataConfig c = plain_config(t.path);
  c.images = c.labels = "";
  c.manifest = t.path + "/train.jsonl";
  c.crop_size = 8;
  RasData d(c, 0);
  REQUIRE(d.size() == 2);
  CHECK(d.key(0) == "b");  // manifest order
  d.check_labels();
  // Directories: an image without a label is a bad pair, named.
  std::filesystem::remove(t.path + "/labels/a.png");
  try {
    RasData bad(plain_config(t.path), 0);
    FAIL("a missing label was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::bad_input);
    INFO(e.what());
    CHECK(std::string(e.what()).find("a.png") != std::string::npos);
  }
}
