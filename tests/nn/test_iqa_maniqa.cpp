// MANIQA against the official network (IIGROUP/MANIQA models/, per-crop
// scores) and pyiqa 0.1.16's MANIQA (oracle, 20 uniform-grid crops) on a tiny
// random model converted by scripts/convert_iqa_maniqa.py (fixtures from
// tests/nn/make_iqa_maniqa_fixture.py).
#include "torch_doctest.hpp"

#include <cstring>
#include <set>

#include "rass/core/error.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/metrics/deep_iqa.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/iqa_maniqa.hpp"

using namespace rass;

namespace {

const std::string kDir = std::string(RASS_FIXTURES) + "/nn/maniqa";

torch::Tensor golden(const char* key) {
  static auto f = SafeTensorsFile::open(kDir + "/golden.safetensors");
  const TensorView* v = f->find(key);
  REQUIRE(v != nullptr);
  return model::to_tensor(*v, f->path());
}

torch::Tensor as_input(const torch::Tensor& img) { return img.permute({0, 3, 1, 2}).div(255); }

}  // namespace

TEST_CASE("MANIQA equals the official network per crop and pyiqa's 20-crop score to 1e-5 (fp32)") {
  nn::Maniqa net = model::load_maniqa(kDir + "/maniqa_koniq.safetensors", torch::kCPU);
  CHECK(net->config.img_size == 64);
  CHECK(net->config.window_size == 4);
  CHECK(net->config.scale == doctest::Approx(0.8));

  // The official network on given crops.
  const torch::Tensor x = as_input(golden("img_a")).slice(0, 0, 1);
  const torch::Tensor pos = golden("official_pos");
  std::vector<std::pair<int64_t, int64_t>> crops;
  std::vector<torch::Tensor> tiles;
  for (int64_t k = 0; k < pos.size(0); ++k) {
    const int64_t t = pos[k][0].item<int64_t>(), l = pos[k][1].item<int64_t>();
    crops.emplace_back(t, l);
    tiles.push_back(x[0].slice(1, t, t + 64).slice(2, l, l + 64));
  }
  torch::Tensor per_crop;
  {
    torch::InferenceMode guard;
    per_crop = net->crop_scores((torch::stack(tiles) - 0.5) / 0.5);
  }
  const torch::Tensor want = golden("official_crop_scores");
  const double e_crop = (per_crop - want).abs().max().item<double>();
  const double e_mean =
      std::abs(model::maniqa_score_official(*net, x, crops) - want.to(torch::kDouble).mean().item<double>());
  MESSAGE("official per-crop max abs error ", e_crop, ", mean of crops ", e_mean);
  CHECK(e_crop < 1e-5);
  CHECK(e_mean < 1e-5);

  // pyiqa's protocol: a larger image, one resized up (short side < crop), one exactly the crop size high.
  for (std::string tag : {"a", "b", "c"}) {
    INFO("images " << tag);
    const torch::Tensor imgs = as_input(golden(("img_" + tag).c_str()));
    const double e = (model::maniqa_score_pyiqa(*net, imgs) - golden(("pyiqa_" + tag).c_str())).abs().max().item<double>();
    MESSAGE("pyiqa maniqa ", imgs.sizes(), ": max abs error ", e);
    CHECK(e < 1e-5);
  }
}

TEST_CASE("maniqa@official crops: keyed by item and seed, inside the image, the reference's range") {
  const auto a = model::maniqa_official_crops(300, 400, 224, 0, "img1");
  CHECK(a.size() == 20);
  CHECK(a == model::maniqa_official_crops(300, 400, 224, 0, "img1"));
  CHECK(a != model::maniqa_official_crops(300, 400, 224, 0, "img2"));
  CHECK(a != model::maniqa_official_crops(300, 400, 224, 1, "img1"));
  std::set<int64_t> tops, lefts;
  for (const auto& [t, l] : model::maniqa_official_crops(230, 226, 224, 5, "k", 400)) tops.insert(t), lefts.insert(l);
  // np.random.randint(0, h - 224): [0, h - 224), every value reached.
  CHECK(tops == std::set<int64_t>{0, 1, 2, 3, 4, 5});
  CHECK(lefts == std::set<int64_t>{0, 1});
  for (const auto& [t, l] : model::maniqa_official_crops(224, 224, 224, 5, "k")) CHECK((t == 0 && l == 0));
}

TEST_CASE("maniqa metrics through rass-eval-iqa's registry; small images and missing weights refused") {
  model::register_maniqa_metric();
  metrics::DeepIqaOptions opt;
  opt.weights_dir = kDir;
  const metrics::DeepIqaMetric* m = metrics::find_deep_iqa_metric("maniqa");
  REQUIRE(m != nullptr);
  CHECK(m->weights_file == "maniqa_koniq.safetensors");
  const auto scorer = m->load(opt);
  const torch::Tensor img = golden("img_a").to(torch::kUInt8).contiguous();
  std::vector<Image> imgs;
  for (int64_t n = 0; n < 2; ++n) {
    Image im(96, 80, 3, 8);
    std::memcpy(im.u8(), img[n].data_ptr<uint8_t>(), im.data.size());
    imgs.push_back(std::move(im));
  }
  const std::vector<metrics::IqaValue> v = scorer->score({&imgs[0], &imgs[1]}, {}, {"a0", "a1"});
  const torch::Tensor want = golden("pyiqa_a");
  for (int i = 0; i < 2; ++i) CHECK(std::abs(v[size_t(i)].value - want[i].item<double>()) < 1e-5);

  // maniqa@official: reproducible per key and seed; a too-small image is bad input.
  const auto official = metrics::find_deep_iqa_metric("maniqa@official")->load(opt);
  const auto s1 = official->score({&imgs[0]}, {}, {"a0"}), s2 = official->score({&imgs[0]}, {}, {"a0"});
  CHECK(s1[0].value == s2[0].value);
  Image small(60, 80, 3, 8);
  try {
    official->score({&small}, {}, {"s"});
    FAIL("a 60-pixel-wide image was scored");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::bad_input);
  }

  for (std::string name : {"maniqa-kadid", "maniqa-pipal"}) {
    try {
      metrics::find_deep_iqa_metric(name)->load(opt);
      FAIL("loaded without its file: " << name);
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::bad_input);
      CHECK(std::string(e.what()).find("convert_iqa_maniqa.py") != std::string::npos);
    }
  }
}
