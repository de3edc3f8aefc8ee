// MUSIQ against pyiqa's MUSIQ (the numbers papers report) on small
// random-weight models converted by scripts/convert_iqa_musiq.py (fixtures
// from tests/nn/make_iqa_musiq_fixture.py): the multi-scale token layout,
// the one-score and the 10-bin heads on images of awkward sizes, a batch,
// and the metric as rass-eval-iqa loads it (file names, refusals).
#include "torch_doctest.hpp"

#include <filesystem>

#include "rass/core/error.hpp"
#include "rass/core/image.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/metrics/deep_iqa.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/iqa_musiq.hpp"
#include "test_support.hpp"

using namespace rass;
namespace fs = std::filesystem;

static const std::string kDir = std::string(RASS_FIXTURES) + "/nn";
// The bar for every deep metric: 1e-5 on the score in fp32.
// The goldens are the reference run in float64 (make_iqa_musiq_fixture.py
// says why); measured: see the MESSAGE lines (printed by each case).
constexpr double kTolScore = 1e-5;
constexpr int kImages = 7;

namespace {

std::shared_ptr<SafeTensorsFile> io() { return SafeTensorsFile::open(kDir + "/musiq_io.safetensors"); }

torch::Tensor get(const SafeTensorsFile& f, const std::string& name) {
  const TensorView* t = f.find(name);
  REQUIRE_MESSAGE(t != nullptr, name);
  return model::to_tensor(*t, f.path());
}

// [H, W, 3] uint8 -> [1, 3, H, W] in [0, 1], as pyiqa's loader (value / 255).
torch::Tensor unit_image(const torch::Tensor& u8) { return u8.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat) / 255; }

Image to_image(const torch::Tensor& u8) {
  Image im(int(u8.size(1)), int(u8.size(0)), 3);
  std::memcpy(im.u8(), u8.contiguous().data_ptr<uint8_t>(), im.data.size());
  return im;
}

}  // namespace

TEST_CASE("MUSIQ scaled sizes: aspect kept, ratio in double, round half to even") {
  using P = std::pair<int64_t, int64_t>;
  CHECK(model::musiq_scaled_size(100, 150, 224) == P{149, 224});  // 149.33
  CHECK(model::musiq_scaled_size(105, 192, 224) == P{123, 224});  // 105 * (224/192) = 122.50000000000001
  CHECK(model::musiq_scaled_size(45, 320, 224) == P{31, 224});    // 45 * 0.7 = 31.499999999999996
  CHECK(model::musiq_scaled_size(5, 448, 224) == P{2, 224});      // 2.5 -> 2
  CHECK(model::musiq_scaled_size(7, 448, 224) == P{4, 224});      // 3.5 -> 4
  CHECK(model::musiq_scaled_size(20, 30, 384) == P{256, 384});    // upscaled
  CHECK(model::musiq_scaled_size(1, 1000, 224).first == 0);
  CHECK_THROWS_WITH_AS(model::musiq_tokens(torch::zeros({1, 3, 1, 1000}), "thin.png"),
                       doctest::Contains("thin.png: a 1000x1 image is too elongated for MUSIQ"), Error);
}

TEST_CASE("MUSIQ tokens: scales, hash positions and patch layout as the reference") {
  torch::NoGradGuard no_grad;
  auto f = io();
  const torch::Tensor probe = get(*f, "probe");
  for (int i = 0; i < kImages; ++i) {
    const std::string n = std::to_string(i);
    const model::MusiqTokens t = model::musiq_tokens(unit_image(get(*f, "img_" + n)));
    CAPTURE(i);
    REQUIRE(t.spatial.sizes() == get(*f, "spatial_" + n).sizes());
    CHECK(torch::equal(t.spatial, get(*f, "spatial_" + n)));
    CHECK(torch::equal(t.scale, get(*f, "scale_" + n)));
    const torch::Tensor flat = t.patches[0].reshape({t.patches.size(1), -1});
    const double e1 = (flat.sum(1) - get(*f, "patchsum_" + n)).abs().max().item<double>();
    const double e2 = (torch::matmul(flat, probe) - get(*f, "patchdot_" + n)).abs().max().item<double>();
    CHECK(e1 < 1e-3);  // sums of 3072 values of about 1
    CHECK(e2 < 1e-3);
  }
}

