// SCR data (scr_data.hpp): crops and flips keep image and masks aligned, the
// draws are a function of (seed, step, sample), manifests work like folders.
#include "nn/torch_doctest.hpp"

#include <filesystem>
#include <fstream>
#include <set>

#include "test_support.hpp"

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/io/image_io.hpp"
#include "rass/text/caption_map.hpp"
#include "rass/text/caption_pack.hpp"
#include "rass/train/scr_data.hpp"

using namespace rass;

namespace {

const std::string kTok = std::string(RASS_FIXTURES) + "/nn/sd_tiny/tokenizer";

// A 72x72 image of three flat classes (wall: red 200, building: red 90 green
// 60, sky: blue 230) and its pack; the class of a pixel is read back from its colour.
void write_item(const std::string& dir, const std::string& key, int shift) {
  const int size = 72;
  const std::vector<std::string> classes = {"wall", "building", "sky"};
  const uint8_t colour[3][3] = {{200, 180, 150}, {90, 60, 50}, {80, 140, 230}};
  text::LabelMap map;
  map.width = map.height = size;
  map.pixels.assign(3, 0);
  Image img(size, size, 3);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      // An asymmetric layout, so a flip that misses the masks is seen.
      const int c = y < 10 + shift ? 2 : (x < 20 + shift && y > 30) ? 1 : 0;
      map.labels.push_back(c);
      map.pixels[size_t(c)]++;
      for (int k = 0; k < 3; ++k) img.u8()[(size_t(y) * size + x) * 3 + k] = colour[c][k];
    }
  std::filesystem::create_directories(dir + "/hq");
  std::filesystem::create_directories(dir + "/packs");
  write_image(dir + "/hq/" + key + ".png", img);
  const text::ClipTokenizer tok = text::ClipTokenizer::load(kTok);
  const text::CaptionMap cm = text::build_caption_map(map, classes, {}, text::PromptStyle::rass, &tok);
  write_file_atomic(dir + "/packs/" + key + ".h5", text::caption_pack_bytes(cm, map, classes, {key, key, "rass", "table", 0.5}));
}

// Class of each pixel of an HQ tensor in [-1, 1] (sky: blue 230, wall: red 200, else building).
torch::Tensor classes_of(const torch::Tensor& hq) {
  const torch::Tensor v = ((hq + 1) * 127.5).round();
  return torch::where(v[2] > 215, torch::full_like(v[0], 2), torch::where(v[0] > 150, torch::zeros_like(v[0]), torch::ones_like(v[0])));
}

}  // namespace

TEST_CASE("scr data: crops and flips keep masks on their pixels; draws are keyed") {
  test::TempDir tmp;
  write_item(tmp.path, "a", 0);
  write_item(tmp.path, "b", 7);
  train::ScrDataConfig c;
  c.hq_dir = tmp.path + "/hq";
  c.pack_dir = tmp.path + "/packs";
  c.crop = 48;
  c.seed = 5;
  const text::ClipTokenizer tok = text::ClipTokenizer::load(kTok);
  train::ScrData data(c, tok, 77);
  REQUIRE(data.size() == 2);
  const text::CaptionPack pack = text::read_caption_pack(tmp.path + "/packs/a.h5");
  int targets = 0;
  std::set<std::vector<int64_t>> layouts;  // different crops/flips of the asymmetric layout differ
  for (int64_t step = 0; step < 8; ++step)
    for (int64_t g = 0; g < 2; ++g) {
      const train::ScrSample s = data.sample(size_t(g), step, g);
      CHECK(s.hq.sizes() == std::vector<int64_t>{3, 48, 48});
      CHECK(s.lq.sizes() == std::vector<int64_t>{3, 48, 48});
      CHECK(s.lq.min().item<float>() >= -1);
      CHECK(s.lq.max().item<float>() <= 1);
      const torch::Tensor cls = classes_of(s.hq);
      for (const train::SclTarget& t : s.targets) {
        // The mask is exactly the pixels of one class in this crop.
        const torch::Tensor on = t.mask > 0.5;
        const int64_t c0 = cls.masked_select(on)[0].item<int64_t>();
        CHECK(torch::equal(on, cls == c0));
        ++targets;
      }
      const torch::Tensor flat = cls.to(torch::kLong).flatten().contiguous();
      layouts.insert(std::vector<int64_t>(flat.data_ptr<int64_t>(), flat.data_ptr<int64_t>() + flat.numel()));
      if (g == 0) CHECK(std::vector<int>(s.ids.begin(), s.ids.end()) == std::vector<int>(pack.token_ids.begin(), pack.token_ids.end()));
    }
  CHECK(targets > 16);
  CHECK(layouts.size() > 8);
  // A function of (seed, step, sample): the same call gives the same sample, another step another degradation.
  const train::ScrSample x = data.sample(0, 3, 1), y = data.sample(0, 3, 1), z = data.sample(0, 4, 1);
  CHECK(torch::equal(x.lq, y.lq));
  CHECK(torch::equal(x.hq, y.hq));
  CHECK_FALSE(torch::equal(x.lq, z.lq));

  // The same items from a manifest (paths relative to it).
  std::ofstream(tmp.path + "/m.jsonl") << "{\"hq\": \"hq/a.png\", \"pack\": \"packs/a.h5\"}\n"
                                       << "{\"hq\": \"hq/b.png\", \"pack\": \"packs/b.h5\"}\n";
  train::ScrDataConfig m = c;
  m.hq_dir = m.pack_dir = "";
  m.manifest = tmp.path + "/m.jsonl";
  train::ScrData from_manifest(m, tok, 77);
  REQUIRE(from_manifest.size() == 2);
  CHECK(torch::equal(from_manifest.sample(1, 2, 0).lq, data.sample(1, 2, 0).lq));

  // A pack without its image, a crop larger than the images: bad input naming the file.
  std::filesystem::copy_file(tmp.path + "/packs/a.h5", tmp.path + "/packs/c.h5");
  CHECK_THROWS_WITH_AS(train::ScrData(c, tok, 77), doctest::Contains("c.h5"), Error);
  std::filesystem::remove(tmp.path + "/packs/c.h5");
  c.crop = 80;
  CHECK_THROWS_WITH_AS(train::ScrData(c, tok, 77), doctest::Contains("smaller than crop_size 80"), Error);
}

TEST_CASE("scr data: without SCL an image may go without a pack and uses the prompt setting") {
  test::TempDir tmp;
  write_item(tmp.path, "a", 0);
  write_item(tmp.path, "b", 3);
  std::filesystem::remove(tmp.path + "/packs/b.h5");
  train::ScrDataConfig c;
  c.hq_dir = tmp.path + "/hq";
  c.pack_dir = tmp.path + "/packs";
  c.crop = 32;
  const text::ClipTokenizer tok = text::ClipTokenizer::load(kTok);
  CHECK_THROWS_WITH_AS(train::ScrData(c, tok, 77), doctest::Contains("b.png"), Error);  // SCL needs every pack
  c.scl = false;
  c.prompt = "sky";
  train::ScrData data(c, tok, 77);
  REQUIRE(data.size() == 2);
  CHECK(data.items()[1].pack.empty());
  const train::ScrSample s = data.sample(1, 0, 0);
  CHECK(std::vector<int>(s.ids.begin(), s.ids.end()) == tok.encode_padded("sky", 77));
  CHECK(s.targets.empty());
  CHECK(data.sample(0, 0, 0).targets.empty());  // no SCL: no targets even with a pack
}
