// rass-segment's model against the reference (tests/nn/make_ras_fixture.py:
// Ka1Guan/RASS's own VAE/UNet/Generator/FeatureProjection code and
// Mask2Former's head on a tiny RAS model, converted by scripts/convert_rass.py),
// and the properties the fixture cannot give: banded post-processing equal to
// whole-map interpolation, sliding window equal to one pass where one window
// covers the image, the resize rule worked by hand, latent checks.
#include "torch_doctest.hpp"
#include "tolerances.hpp"

#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/prompt.hpp"
#include "rass/model/segment.hpp"
#include "rass/model/segment_model.hpp"

using namespace rass;
using namespace rass::model;

static const std::string kNn = std::string(RASS_FIXTURES) + "/nn";

static double max_abs(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat) - b.to(torch::kFloat)).abs().max().item<double>();
}

static SegmentModel& tiny() {
  static std::unique_ptr<SegmentModel> m;
  if (!m) {
    SegmentModelOptions o;
    o.dir = kNn + "/ras_tiny";
    o.quiet = true;
    m = std::make_unique<SegmentModel>(o);
    // The fixture's resize policy (smaller than the released 512 / 2048, same rule).
    m->config.min_size_test = 64;
    m->config.max_size_test = 96;
  }
  return *m;
}

static std::shared_ptr<SafeTensorsFile> ref() {
  static std::shared_ptr<SafeTensorsFile> f = SafeTensorsFile::open(kNn + "/ras_ref.safetensors");
  return f;
}

static torch::Tensor ref_tensor(const std::string& name) {
  const TensorView* v = ref()->find(name);
  REQUIRE_MESSAGE(v, name);
  return to_tensor(*v, ref()->path());
}

TEST_CASE("segment: the feature projection equals RASS's FeatureProjection.forward_features") {
  c10::InferenceMode g;
  SegmentModel& m = tiny();
  std::vector<torch::Tensor> taps;
  for (int i = 0; i < 6; ++i) taps.push_back(ref_tensor("proj.tap" + std::to_string(i)));
  const auto out = m.heads->projection->forward(taps, 64, 88);
  const auto& levels = m.heads->projection->levels;
  REQUIRE(levels.size() == 4);
  for (size_t k = 0; k < levels.size(); ++k) {
    const torch::Tensor r = ref_tensor("proj." + levels[k].name);
    CHECK(out[k].sizes() == r.sizes());
    const double e = max_abs(out[k], r);
    MESSAGE(levels[k].name << " max abs " << e);
    CHECK(e <= 1e-5);
  }
}

TEST_CASE("segment: the whole tiny RAS model equals the reference (slide and whole)") {
  SegmentModel& m = tiny();
  const Image img = read_image(kNn + "/ras_lq.png");
  const std::string tags = ref()->metadata().at("tags");
  const std::string prompt = build_prompt(PromptStyle::rass, split_tags(tags), "");
  std::vector<int> ids;
  torch::Tensor context;
  {
    c10::InferenceMode g;
    context = m.encode_prompt(prompt, &ids);
  }
  const torch::Tensor ref_ids = ref_tensor("ids");
  REQUIRE(int64_t(ids.size()) == ref_ids.numel());
  for (size_t i = 0; i < ids.size(); ++i) CHECK(ids[i] == ref_ids[int64_t(i)].item<int64_t>());
  for (const bool whole : {false, true}) {
    SegmentParams p;
    p.whole = whole;
    p.vae_mode = true;  // the fixture replaces latent_dist.sample() by the mean
    p.keep_scores = true;
    const SegmentResult r = segment(m, img, context, p, "ras_lq.png");
    const std::string c = whole ? "whole" : "slide";
    CHECK(r.tiles == (whole ? 1 : 2));
    CHECK(r.pad_width == 88);
    CHECK(r.pad_height == 64);
    const torch::Tensor s = ref_tensor(c + ".scores");
    REQUIRE(r.scores.sizes() == s.sizes());
    const double e = max_abs(r.scores, s);
    MESSAGE(c << ": scores max abs " << e << " (scores up to " << s.abs().max().item<double>() << ")");
    CHECK(e <= 1e-4);
    CHECK(torch::equal(r.labels, ref_tensor(c + ".labels")));
  }
}

