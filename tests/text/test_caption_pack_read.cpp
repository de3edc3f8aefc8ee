// read_caption_pack: a pack written by caption_pack_bytes reads back as
// written (a hand-made 4x2 label map, the tiny tokenizer), and packs that are
// not version-1 rass-caption-map files, or whose shapes disagree with the
// header, are refused naming the file.
#include <doctest/doctest.h>

#include "test_support.hpp"

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/io/hdf5_file.hpp"
#include "rass/text/caption_map.hpp"
#include "rass/text/caption_pack.hpp"

using namespace rass::text;

namespace {
const std::vector<std::string> kClasses = {"wall", "building", "sky"};

// 3x2: wall wall building / sky building ignore.
LabelMap small_map() {
  LabelMap m;
  m.width = 3;
  m.height = 2;
  m.labels = {0, 0, 1, 2, 1, -1};
  m.pixels = {2, 2, 1};
  return m;
}

// A pack by hand with the Hdf5Writer, `masks_rows` rows in its masks.
std::vector<uint8_t> hand_pack(const std::string& format, int64_t version, uint64_t masks_rows) {
  rass::io::Hdf5Writer w;
  w.attribute("format", format);
  w.attribute("format_version", version);
  w.attribute("key", std::string("k"));
  w.attribute("prompt", std::string("sky"));
  w.attribute("prompt_style", std::string("rass"));
  w.attribute("height", int64_t{2});
  w.attribute("width", int64_t{2});
  w.attribute("max_length", int64_t{4});
  w.dataset_strings("terms", {"sky"});
  const uint8_t one[1] = {1};
  w.dataset_u8("has_mask", {1}, one);
  const std::vector<uint8_t> masks(masks_rows * 2, 1);
  w.dataset_u8("masks", {1, masks_rows, 2}, masks.data());
  const int32_t ids[4] = {49406, 5, 49407, 49407};
  w.dataset_i32("token_ids", {4}, ids);
  const uint8_t tm[4] = {0, 1, 0, 0};
  w.dataset_u8("token_mask", {1, 4}, tm);
  return w.finish();
}
}  // namespace

TEST_CASE("caption pack: read_caption_pack gives back what caption_pack_bytes wrote") {
  rass::test::TempDir tmp;
  const ClipTokenizer tok = ClipTokenizer::load(std::string(RASS_FIXTURES) + "/text/tiny-clip");
  const LabelMap map = small_map();
  const CaptionMap cm = build_caption_map(map, kClasses, {}, PromptStyle::rass, &tok);
  const std::string path = tmp.path + "/a.h5";
  rass::write_file_atomic(path, caption_pack_bytes(cm, map, kClasses, {"sub/a", "a.png", "rass", "table", 0.5}));
  const CaptionPack p = read_caption_pack(path);
  CHECK(p.key == "sub/a");
  CHECK(p.prompt == cm.prompt);
  CHECK(p.prompt_style == "rass");
  CHECK(p.width == 3);
  CHECK(p.height == 2);
  CHECK(p.max_length == 77);
  REQUIRE(p.term_count() == 3);
  // Terms in prompt order (most pixels first, ties by class index): wall, building, sky.
  CHECK(p.terms == std::vector<std::string>{"wall", "building", "sky"});
  CHECK(p.has_mask == std::vector<uint8_t>{1, 1, 1});
  CHECK(p.masks == std::vector<uint8_t>{1, 1, 0, 0, 0, 0,    // wall
                                        0, 0, 1, 0, 1, 0,    // building
                                        0, 0, 0, 1, 0, 0});  // sky
  CHECK(std::vector<int>(p.token_ids.begin(), p.token_ids.end()) == cm.token_ids);
  for (size_t t = 0; t < 3; ++t)
    for (int i = 0; i < 77; ++i) {
      bool at = false;
      for (int q : cm.terms[t].positions) at |= q == i;
      CHECK(p.token_mask[t * 77 + i] == uint8_t(at));
    }
}

TEST_CASE("caption pack: wrong format, version or shapes are bad input naming the file") {
  rass::test::TempDir tmp;
  const std::string path = tmp.path + "/b.h5";
  rass::write_file_atomic(path, hand_pack("rass-caption-map", 1, 2));
  CHECK(read_caption_pack(path).masks == std::vector<uint8_t>{1, 1, 1, 1});
  auto fails = [&](const std::vector<uint8_t>& bytes, const char* what) {
    rass::write_file_atomic(path, bytes);
    try {
      read_caption_pack(path);
      FAIL("no error for " << what);
    } catch (const rass::Error& e) {
      CHECK(e.code() == rass::ExitCode::bad_input);
      CHECK(std::string(e.what()).find(path) != std::string::npos);
      CHECK(std::string(e.what()).find(what) != std::string::npos);
    }
  };
  fails(hand_pack("something-else", 1, 2), "'something-else' is not 'rass-caption-map'");
  fails(hand_pack("rass-caption-map", 2, 2), "format_version 2");
  fails(hand_pack("rass-caption-map", 1, 3), "'masks' has shape [1, 3, 2], expected [1, 2, 2]");
  rass::write_file_atomic(path, std::vector<uint8_t>{'n', 'o', 't'});
  CHECK_THROWS_AS(read_caption_pack(path), rass::Error);
}
