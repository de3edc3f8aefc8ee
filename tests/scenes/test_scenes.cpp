// rass-scenes: the raster against hand-worked pixels, and the generator's
// contracts (exact labels in painter's order, tags = visible classes,
// determinism by seed and key across --jobs and shards, every class reachable).
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <string>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/io/image_io.hpp"
#include "rass/metrics/class_names.hpp"
#include "rass/scenes/canvas.hpp"
#include "rass/scenes/classes.hpp"
#include "rass/scenes/generate.hpp"
#include "rass/scenes/scenes_tool.hpp"
#include "test_support.hpp"

using namespace rass;
using namespace rass::scenes;

TEST_CASE("scene classes carry ADE20K names and label values") {
  // Label values read off mmseg's ADE20K class list (0-based, reduce_zero_label).
  CHECK(class_label(Cls::wall) == 0);
  CHECK(class_label(Cls::building) == 1);
  CHECK(class_label(Cls::sky) == 2);
  CHECK(class_label(Cls::windowpane) == 8);
  CHECK(class_label(Cls::person) == 12);
  CHECK(class_label(Cls::car) == 20);
  CHECK(class_label(Cls::water) == 21);
  CHECK(class_label(Cls::stairs) == 53);
  CHECK(class_label(Cls::flower) == 66);
  CHECK(class_name(Cls::windowpane) == "windowpane");
  const auto& ade = *metrics::builtin_class_names("ade20k");
  std::set<int> labels;
  for (Cls c : all_classes()) {
    CHECK(ade.at(class_label(c)) == class_name(c));
    CHECK(class_of_label(class_label(c)) == c);
    labels.insert(class_label(c));
  }
  CHECK(labels.size() >= 12);
  CHECK(labels.size() == size_t(kClassCount));
  CHECK(class_of_label(7) == Cls::count);  // "bed ": not drawn
}

TEST_CASE("canvas: the label of a covered pixel is the top shape's (hand-worked 8x8)") {
  Canvas c(8, 8);
  Paint flat;
  flat.grain = 0;
  flat.a = {1, 0, 0};
  c.fill(rect(2, 2, 6, 6), Cls::wall, flat);  // covers centres x, y in 2..5
  flat.a = {0, 0, 1};
  c.fill(ellipse({6, 6}, 2, 2), Cls::person, flat);  // centres with (x+.5-6)^2 + (y+.5-6)^2 < 4
  // W wall, P person, . nothing: worked out by hand from the two inside tests.
  const char* want[8] = {"........", "........", "..WWWW..", "..WWWW..",
                         "..WWWPP.", "..WWPPPP", "....PPPP", ".....PP."};
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x) {
      const uint8_t v = c.label_at(x, y);
      const char got = v == 0 ? 'W' : v == 12 ? 'P' : v == 255 ? '.' : '?';
      CAPTURE(x);
      CAPTURE(y);
      CHECK(got == want[y][x]);
    }
}

TEST_CASE("canvas: anti-aliasing only in the image") {
  Canvas c(8, 4);
  Paint white;
  white.grain = 0;
  white.a = {1, 1, 1};
  // The right edge at x = 6.5 passes through the centre of column 6: sdf 0 there,
  // so that pixel is half covered in the image and not covered in the labels.
  c.fill(rect(2, 0, 6.5, 4), Cls::road, white);
  c.light(1, 0, 0, 1);
  const Image img = c.image(0, 0), lab = c.labels();
  auto px = [&](int x) { return img.u8()[(1 * 8 + x) * 3]; };
  CHECK(px(1) == 0);
  CHECK(px(3) == 255);
  CHECK(px(5) == 255);
  CHECK(px(6) == 128);  // round(0.5 * 255)
  CHECK(px(7) == 0);
  CHECK(lab.u8()[1 * 8 + 5] == 6);
  CHECK(lab.u8()[1 * 8 + 6] == 255);
  // Column 2's centre (2.5) is half a pixel inside: fully painted, labelled.
  CHECK(px(2) == 255);
  CHECK(lab.u8()[1 * 8 + 2] == 6);
}

TEST_CASE("scenes: labels are exactly the last covering shape's class (painter's order)") {
  for (int i = 0; i < 6; ++i) {
    std::vector<DrawOp> ops;
    SceneOptions opt;
    opt.width = 96;
    opt.height = 80;
    opt.kind = Kind(1 + i % 3);
    opt.record = &ops;
    const Scene s = generate_scene(11, scene_key(i), opt);
    REQUIRE(!ops.empty());
    int wrong = 0;
    for (int y = 0; y < opt.height; ++y)
      for (int x = 0; x < opt.width; ++x) {
        int want = 255;
        for (auto it = ops.rbegin(); it != ops.rend(); ++it)
          if (it->shape.covers(x + 0.5, y + 0.5)) {
            want = class_label(it->cls);
            break;
          }
        wrong += s.labels.u8()[size_t(y) * opt.width + x] != want;
      }
    CAPTURE(i);
    CHECK(wrong == 0);
  }
}