TEST_CASE("segment: sliding window equals one pass where one window covers the image") {
  SegmentModel& m = tiny();
  Image img(96, 64, 3);  // the window is 64: two overlapping tiles; 64x64 -> one
  for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = uint8_t((i * 37) % 251);
  const torch::Tensor context = [&] {
    c10::InferenceMode g;
    return m.encode_prompt("a b");
  }();
  Image sq(64, 64, 3);
  for (size_t i = 0; i < sq.data.size(); ++i) sq.data[i] = img.data[i];
  SegmentParams p;
  p.resize = false;
  p.vae_mode = true;
  p.keep_scores = true;
  const SegmentResult slide = segment(m, sq, context, p, "square");
  p.whole = true;
  const SegmentResult whole = segment(m, sq, context, p, "square");
  CHECK(slide.tiles == 1);
  CHECK(torch::equal(slide.scores, whole.scores));
  CHECK(torch::equal(slide.labels, whole.labels));
  // Two overlapping windows differ from one pass (the features are averaged).
  p.whole = false;
  const SegmentResult two = segment(m, img, context, p, "two");
  p.whole = true;
  const SegmentResult one = segment(m, img, context, p, "one");
  CHECK(two.tiles == 2);
  CHECK(max_abs(two.scores, one.scores) > 0);
}

TEST_CASE("segment: channels-last weights (--channels-last) give the same scores") {
  SegmentModelOptions o;
  o.dir = kNn + "/ras_tiny";
  o.quiet = true;
  o.channels_last = true;
  SegmentModel cl(o);
  cl.config.min_size_test = 64;
  cl.config.max_size_test = 96;
  CHECK(cl.vae->encoder->conv_in->weight.is_contiguous(at::MemoryFormat::ChannelsLast));
  SegmentModel& m = tiny();
  Image img(96, 64, 3);  // two windows
  for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = uint8_t((i * 29) % 251);
  const torch::Tensor context = [&] {
    c10::InferenceMode g;
    return m.encode_prompt("a b");
  }();
  SegmentParams p;
  p.resize = false;
  p.seed = 3;
  p.key = "cl";
  p.keep_scores = true;
  const SegmentResult a = segment(m, img, context, p, "img");
  const SegmentResult b = segment(cl, img, context, p, "img");
  CHECK(max_abs(a.scores, b.scores) <= 1e-5);
  CHECK(torch::equal(a.labels, b.labels));
}

TEST_CASE("segment: banded bilinear rows equal one whole-map interpolate") {
  c10::InferenceMode g;
  torch::manual_seed(1);
  for (auto [hs, ws, ht, wt] : std::vector<std::array<int64_t, 4>>{{16, 22, 64, 88}, {64, 85, 30, 40}, {7, 9, 7, 9}, {5, 6, 13, 6}}) {
    const torch::Tensor src = torch::randn({3, hs, ws});
    const torch::Tensor whole = torch::nn::functional::interpolate(
        src.unsqueeze(0), torch::nn::functional::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{ht, wt})
                              .mode(torch::kBilinear)
                              .align_corners(false))[0];
    auto rows = [&](int64_t a, int64_t b) { return src.index({torch::indexing::Slice(), torch::indexing::Slice(a, b)}); };
    for (int64_t band : {1, 3, 8, 1000}) {
      std::vector<torch::Tensor> parts;
      for (int64_t y = 0; y < ht; y += band) parts.push_back(bilinear_rows(rows, hs, ws, ht, wt, y, std::min(ht, y + band)));
      const double e = max_abs(torch::cat(parts, 1), whole);
      // ATen's kernel associates the four products in its own order: measured
      // 0 when upsampling (the masks), 5.8e-6 on N(0,1) values when
      // downsampling (the resize back to a smaller original).
      CHECK_MESSAGE(e <= 1.5e-5, hs << "x" << ws << " -> " << ht << "x" << wt << " band " << band << ": " << e);
    }
  }
}

