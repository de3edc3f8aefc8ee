// HQ-SAM against the reference: a tiny random HQ-SAM built from
// segment-anything-hq 0.3's own modules and run by its SamPredictor and
// SamAutomaticMaskGenerator (fixtures from tests/nn/make_hq_sam_fixture.py).
#include "torch_doctest.hpp"

#include <fstream>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/restore_size.hpp"
#include "rass/model/sam_model.hpp"
#include "sam_test_support.hpp"

using namespace rass;
using namespace rass::test;

namespace {

Image hq_image(const std::string& k) { return sam_fixture_rgb("sam_" + k + ".png"); }

nlohmann::json hq_cases() {
  std::ifstream f(kSamFixtures + "/hq_sam_cases.json");
  return nlohmann::json::parse(f);
}

}  // namespace

TEST_CASE("HQ-SAM: HQ features and every prompt case equal sam-hq's SamPredictor") {
  c10::InferenceMode guard;
  auto io = SafeTensorsFile::open(kSamFixtures + "/hq_sam_io.safetensors");
  for (const bool only : {false, true}) {
    model::SamModelOptions opt;
    opt.dir = kSamFixtures + "/hq_sam_tiny";
    opt.hq_token_only = only;
    const model::SamModel m(opt);
    REQUIRE(m.hq);
    for (const std::string k : {"a", "b"}) {
      INFO(k);
      const model::SamInput in = m.prepare(hq_image(k));
      auto [z, early] = m.sam->image_encoder.ptr()->forward_with_early(in.pixels);
      CHECK(sam_rel_err(z, sam_golden(*io, k + "_embedding")) < 1e-4);
      CHECK(sam_rel_err(early, sam_golden(*io, k + "_early")) < 1e-4);
      const torch::Tensor f =
          m.sam->mask_decoder.ptr()->hq_features(sam_golden(*io, k + "_embedding"), sam_golden(*io, k + "_early"));
      CHECK(sam_rel_err(f, sam_golden(*io, k + "_hq_features")) < 1e-5);
    }
    const nlohmann::json cases = hq_cases();  // alive for the loop (a temporary's ["cases"] would dangle)
    for (const auto& c : cases["cases"]) {
      if (c["hq_only"].get<bool>() != only) continue;
      const std::string name = c["name"], k = c["image"];
      INFO(name);
      const model::SamInput in = m.prepare(hq_image(k));
      const model::SamPrediction p = m.predict(sam_golden(*io, k + "_embedding"), sam_case_objects(c), in, c["multimask"], 0,
                                               true, 16, nullptr, sam_golden(*io, k + "_hq_features"));
      const torch::Tensor iou = sam_golden(*io, name + "_iou"), low = sam_golden(*io, name + "_low_res");
      REQUIRE(low.size(0) == 1);  // one mask, multimask or not
      CHECK(std::abs(p.iou[0] - iou[0].item<double>()) < 1e-4);
      const double e = sam_rel_err(p.low_res[0][0], low[0]);
      MESSAGE(name, " low-res logits max error (relative to the largest) ", e);
      CHECK(e < 1e-4);
      // From our own pixels, embedding and HQ features: the mask at the image's size.
      model::SamDecoderFeatures feats;
      const torch::Tensor z = m.embed(in, &feats);
      REQUIRE(feats.extra.defined());
      const model::SamPrediction q = m.predict(z, sam_case_objects(c), in, c["multimask"], 0, false, 16, nullptr, feats);
      const torch::Tensor want = sam_golden(*io, name + "_logits")[0] > 0;
      const torch::Tensor got =
          torch::from_blob(const_cast<uint8_t*>(q.labels.u8()), {q.labels.height, q.labels.width}, torch::kUInt8) == 1;
      CHECK((got != want).sum().item<int64_t>() <= want.numel() / 200);
    }
  }
}

TEST_CASE("HQ-SAM segment everything equals sam-hq's SamAutomaticMaskGenerator (one mask per point)") {
  c10::InferenceMode guard;
  model::SamModelOptions opt;
  opt.dir = kSamFixtures + "/hq_sam_tiny";
  const model::SamModel m(opt);
  auto io = SafeTensorsFile::open(kSamFixtures + "/hq_sam_io.safetensors");
  const nlohmann::json c = hq_cases()["everything"];
  const Image rgb = hq_image(c["image"]);
  model::SamEverythingOptions o = sam_everything_filters(c);
  const std::vector<model::SamMask> got = m.everything(rgb, o);
  REQUIRE(got.size() == c["count"].get<size_t>());
  REQUIRE(got.size() == 16);  // 4 x 4 points, one mask each
  const torch::Tensor iou = sam_golden(*io, "amg_a_iou"), pt = sam_golden(*io, "amg_a_point"),
                      box = sam_golden(*io, "amg_a_box"), bits = sam_golden(*io, "amg_a_masks");
  const int64_t npx = int64_t(rgb.width) * rgb.height;
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("mask ", i);
    const int64_t k = int64_t(i);
    CHECK(std::abs(got[i].iou_pred - iou[k].item<double>()) < 1e-4);
    CHECK(std::abs(got[i].point[0] - pt[k][0].item<double>()) < 1e-3);
    CHECK(std::abs(got[i].point[1] - pt[k][1].item<double>()) < 1e-3);
    const torch::Tensor want = sam_unpack_bits(bits[k], rgb.height, rgb.width);
    const torch::Tensor px = m.mask_pixels(got[i], rgb.width, rgb.height);
    const int64_t differ = (px != want).sum().item<int64_t>();
    CHECK(differ <= npx / 200);
    for (int q = 0; q < 4; ++q)
      CHECK(std::abs(double(got[i].box[size_t(q)]) - box[k][q].item<double>()) <= (differ > 0 ? 1 : 0));
  }
}

TEST_CASE("HQ-SAM folders: --hq off is SAM's tokens, refusals") {
  c10::InferenceMode guard;
  model::SamModelOptions opt;
  opt.dir = kSamFixtures + "/hq_sam_tiny";
  opt.hq = "off";
  const model::SamModel m(opt);
  CHECK_FALSE(m.hq);
  model::SamDecoderFeatures feats;
  m.embed(m.prepare(hq_image("a")), &feats);
  CHECK_FALSE(feats.extra.defined());
  auto load = [](const model::SamModelOptions& o) { model::SamModel x(o); };
  opt.hq_token_only = true;
  CHECK_THROWS_AS(load(opt), rass::Error);  // the HQ token is off
  model::SamModelOptions plain;
  plain.dir = kSamFixtures + "/sam_tiny";
  plain.hq = "on";
  CHECK_THROWS_AS(load(plain), rass::Error);  // not an HQ-SAM folder
}
