// LPIPS (alex and vgg trunks) against the official lpips package on narrow
// random trunks (fixtures and golden scores from tests/nn/make_iqa_lpips_fixture.py,
// weights written by scripts/convert_iqa_lpips.py): scores through the
// rass-eval-iqa metric (batched and single), gradients for the training loss,
// and the refusals (small image, wrong trunk, missing file).
#include "torch_doctest.hpp"
#include "tolerances.hpp"

#include "rass/core/error.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/metrics/deep_iqa.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/iqa_common.hpp"
#include "rass/model/iqa_lpips.hpp"

using namespace rass;

namespace {

const std::string kDir = std::string(RASS_FIXTURES) + "/iqa";

struct Pairs {
  std::vector<Image> a, b;
};

Pairs fixture_pairs() {
  Pairs p;
  for (int i = 0; i < 3; ++i) {
    p.a.push_back(read_image(kDir + "/lpips_a" + std::to_string(i) + ".png"));
    p.b.push_back(read_image(kDir + "/lpips_b" + std::to_string(i) + ".png"));
  }
  return p;
}

torch::Tensor golden(const std::string& file, const std::string& key) {
  auto f = SafeTensorsFile::open(kDir + "/" + file);
  REQUIRE(f->find(key) != nullptr);
  return model::to_tensor(*f->find(key), f->path());
}

// Scores of pairs 0+1 (one batch) and 2 through the registered metric.
std::vector<double> metric_scores(const std::string& name, const Pairs& p) {
  model::register_lpips_metric();
  const metrics::DeepIqaMetric* m = metrics::find_deep_iqa_metric(name);
  REQUIRE(m != nullptr);
  metrics::DeepIqaOptions opt;
  opt.weights_dir = kDir;
  opt.threads = 1;
  const auto scorer = m->load(opt);
  std::vector<double> out;
  for (const auto& v : scorer->score({&p.a[0], &p.a[1]}, {&p.b[0], &p.b[1]}, {"0", "1"})) out.push_back(v.value);
  out.push_back(scorer->score({&p.a[2]}, {&p.b[2]}, {"2"})[0].value);
  return out;
}

}  // namespace

TEST_CASE("LPIPS scores equal the official lpips package (alex, vgg; batched and single)") {
  const Pairs p = fixture_pairs();
  for (const std::string net : {"alex", "vgg"}) {
    const std::vector<double> got = metric_scores(net == "alex" ? "lpips" : "lpips-vgg", p);
    const torch::Tensor want = golden("lpips_golden.safetensors", net + ".score");
    REQUIRE(want.numel() == 3);
    double err = 0;
    for (int i = 0; i < 3; ++i) err = std::max(err, std::abs(got[i] - want[i].item<double>()));
    MESSAGE("LPIPS ", net, " score max abs error ", err, " (scores ", got[0], ", ", got[1], ", ", got[2], ")");
    CHECK(err < TOL_IQA_SCORE);
  }
}

TEST_CASE("LPIPS gradients with respect to the image equal the official package's") {
  const Pairs p = fixture_pairs();
  for (const std::string net : {"alex", "vgg"}) {
    nn::Lpips lp = model::load_lpips(kDir + "/lpips_" + net + ".safetensors", torch::kCPU);
    // The loss API takes images in [-1,1]; the weights stay frozen.
    const torch::Tensor x = (model::images_to_tensor({&p.a[0], &p.a[1]}) * 2 - 1).requires_grad_(true);
    const torch::Tensor y = model::images_to_tensor({&p.b[0], &p.b[1]}) * 2 - 1;
    const torch::Tensor d = lp->forward(x, y);
    CHECK(d.sizes() == torch::IntArrayRef{2});
    d.sum().backward();
    for (const auto& prm : lp->parameters()) CHECK(!prm.grad().defined());
    const torch::Tensor want = golden("lpips_golden.safetensors", net + ".grad_x");
    REQUIRE(x.grad().sizes() == want.sizes());
    const double err = (x.grad() - want).abs().max().item<double>();
    MESSAGE("LPIPS ", net, " gradient max abs error ", err, " (max |grad| ", want.abs().max().item<double>(), ")");
    CHECK(err < TOL_IQA_GRAD);
  }
}

TEST_CASE("LPIPS refuses small images, the wrong trunk and a missing weight file") {
  const Pairs p = fixture_pairs();
  model::register_lpips_metric();
  metrics::DeepIqaOptions opt;
  opt.weights_dir = kDir;
  const auto scorer = metrics::find_deep_iqa_metric("lpips")->load(opt);
  Image small(30, 40, 3);
  try {
    scorer->score({&small}, {&small}, {"s"});
    FAIL("a 30x40 image should be refused by AlexNet");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::bad_input);
    CHECK(std::string(e.what()).find("at least 31") != std::string::npos);
  }
  const nn::LpipsTrunk alex = nn::LpipsTrunk::alex;
  try {
    model::load_lpips(kDir + "/lpips_vgg.safetensors", torch::kCPU, &alex);
    FAIL("a VGG16 file should be refused as AlexNet");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::bad_input);
    CHECK(std::string(e.what()).find("VGG16") != std::string::npos);
  }
  opt.weights_dir = std::string(RASS_FIXTURES) + "/images";
  try {
    metrics::find_deep_iqa_metric("lpips-vgg")->load(opt);
    FAIL("a folder without lpips_vgg.safetensors should be refused");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::bad_input);
    CHECK(std::string(e.what()).find("lpips_vgg.safetensors") != std::string::npos);
    CHECK(std::string(e.what()).find("convert_iqa_lpips.py vgg") != std::string::npos);
  }
}