TEST_CASE("segment: shortest-edge resize as detectron2 (worked by hand)") {
  // 451x300: 512/300 * 451 = 769.7 -> 770 x 512.
  CHECK(shortest_edge_size(451, 300, 512, 2048) == std::pair<int, int>{770, 512});
  // 300x451 (portrait): 512 x 769.7 -> 512 x 770.
  CHECK(shortest_edge_size(300, 451, 512, 2048) == std::pair<int, int>{512, 770});
  // 5000x1000: 2560 x 512 exceeds 2048: x0.8 -> 2048 x 409.6 -> 2048 x 410.
  CHECK(shortest_edge_size(5000, 1000, 512, 2048) == std::pair<int, int>{2048, 410});
  // 40x30 with the fixture's 64 / 96: 85.33 x 64 -> 85 x 64.
  CHECK(shortest_edge_size(40, 30, 64, 96) == std::pair<int, int>{85, 64});
}

TEST_CASE("segment: tiles as the released slide_forward places them") {
  SegmentFolderConfig c;
  c.projection.feature_dims = {256, 512, 1280, 1280, 640, 320};
  c.projection.feature_strides = {4, 8, 32, 16, 8, 8};
  SegmentParams p;
  p.resize = false;
  // 1000x512 padded: window 512, tiles at x 0 and 488 (edge-aligned).
  SegmentGeometry g = segment_geometry(1000, 512, c, p);
  REQUIRE(g.tiles.size() == 2);
  CHECK(g.tiles[1] == std::pair<int, int>{0, 488});
  // 1030x515 -> padded 1032x520: the short side 520 is not a multiple of 32,
  // so the window is 512 (the released code would fail on mismatched feature
  // shapes): rows at 0 and 8, columns at 0, 512 and 520.
  g = segment_geometry(1030, 515, c, p);
  CHECK(g.pad_w == 1032);
  CHECK(g.pad_h == 520);
  CHECK(g.crop_w == 512);
  REQUIRE(g.tiles.size() == 6);
  CHECK(g.tiles[1] == std::pair<int, int>{0, 512});
  CHECK(g.tiles[2] == std::pair<int, int>{0, 520});
  CHECK(g.tiles[5] == std::pair<int, int>{8, 520});
  // An explicit --window that cannot tile is a usage error.
  p.window = 520;
  CHECK_THROWS_AS(segment_geometry(1030, 515, c, p), Error);
}

TEST_CASE("segment: a latent of the wrong shape or with NaN is bad input naming the file") {
  SegmentModel& m = tiny();
  Image img(40, 30, 3);
  const torch::Tensor context = [&] {
    c10::InferenceMode g;
    return m.encode_prompt("");
  }();
  SegmentParams p;
  p.latent = torch::zeros({4, 8, 10});  // the padded 88x64 needs [4, 8, 11]
  p.latent_name = "z.npy";
  try {
    segment(m, img, context, p, "img");
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::bad_input);
    CHECK(std::string(e.what()).find("z.npy") != std::string::npos);
    CHECK(std::string(e.what()).find("[4, 8, 11]") != std::string::npos);
  }
  p.latent = torch::full({4, 8, 11}, std::nan(""));
  CHECK_THROWS_AS(segment(m, img, context, p, "img"), Error);
}

