// The gradients of one rass-train ras step equal the released code's
// (tests/train/make_ras_grad_fixture.py runs Ka1Guan/RASS's backbone and
// Mask2Former's head on the tiny RAS folder, with a fixed function of the
// head's outputs as the loss).
#include "nn/torch_doctest.hpp"

#include <filesystem>

#include "rass/io/image_io.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/train/ras_stage.hpp"
#include "test_support.hpp"

using namespace rass;
using namespace rass::train;

TEST_CASE("ras stage: one backward pass equals the released code's gradients (Seg LoRA, conv_in, projection, head)") {
  const std::string fx = std::string(RASS_FIXTURES) + "/train/ras_grad.safetensors";
  const auto f = SafeTensorsFile::open(fx);
  auto get = [&](const std::string& n) {
    const auto* v = f->find(n);
    REQUIRE_MESSAGE(v, n);
    return model::to_tensor(*v, fx);
  };
  test::TempDir t;
  std::filesystem::create_directories(t.path + "/images");
  std::filesystem::create_directories(t.path + "/labels");
  write_image(t.path + "/images/a.png", Image(64, 64, 3, 8));
  write_image(t.path + "/labels/a.png", Image(64, 64, 1, 8));
  StageEnv env;
  env.quiet = true;
  // With loop.gradient_checkpointing the UNet's blocks are replayed in the
  // backward pass: the same gradients.
  SUBCASE("plain") {}
  SUBCASE("gradient checkpointing") { env.gradient_checkpointing = true; }
  const nlohmann::ordered_json s = {{"model", std::string(RASS_FIXTURES) + "/nn/ras_tiny"},
                                    {"images", t.path + "/images"}, {"labels", t.path + "/labels"}, {"crop_size", 64}};
  RasStage stage(parse_ras_settings(s), env);
  std::map<std::string, torch::Tensor> params;
  for (const auto& g : stage.param_groups())
    for (const auto& [n, p] : g.params) params[n] = p;

  const torch::Tensor ctx = torch::cat({stage.encode_prompt("wall sky tree"), stage.encode_prompt("")});
  const nn::MaskFormerOutput o = stage.forward(get("x"), ctx, torch::Tensor());
  std::vector<std::pair<torch::Tensor, torch::Tensor>> preds{{o.pred_logits, o.pred_masks}};
  for (const auto& a : o.aux) preds.push_back(a);
  REQUIRE(std::to_string(preds.size()) == f->metadata().at("preds"));
  torch::Tensor loss = torch::zeros({});
  for (size_t k = 0; k < preds.size(); ++k)
    loss = loss + (preds[k].first * get("A" + std::to_string(k))).mean() + (preds[k].second * get("M" + std::to_string(k))).mean();
  CHECK(loss.item<double>() == doctest::Approx(get("loss").item<double>()).epsilon(1e-4));
  loss.backward();

  size_t compared = 0;
  for (const auto& e : f->tensors()) {
    if (e.name.rfind("grad.", 0) != 0) continue;
    const std::string name = e.name.substr(5);
    INFO(name);
    REQUIRE(params.count(name) == 1);
    const torch::Tensor want = get(e.name), got = params[name].grad();
    REQUIRE(got.defined());
    REQUIRE(got.sizes() == want.sizes());
    // fp32 through the UNet's and the head's reductions: a relative bound on the tensor's scale.
    const double scale = want.abs().max().item<double>();
    const double err = (got - want).abs().max().item<double>();
    CHECK(err <= 2e-4 * scale + 1e-7);
    ++compared;
  }
  CHECK(compared == params.size());  // every trainable tensor, no more, no fewer
  size_t nonzero = 0;
  for (const auto& [n, p] : params) nonzero += p.grad().abs().max().item<double>() > 0;
  CHECK(nonzero * 2 > params.size());  // the Seg LoRA's A and B both get gradients here
}