TEST_CASE("MUSIQ scores equal pyiqa's: one-score head, 10-bin head, a batch") {
  torch::NoGradGuard no_grad;
  auto f = io();
  nn::MusiqNet one = model::load_musiq(kDir + "/musiq_tiny.safetensors");
  nn::MusiqNet ava = model::load_musiq(kDir + "/musiq_tiny_ava.safetensors");
  CHECK(one->config.num_classes == 1);
  CHECK(one->config.num_heads == 2);
  CHECK(one->config.num_layers == 2);
  CHECK(ava->config.num_classes == 10);
  double err_one = 0, err_ava = 0, ref32 = 0;
  for (int i = 0; i < kImages; ++i) {
    const std::string n = std::to_string(i);
    const model::MusiqTokens t = model::musiq_tokens(unit_image(get(*f, "img_" + n)));
    err_one = std::max(err_one, (one->score(t.patches, t.spatial, t.scale) - get(*f, "score_" + n)).abs().max().item<double>());
    err_ava = std::max(err_ava, (ava->score(t.patches, t.spatial, t.scale) - get(*f, "ava_" + n)).abs().max().item<double>());
    for (const char* k : {"score", "ava"})
      ref32 = std::max(ref32, (get(*f, std::string(k) + "32_" + n) - get(*f, std::string(k) + "_" + n)).abs().max().item<double>());
  }
  // The goldens are the reference run in float64; its own float32 run is as far from them as ref32.
  MESSAGE("MUSIQ score max abs error (fp32 vs the reference in fp64): one-score ", err_one, ", 10-bin mean ", err_ava,
          "; the reference's own fp32 run: ", ref32);
  CHECK(err_one < kTolScore);
  CHECK(err_ava < kTolScore);
  const torch::Tensor batch = torch::cat({unit_image(get(*f, "img_0")), unit_image(get(*f, "img_batch"))});
  const model::MusiqTokens t = model::musiq_tokens(batch);
  const double err_batch = (one->score(t.patches, t.spatial, t.scale) - get(*f, "batch_scores")).abs().max().item<double>();
  MESSAGE("MUSIQ batch of 2 max abs error ", err_batch);
  CHECK(err_batch < kTolScore);
}

TEST_CASE("MUSIQ as rass-eval-iqa loads it: weight file names, scores, refusals") {
  model::register_musiq_metric();
  for (const char* name : {"musiq", "musiq-ava", "musiq-spaq", "musiq-paq2piq"}) {
    const metrics::DeepIqaMetric* m = metrics::find_deep_iqa_metric(name);
    REQUIRE_MESSAGE(m != nullptr, name);
    CHECK_FALSE(m->full_reference);
    CHECK_FALSE(m->lower_is_better);
  }
  const metrics::DeepIqaMetric& koniq = *metrics::find_deep_iqa_metric("musiq");
  const metrics::DeepIqaMetric& ava = *metrics::find_deep_iqa_metric("musiq-ava");
  CHECK(koniq.weights_file == "musiq_koniq.safetensors");
  CHECK(ava.weights_file == "musiq_ava.safetensors");

  test::TempDir tmp;
  metrics::DeepIqaOptions opt;
  opt.weights_dir = tmp.path;
  CHECK_THROWS_WITH_AS(koniq.load(opt), doctest::Contains("musiq_koniq.safetensors: missing"), Error);
  CHECK_THROWS_WITH_AS(koniq.load(opt), doctest::Contains("convert_iqa_musiq.py"), Error);
  // A 10-bin file where the one-score head is expected.
  fs::copy_file(kDir + "/musiq_tiny_ava.safetensors", tmp.path + "/musiq_koniq.safetensors");
  CHECK_THROWS_WITH_AS(koniq.load(opt), doctest::Contains("10-output head; musiq expects 1"), Error);
  fs::remove(tmp.path + "/musiq_koniq.safetensors");
  fs::copy_file(kDir + "/musiq_tiny.safetensors", tmp.path + "/musiq_koniq.safetensors");
  fs::copy_file(kDir + "/musiq_tiny_ava.safetensors", tmp.path + "/musiq_ava.safetensors");

  auto f = io();
  const Image a = to_image(get(*f, "img_0")), b = to_image(get(*f, "img_batch")), c = to_image(get(*f, "img_2"));
  auto s1 = koniq.load(opt);
  const std::vector<metrics::IqaValue> v = s1->score({&a, &b}, {}, {"a.png", "b.png"});
  REQUIRE(v.size() == 2);
  const torch::Tensor want = get(*f, "batch_scores");
  CHECK(std::abs(v[0].value - want[0].item<double>()) < kTolScore);
  CHECK(std::abs(v[1].value - want[1].item<double>()) < kTolScore);
  auto s2 = ava.load(opt);
  const std::vector<metrics::IqaValue> w = s2->score({&c}, {}, {"c.png"});
  REQUIRE(w.size() == 1);
  CHECK(std::abs(w[0].value - get(*f, "ava_2").item<double>()) < kTolScore);

  // A file that is not MUSIQ's.
  fs::remove(tmp.path + "/musiq_koniq.safetensors");
  write_safetensors(tmp.path + "/musiq_koniq.safetensors", {});
  CHECK_THROWS_WITH_AS(koniq.load(opt), doctest::Contains("not a MUSIQ weight file"), Error);
}