TEST_CASE("scenes: tags list exactly the classes in the label map, largest first") {
  for (int i = 0; i < 40; ++i) {
    SceneOptions opt;
    opt.width = 128;
    opt.height = 96;
    const Scene s = generate_scene(5, scene_key(i), opt);
    std::vector<uint64_t> count(256, 0);
    for (uint8_t v : s.labels.data) ++count[v];
    CHECK(count[255] == 0);  // every pixel belongs to some class
    std::set<int> in_map, tagged;
    for (int v = 0; v < 256; ++v)
      if (count[v]) in_map.insert(v);
    for (size_t k = 0; k < s.tags.size(); ++k) {
      tagged.insert(class_label(s.tags[k]));
      CHECK(s.pixels[k] == count[class_label(s.tags[k])]);
      if (k > 0) CHECK(s.pixels[k] <= s.pixels[k - 1]);
    }
    CAPTURE(i);
    CHECK(in_map == tagged);
    CHECK(s.image.width == 128);
    CHECK(s.image.height == 96);
    CHECK(s.image.channels == 3);
    CHECK(tags_line(s).find(class_name(s.tags[0])) == 0);
    CHECK(s.caption.find("a photo of ") == 0);
  }
}

TEST_CASE("scenes: deterministic by seed and key") {
  SceneOptions opt;
  opt.width = 96;
  opt.height = 96;
  const Scene a = generate_scene(3, "scene_000007", opt), b = generate_scene(3, "scene_000007", opt);
  CHECK(a.image.data == b.image.data);
  CHECK(a.labels.data == b.labels.data);
  CHECK(a.caption == b.caption);
  CHECK(generate_scene(4, "scene_000007", opt).image.data != a.image.data);
  CHECK(generate_scene(3, "scene_000008", opt).image.data != a.image.data);
}

TEST_CASE("scenes: scene_words lists every word of tags and captions") {
  const std::vector<std::string> words = scene_words();
  const std::set<std::string> listed(words.begin(), words.end());
  CHECK(listed.size() == words.size());
  SceneOptions opt;
  opt.width = opt.height = 64;
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    const Scene s = generate_scene(11, "scene_" + std::to_string(i), opt);
    std::string word;
    for (char c : s.caption + " " + tags_line(s) + " ") {
      if (c >= 'a' && c <= 'z') {
        word += c;
      } else if (!word.empty()) {
        seen.insert(word);
        CHECK_MESSAGE(listed.count(word) == 1, word << " (caption: " << s.caption << ")");
        word.clear();
      }
    }
  }
  for (const char* w : {"photo", "street", "meadow", "room", "lake"}) CHECK(seen.count(w) == 1);
}

TEST_CASE("scenes: every class is reachable") {
  std::set<Cls> seen;
  SceneOptions opt;
  opt.width = opt.height = 128;
  for (int i = 0; i < 300 && seen.size() < size_t(kClassCount); ++i)
    for (Cls c : generate_scene(1, scene_key(i), opt).tags) seen.insert(c);
  for (Cls c : all_classes()) {
    CAPTURE(class_name(c));
    CHECK(seen.count(c) == 1);
  }
}

TEST_CASE("scenes: sizes 64..512, refused outside") {
  SceneOptions opt;
  opt.width = 64;
  opt.height = 512;
  const Scene s = generate_scene(0, "k", opt);
  CHECK(s.image.width == 64);
  CHECK(s.labels.height == 512);
  opt.width = 63;
  CHECK_THROWS_AS(generate_scene(0, "k", opt), Error);
  opt.width = 513;
  CHECK_THROWS_AS(generate_scene(0, "k", opt), Error);
}

TEST_CASE("rass-scenes: the same files whatever --jobs and --shard") {
  test::TempDir dir;
  ScenesJob job;
  job.seed = 9;
  job.count = 7;
  job.scene.width = job.scene.height = 96;
  job.quiet = true;
  job.jobs = 1;
  job.output = dir / "one";
  REQUIRE(run_scenes(job) == 0);
  job.jobs = 2;
  job.output = dir / "sharded";
  for (int i = 0; i < 3; ++i) {
    job.shard = {i, 3};
    REQUIRE(run_scenes(job) == 0);
  }
  for (int i = 0; i < 7; ++i) {
    const std::string key = scene_key(i);
    for (const std::string& f : {"images/" + key + ".png", "labels/" + key + ".png", "tags/" + key + ".txt",
                                "captions/" + key + ".txt"}) {
      CAPTURE(f);
      CHECK(read_file_bytes(dir / ("one/" + f)) == read_file_bytes(dir / ("sharded/" + f)));
    }
  }
  // The label PNG holds what generate_scene drew for that key.
  SceneOptions opt;
  opt.width = opt.height = 96;
  CHECK(read_label_image(dir / "one/labels/scene_000004.png").data == generate_scene(9, "scene_000004", opt).labels.data);
  CHECK(file_exists(dir / "sharded/manifest.2-of-3.jsonl"));
  CHECK(file_exists(dir / "sharded/tags.0-of-3.tsv"));
}
