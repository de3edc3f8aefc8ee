// SAM's automatic mask generator, its torch-free parts: crop boxes, point
// grids, the crop-edge filter and the small-region clean-up, against
// segment-anything's utils/amg.py and OpenCV (tests/core/make_sam_amg_fixture.py)
// and against cases worked by hand.
#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rass/core/mask_regions.hpp"
#include "rass/core/sam_crops.hpp"

using namespace rass;

namespace {

nlohmann::json fixture() {
  std::ifstream f(std::string(RASS_FIXTURES) + "/core/sam_amg.json");
  REQUIRE(f.good());
  return nlohmann::json::parse(f);
}

// Rows of '0'/'1' as a row-major 0/1 mask.
std::vector<uint8_t> bits(const nlohmann::json& rows, int& w, int& h) {
  h = int(rows.size());
  w = h ? int(rows[0].get<std::string>().size()) : 0;
  std::vector<uint8_t> m;
  for (const auto& r : rows)
    for (char c : r.get<std::string>()) m.push_back(uint8_t(c == '1'));
  return m;
}

}  // namespace

TEST_CASE("SAM crop boxes equal generate_crop_boxes") {
  const nlohmann::json j = fixture();
  REQUIRE(j["crops"].size() >= 5);
  for (const auto& c : j["crops"]) {
    INFO(c["width"], "x", c["height"], " layers ", c["layers"]);
    const std::vector<SamCrop> got = sam_crop_boxes(c["width"], c["height"], c["layers"], c["overlap"]);
    REQUIRE(got.size() == c["boxes"].size());
    for (size_t i = 0; i < got.size(); ++i) {
      for (size_t q = 0; q < 4; ++q) CHECK(got[i].box[q] == c["boxes"][i][q].get<int64_t>());
      CHECK(got[i].layer == c["layer"][i].get<int>());
    }
  }
  // By hand: 1500 x 1000, one layer: overlap int(512 / 1500 * 1000) = 341,
  // crop width ceil((341 + 1500) / 2) = 921, height ceil((341 + 1000) / 2) = 671.
  const std::vector<SamCrop> one = sam_crop_boxes(1500, 1000, 1, 512.0 / 1500.0);
  REQUIRE(one.size() == 5);
  CHECK((one[2].box == std::array<int64_t, 4>{0, 330, 921, 1000}));
  CHECK((one[3].box == std::array<int64_t, 4>{580, 0, 1500, 671}));
}

TEST_CASE("SAM point grids equal build_all_layer_point_grids") {
  const nlohmann::json j = fixture();
  for (const auto& g : j["grids"]) {
    INFO(g["points_per_side"], " layers ", g["layers"], " downscale ", g["downscale"]);
    for (int layer = 0; layer <= g["layers"].get<int>(); ++layer) {
      const int n = sam_layer_points_per_side(g["points_per_side"], layer, g["downscale"]);
      const auto& want = g["points"][size_t(layer)];
      REQUIRE(size_t(n) * size_t(n) == want.size());
      const std::vector<std::array<double, 2>> got = sam_point_grid(n);
      for (size_t i = 0; i < got.size(); ++i) {
        CHECK(got[i][0] == want[i][0].get<double>());  // bit for bit: numpy's linspace arithmetic
        CHECK(got[i][1] == want[i][1].get<double>());
      }
    }
  }
  // By hand: 4 per side at 1/8, 3/8, 5/8, 7/8, x fastest.
  const auto four = sam_point_grid(4);
  CHECK(four[1][0] == 0.375);
  CHECK(four[1][1] == 0.125);
  CHECK(four[15][0] == 0.875);
}

TEST_CASE("SAM crop-edge filter equals is_box_near_crop_edge") {
  const nlohmann::json j = fixture();
  size_t near = 0;
  for (const auto& c : j["near"]) {
    const std::array<int64_t, 4> box{c["box"][0], c["box"][1], c["box"][2], c["box"][3]};
    const std::array<int64_t, 4> crop{c["crop"][0], c["crop"][1], c["crop"][2], c["crop"][3]};
    INFO(c.dump());
    CHECK(sam_box_near_crop_edge(box, crop, c["width"], c["height"]) == c["near"].get<bool>());
    near += c["near"].get<bool>();
  }
  CHECK(near > 10);
  CHECK(near + 10 < j["near"].size());
  // By hand, crop (100, 0, 300, 200) of a 300 x 200 image: a left side 20
  // pixels in is near (|120 - 100| <= 20), 21 pixels in is not; the right
  // side is the image's, so it never counts.
  CHECK(sam_box_near_crop_edge({20, 50, 150, 120}, {100, 0, 300, 200}, 300, 200));
  CHECK(!sam_box_near_crop_edge({21, 50, 199, 120}, {100, 0, 300, 200}, 300, 200));
}