TEST_CASE("segment: a batch of windows from several images equals each image alone") {
  SegmentModel& m = tiny();
  const torch::Tensor ctx_a = [&] {
    c10::InferenceMode g;
    return m.encode_prompt("a b");
  }();
  const torch::Tensor ctx_b = [&] {
    c10::InferenceMode g;
    return m.encode_prompt("c");
  }();
  // Four images at native size: 96x64 (two 64 px windows), 64x64 (one),
  // 72x64 (two, the second moved back to the edge) and 96x64 again (its
  // feature maps have the first image's size: the head runs on both at once);
  // sampled latents with their own keys, and the second image's own prompt:
  // seven windows of one size, run as a batch of 3 and then 1.
  std::vector<Image> imgs{Image(96, 64, 3), Image(64, 64, 3), Image(72, 64, 3), Image(96, 64, 3)};
  for (size_t k = 0; k < imgs.size(); ++k)
    for (size_t i = 0; i < imgs[k].data.size(); ++i) imgs[k].data[i] = uint8_t((i * (37 + 6 * k)) % 251);
  std::vector<SegmentInput> inputs;
  for (size_t k = 0; k < imgs.size(); ++k) {
    SegmentParams p;
    p.resize = false;
    p.keep_scores = true;
    p.keep_probs = true;
    p.seed = 5;
    p.key = "img" + std::to_string(k);
    inputs.push_back({&imgs[k], k == 1 ? ctx_b : ctx_a, p, p.key});
  }
  std::vector<std::exception_ptr> errors;
  const std::vector<SegmentResult> batched = segment_many(m, inputs, 3, errors);
  for (size_t k = 0; k < inputs.size(); ++k) {
    INFO("image ", k);
    REQUIRE(!errors[k]);
    const SegmentResult alone = segment(m, imgs[k], inputs[k].context, inputs[k].params, inputs[k].name);
    CHECK(batched[k].tiles == alone.tiles);
    REQUIRE(batched[k].scores.sizes() == alone.scores.sizes());
    const double e = max_abs(batched[k].scores, alone.scores);
    MESSAGE("image " << k << ": scores max abs " << e);
    CHECK(e <= 1e-5);
    CHECK(torch::equal(batched[k].labels, alone.labels));
    REQUIRE(batched[k].probs.sizes() == alone.probs.sizes());
    CHECK(max_abs(batched[k].probs, alone.probs) <= 1e-5);
  }
  CHECK(batched[0].tiles == 2);
  CHECK(batched[2].tiles == 2);

  // A bad image fails alone: its error, the others' results.
  inputs[1].params.latent = torch::zeros({4, 3, 3});
  inputs[1].params.latent_name = "bad.npy";
  const std::vector<SegmentResult> some = segment_many(m, inputs, 3, errors);
  CHECK(!errors[0]);
  CHECK(errors[1]);
  CHECK(!errors[2]);
  CHECK_THROWS_WITH_AS(std::rethrow_exception(errors[1]), doctest::Contains("bad.npy"), Error);
  CHECK(torch::equal(some[0].labels, batched[0].labels));
  CHECK(torch::equal(some[2].labels, batched[2].labels));

  // Non-finite head outputs fail their image alone, though it shares the
  // head call (and the one copy to the host) with image 0: a finite but
  // huge latent overflows inside the UNet.
  inputs[1].params.latent = torch::Tensor();
  inputs[3].params.latent = torch::full({4, 8, 12}, 1e30);
  inputs[3].params.latent_name = "huge.npy";
  const std::vector<SegmentResult> nan = segment_many(m, inputs, 3, errors);
  CHECK(!errors[0]);
  CHECK(!errors[1]);
  CHECK(!errors[2]);
  REQUIRE(errors[3]);
  CHECK_THROWS_WITH_AS(std::rethrow_exception(errors[3]), doctest::Contains("non-finite predictions"), Error);
  CHECK(torch::equal(nan[0].labels, batched[0].labels));
  CHECK(torch::equal(nan[0].probs, batched[0].probs));
  CHECK_THROWS_AS(segment_many(m, inputs, 0, errors), Error);
}
