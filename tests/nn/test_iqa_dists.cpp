// DISTS against the official DISTS_pytorch on a narrow random VGG16 (fixtures
// and golden values from tests/nn/make_iqa_dists_fixture.py, weights written by
// scripts/convert_iqa_dists.py): scores through the rass-eval-iqa metric
// (batched and single) and gradients with respect to the image.
#include "torch_doctest.hpp"
#include "tolerances.hpp"

#include "rass/io/image_io.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/metrics/deep_iqa.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/iqa_common.hpp"
#include "rass/model/iqa_dists.hpp"

using namespace rass;

namespace {
const std::string kDir = std::string(RASS_FIXTURES) + "/iqa";

torch::Tensor golden(const std::string& key) {
  auto f = SafeTensorsFile::open(kDir + "/dists_golden.safetensors");
  REQUIRE(f->find(key) != nullptr);
  return model::to_tensor(*f->find(key), f->path());
}
}  // namespace

TEST_CASE("DISTS scores and gradients equal the official DISTS_pytorch") {
  std::vector<Image> a, b;
  for (int i = 0; i < 3; ++i) {
    a.push_back(read_image(kDir + "/lpips_a" + std::to_string(i) + ".png"));
    b.push_back(read_image(kDir + "/lpips_b" + std::to_string(i) + ".png"));
  }
  model::register_dists_metric();
  metrics::DeepIqaOptions opt;
  opt.weights_dir = kDir;
  opt.threads = 1;
  const auto scorer = metrics::find_deep_iqa_metric("dists")->load(opt);
  std::vector<double> got;
  for (const auto& v : scorer->score({&a[0], &a[1]}, {&b[0], &b[1]}, {"0", "1"})) got.push_back(v.value);
  got.push_back(scorer->score({&a[2]}, {&b[2]}, {"2"})[0].value);
  const torch::Tensor want = golden("score");
  double err = 0;
  for (int i = 0; i < 3; ++i) err = std::max(err, std::abs(got[i] - want[i].item<double>()));
  MESSAGE("DISTS score max abs error ", err, " (scores ", got[0], ", ", got[1], ", ", got[2], ")");
  CHECK(err < TOL_IQA_SCORE);

  nn::Dists net = model::load_dists(kDir + "/dists.safetensors", torch::kCPU);
  const torch::Tensor x = model::images_to_tensor({&a[0], &a[1]}).requires_grad_(true);
  net->forward(x, model::images_to_tensor({&b[0], &b[1]})).sum().backward();
  const torch::Tensor gw = golden("grad_x");
  const double gerr = (x.grad() - gw).abs().max().item<double>();
  MESSAGE("DISTS gradient max abs error ", gerr, " (max |grad| ", gw.abs().max().item<double>(), ")");
  CHECK(gerr < TOL_IQA_GRAD);
}

TEST_CASE("dists@official resizes as the DISTS repository's script; dists keeps full resolution") {
  const Image a = read_image(kDir + "/dists_a3.png"), b = read_image(kDir + "/dists_b3.png");
  REQUIRE(a.width == 300);
  REQUIRE(a.height == 280);
  model::register_dists_metric();
  metrics::DeepIqaOptions opt;
  opt.weights_dir = kDir;
  opt.threads = 1;
  const double full = metrics::find_deep_iqa_metric("dists")->load(opt)->score({&a}, {&b}, {"3"})[0].value;
  const double official =
      metrics::find_deep_iqa_metric("dists@official")->load(opt)->score({&a}, {&b}, {"3"})[0].value;
  const double e_full = std::abs(full - golden("full.score")[0].item<double>());
  const double e_off = std::abs(official - golden("official.score")[0].item<double>());
  MESSAGE("DISTS 300x280 full-resolution error ", e_full, ", resized (dists@official) error ", e_off);
  CHECK(e_full < TOL_IQA_SCORE);
  CHECK(e_off < TOL_IQA_SCORE);
  // Small images are not resized: both names agree there.
  const Image s0 = read_image(kDir + "/lpips_a0.png"), s1 = read_image(kDir + "/lpips_b0.png");
  CHECK(metrics::find_deep_iqa_metric("dists@official")->load(opt)->score({&s0}, {&s1}, {"0"})[0].value ==
        doctest::Approx(golden("score")[0].item<double>()).epsilon(1e-5));
}