TEST_CASE("8-connected regions are numbered as OpenCV numbers them") {
  const nlohmann::json j = fixture();
  for (const auto& c : j["regions"]) {
    int w = 0, h = 0;
    const std::vector<uint8_t> m = bits(c["mask"], w, h);
    std::vector<int32_t> labels;
    std::vector<int64_t> sizes;
    const int n = label_regions_8(m.data(), w, h, labels, sizes);
    int most = 0;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const int want = c["labels"][size_t(y)][size_t(x)];
        most = std::max(most, want);
        CHECK(labels[size_t(y) * size_t(w) + size_t(x)] == want);
      }
    CHECK(n == most);
  }
  // By hand: diagonal neighbours join; (row 1, col 0) comes before (row 0,
  // col 5) because its 2x2 block does.
  const std::vector<uint8_t> m{0, 0, 0, 0, 0, 1,  //
                               1, 0, 0, 0, 1, 0};
  std::vector<int32_t> labels;
  std::vector<int64_t> sizes;
  REQUIRE(label_regions_8(m.data(), 6, 2, labels, sizes) == 2);
  CHECK(labels[6] == 1);
  CHECK(labels[5] == 2);
  CHECK(labels[10] == 2);
  CHECK((sizes == std::vector<int64_t>{1, 2}));
}

TEST_CASE("small regions removed as segment-anything's remove_small_regions removes them") {
  const nlohmann::json j = fixture();
  size_t changed = 0, cases = 0;
  for (const auto& c : j["regions"]) {
    int w = 0, h = 0;
    const std::vector<uint8_t> m = bits(c["mask"], w, h);
    for (const auto& r : c["results"]) {
      INFO(c["mask"].dump(), " area ", r["area"], " ", r["mode"]);
      std::vector<uint8_t> got = m;
      const bool ch = remove_small_regions(got, w, h, r["area"],
                                           r["mode"] == "holes" ? SmallRegionMode::holes : SmallRegionMode::islands);
      int ww = 0, hh = 0;
      CHECK(got == bits(r["mask"], ww, hh));
      CHECK(ch == r["changed"].get<bool>());
      changed += ch, ++cases;
    }
  }
  CHECK(changed > 50);
  CHECK(changed + 50 < cases);
  // By hand: a ring with a one-pixel hole; area 2 fills the hole, and the
  // outside (14 pixels) stays outside.
  std::vector<uint8_t> ring{0, 0, 0, 0, 0,  //
                            0, 1, 1, 1, 0,  //
                            0, 1, 0, 1, 0,  //
                            0, 1, 1, 1, 0};
  CHECK(remove_small_regions(ring, 5, 4, 2, SmallRegionMode::holes));
  CHECK(ring[12] == 1);
  CHECK(ring[0] == 0);
  // Nothing small: unchanged, and said so.
  CHECK(!remove_small_regions(ring, 5, 4, 2, SmallRegionMode::islands));
}

TEST_CASE("SAM 2's fill of small holes and sprinkles in low-resolution logits (worked by hand)") {
  // 6 x 5 logits: a foreground block (> 0) with a one-pixel hole at (2, 2),
  // a two-pixel sprinkle at (5, 0)-(5, 1), and a positive pixel at (4, 4)
  // touching the block only diagonally, so part of it (8-connected).
  const float P = 3.0f, N = -2.0f;
  // clang-format off
  std::vector<float> l = {
      P, P, P, P, N, P,
      P, P, P, P, N, P,
      P, P, 0, P, N, N,   // 0 is not > 0: a hole
      P, P, P, P, N, N,
      N, N, N, N, P, N};
  // clang-format on
  std::vector<float> want = l;
  want[2 * 6 + 2] = 10.0f;                // the one-pixel hole (<= 2) filled
  want[0 * 6 + 5] = want[1 * 6 + 5] = -10.0f;  // the two-pixel sprinkle (<= 2) removed
  // The background around the block (column 4, the bottom row and the
  // bottom right, 11 pixels, joined diagonally) is larger and stays.
  CHECK(fill_small_logit_regions(l.data(), 6, 5, 2));
  CHECK(l == want);
  // Nothing that small: unchanged, and "no change".
  std::vector<float> big = {P, P, N, N, P, P, N, N};
  const std::vector<float> same = big;
  CHECK_FALSE(fill_small_logit_regions(big.data(), 4, 2, 1));
  CHECK(big == same);
  // The bound is inclusive (areas <= max_area): at 1, a one-pixel hole and
  // a one-pixel sprinkle go; the 5-pixel background on the right stays.
  // clang-format off
  std::vector<float> l1 = {
      P, P, P, N, N,
      P, N, P, N, P,
      P, P, P, N, N};
  // clang-format on
  std::vector<float> want1 = l1;
  want1[1 * 5 + 1] = 10.0f, want1[1 * 5 + 4] = -10.0f;
  CHECK(fill_small_logit_regions(l1.data(), 5, 3, 1));
  CHECK(l1 == want1);
  // Both kinds are found on the logits as given: an 8-pixel ring around a
  // one-pixel hole, at 8, loses its hole (+10) and is itself removed (-10);
  // filling first and looking again would have kept a 9-pixel region.
  // clang-format off
  std::vector<float> ring = {
      N, N, N, N, N,
      N, P, P, P, N,
      N, P, N, P, N,
      N, P, P, P, N,
      N, N, N, N, N};
  // clang-format on
  CHECK(fill_small_logit_regions(ring.data(), 5, 5, 8));
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 5; ++x) {
      const bool border = x == 0 || y == 0 || x == 4 || y == 4, centre = x == 2 && y == 2;
      CHECK(ring[size_t(y * 5 + x)] == (border ? N : centre ? 10.0f : -10.0f));
    }
}
