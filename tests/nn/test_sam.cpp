// Segment Anything v1 and GleSAM's enhancement against the references: a
// tiny random SAM built from segment-anything 1.0's own modules and run by
// its SamPredictor, the enhancement by diffusers' UNet and transformers' CLIP
// (fixtures from tests/nn/make_sam_fixture.py).
#include "torch_doctest.hpp"

#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/sam_model.hpp"
#include "rass/model/sam_prompts.hpp"
#include "rass/model/restore_size.hpp"
#include "sam_test_support.hpp"

using namespace rass;
using namespace rass::test;

static const std::string kDir = std::string(RASS_FIXTURES) + "/nn";

namespace {

double max_err(const torch::Tensor& a, const torch::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return (a.to(torch::kFloat) - b.to(torch::kFloat)).abs().max().item<double>();
}

// The label map the reference's full-size logits give (the highest logit > 0
// wins, else `fill`), for the mask SamModel keeps (token 0, or the highest
// predicted IoU); pixels within `eps` of a decision are not compared.
void check_labels(const torch::Tensor& logits, const torch::Tensor& iou, bool multimask, const Image& got, int fill,
                  double eps) {
  const int64_t n = logits.size(0);
  std::vector<torch::Tensor> chosen;
  for (int64_t i = 0; i < n; ++i) chosen.push_back(logits[i][multimask ? iou[i].argmax().item<int64_t>() : 0]);
  const torch::Tensor all = torch::stack(chosen);  // [n, H, W]
  const auto [best, arg] = all.max(0);
  const torch::Tensor want = torch::where(best > 0, arg + 1, torch::full_like(arg, fill));
  // Undecided pixels: the best logit near 0, or two objects' logits near each other.
  torch::Tensor unsure = best.abs() < eps;
  if (n > 1) {
    const torch::Tensor top2 = std::get<0>(all.topk(2, 0));
    unsure = unsure | ((top2[0] - top2[1]).abs() < eps);
  }
  REQUIRE(got.width == all.size(2));
  REQUIRE(got.height == all.size(1));
  int64_t wrong = 0, compared = 0;
  for (int y = 0; y < got.height; ++y)
    for (int x = 0; x < got.width; ++x) {
      if (unsure[y][x].item<bool>()) continue;
      ++compared;
      wrong += got.u8()[size_t(y) * got.width + x] != want[y][x].item<int64_t>();
    }
  CHECK(wrong == 0);
  CHECK(compared > got.width * got.height * 9 / 10);
}

}  // namespace

TEST_CASE("SAM: preprocessing, image embedding and every prompt case equal segment-anything's SamPredictor") {
  c10::InferenceMode guard;
  model::SamModelOptions opt;
  opt.dir = kDir + "/sam_tiny";
  const model::SamModel m(opt);
  CHECK_FALSE(m.enhancing);
  auto io = SafeTensorsFile::open(kDir + "/sam_io.safetensors");
  std::ifstream cf(kDir + "/sam_cases.json");
  const nlohmann::json cases = nlohmann::json::parse(cf);
  std::map<std::string, model::SamInput> inputs;
  std::map<std::string, torch::Tensor> embeddings;
  for (const std::string k : {"a", "b"}) {
    INFO(k);
    const model::SamInput in = m.prepare(sam_fixture_rgb(std::string("sam_") + k + ".png"));
    // Pillow's bilinear resize is exact on 8-bit data: only float rounding differs.
    CHECK(max_err(in.pixels, sam_golden(*io, std::string(k) + "_pixels")) < 1e-5);
    const torch::Tensor z = m.embed(in);
    const double e = max_err(z, sam_golden(*io, std::string(k) + "_features"));
    MESSAGE(k, " embedding max abs error ", e);
    CHECK(e < 2e-5);
    inputs[k] = in;
    embeddings[k] = sam_golden(*io, std::string(k) + "_features");  // each stage from the reference's input
  }
  CHECK(inputs["a"].resized_width == 64);
  CHECK(inputs["a"].resized_height == 45);  // int(37 * 64 / 53 + 0.5)
  CHECK(inputs["b"].resized_height == 41);  // int(97 * 64 / 150 + 0.5)
  for (const auto& c : cases) {
    const std::string name = c["name"];
    INFO(name);
    const bool multi = c["multimask"];
    const auto objs = sam_case_objects(c);
    const model::SamPrediction p =
        m.predict(embeddings[c["image"].get<std::string>()], objs, inputs[c["image"].get<std::string>()], multi, 0, true, 2);
    const torch::Tensor iou = sam_golden(*io, name + "_iou"), low = sam_golden(*io, name + "_low_res");
    // The kept mask of each object: token 0, or the highest predicted IoU.
    const torch::Tensor pick = multi ? iou.argmax(1) : torch::zeros({iou.size(0)}, torch::kLong);
    for (int64_t i = 0; i < iou.size(0); ++i) {
      // LibTorch 2.x's CPU kernels (fused attention) round otherwise: 3e-5 and 2.5e-5 of the logits seen there.
      CHECK(std::abs(p.iou[size_t(i)] - iou[i][pick[i]].item<double>()) < 1e-4);
      CHECK(p.chosen[size_t(i)] == pick[i].item<int64_t>() + (multi ? 1 : 0));
      const double e = max_err(p.low_res[i][0], low[i][pick[i]]);
      const double scale = std::max(1.0, low[i][pick[i]].abs().max().item<double>());
      MESSAGE(name, " object ", i, " low-res logits max abs error ", e, " (largest logit ", scale, ")");
      CHECK(e < 5e-5 * scale);  // float32 rounding (other batch sizes, other kernels), relative to the logits
    }
    check_labels(sam_golden(*io, name + "_logits"), iou, multi, p.labels, 0, 1e-3);
  }
  // Scores against a ground-truth map (GleSAM's mask_iou and Dice per object),
  // worked here from the reference's logits: objects 1..3 of case boxes3 on a
  // map whose label k is its box's pixels (object 3's box spans the image, so
  // its truth is what the other two leave).
  const nlohmann::json& c3 = cases[3];
  REQUIRE(c3["name"] == "boxes3");
  const model::SamInput& in = inputs["a"];
  Image gt(in.width, in.height, 1, 8);
  for (int k = 3; k >= 1; --k) {
    const auto& b = c3["boxes"][size_t(k - 1)];
    for (int y = b[1].get<int>(); y <= b[3].get<int>(); ++y)
      for (int x = b[0].get<int>(); x <= b[2].get<int>(); ++x) gt.u8()[size_t(y) * in.width + x] = uint8_t(k);
  }
  const model::SamPrediction p = m.predict(embeddings["a"], sam_case_objects(c3), in, false, 0, false, 16, &gt);
  const torch::Tensor logits = sam_golden(*io, "boxes3_logits");
  REQUIRE(p.gt_iou.size() == 3);
  for (int k = 1; k <= 3; ++k) {
    double inter = 0, pred = 0, truth = 0, agree = 0;
    for (int y = 0; y < in.height; ++y)
      for (int x = 0; x < in.width; ++x) {
        const bool a = logits[k - 1][0][y][x].item<float>() > 0, t = gt.u8()[size_t(y) * in.width + x] == k;
        inter += a && t, pred += a, truth += t, agree += a == t;
      }
    INFO("object ", k);
    // A pixel whose logit is within rounding of 0 may fall either way on other builds.
    CHECK(std::abs(p.gt_iou[size_t(k - 1)] - inter / (pred + truth - inter)) <= 1.01 / (pred + truth - inter - 1));
    CHECK(std::abs(p.gt_dice[size_t(k - 1)] - 2 * inter / (pred + truth)) <= 2.01 / (pred + truth - 1));
    // GleSAM's PA: agreeing pixels of the whole image.
    const double all = double(in.width) * in.height;
    CHECK(std::abs(p.gt_pa[size_t(k - 1)] - agree / all) <= 1.01 / all);
    CHECK(truth > 0);
  }
}

TEST_CASE("SAM: the prompt encoder's mask input equals the reference's") {
  c10::InferenceMode guard;
  model::SamModelOptions opt;
  opt.dir = kDir + "/sam_tiny";
  const model::SamModel m(opt);
  auto io = SafeTensorsFile::open(kDir + "/sam_io.safetensors");
  const model::SamInput in = m.prepare(sam_fixture_rgb("sam_a.png"));
  nn::SamPrompts p;
  const double s = double(in.resized_width) / in.width;  // 64 / 53 on both axes within rounding
  p.point_coords = torch::tensor({float(30.0 * s), float(20.0 * double(in.resized_height) / in.height)}).view({1, 1, 2});
  p.point_labels = torch::ones({1, 1});
  p.masks = sam_golden(*io, "points_low_res")[0].unsqueeze(0);
  const auto [low, iou] = m.sam->decode(sam_golden(*io, "a_features"), p, false);
  CHECK(max_err(low, sam_golden(*io, "mask_input_low_res")) < 5e-5 * std::max(1.0, low.abs().max().item<double>()));
  CHECK(max_err(iou, sam_golden(*io, "mask_input_iou")) < 1e-4);
}

TEST_CASE("GleSAM: the enhanced embedding and its masks equal the reference's (diffusers UNet, float64 x0)") {
  c10::InferenceMode guard;
  model::SamModelOptions opt;
  opt.dir = kDir + "/sam_tiny_gle";
  const model::SamModel m(opt);
  REQUIRE(m.enhancing);
  CHECK(m.config.feat_weight == 3.0);
  auto io = SafeTensorsFile::open(kDir + "/sam_io.safetensors");
  std::ifstream cf(kDir + "/sam_cases.json");
  const nlohmann::json cases = nlohmann::json::parse(cf);
  for (const std::string k : {"a", "b"}) {
    INFO(k);
    const torch::Tensor z = m.enhance(sam_golden(*io, std::string(k) + "_features"));
    const double e = max_err(z, sam_golden(*io, std::string(k) + "_gle_features"));
    MESSAGE(k, " enhanced embedding max abs error ", e);
    CHECK(e < 2e-5);
    // The enhancement changes the embedding: the test would notice it skipped.
    CHECK(max_err(sam_golden(*io, std::string(k) + "_features"), sam_golden(*io, std::string(k) + "_gle_features")) > 1e-2);
    // And embed() = enhance(encoder) end to end.
    const model::SamInput in = m.prepare(sam_fixture_rgb(std::string("sam_") + k + ".png"));
    CHECK(max_err(m.embed(in), sam_golden(*io, std::string(k) + "_gle_features")) < 5e-5);
  }
  for (const auto& c : cases) {
    const std::string name = c["name"], img = c["image"];
    INFO(name);
    const bool multi = c["multimask"];
    const model::SamInput in = m.prepare(sam_fixture_rgb("sam_" + img + ".png"));
    const model::SamPrediction p = m.predict(sam_golden(*io, img + "_gle_features"), sam_case_objects(c), in, multi, 0, true);
    const torch::Tensor iou = sam_golden(*io, "gle_" + name + "_iou");
    check_labels(sam_golden(*io, "gle_" + name + "_logits"), iou, multi, p.labels, 0, 1e-3);
  }
  opt.enhance = "off";
  CHECK_FALSE(model::SamModel(opt).enhancing);
}

TEST_CASE("SAM prompts from a label map: tight boxes, seeded distinct points, skipped values") {
  Image lab(6, 4, 1, 8);
  // 0 0 1 1 1 255
  // 0 0 1 1 1 255
  // 2 2 2 0 0 0
  // 2 2 2 0 0 255
  const uint8_t v[] = {0, 0, 1, 1, 1, 255, 0, 0, 1, 1, 1, 255, 2, 2, 2, 0, 0, 0, 2, 2, 2, 0, 0, 255};
  std::copy(std::begin(v), std::end(v), lab.u8());
  model::SamLabelPrompts how;
  how.kind = model::SamPromptKind::box_points;
  how.points = 3;
  how.skip = {255, 0};
  const auto objs = model::sam_objects_from_labels(lab, how, "k", "lab.png");
  REQUIRE(objs.size() == 2);
  CHECK(objs[0].label == 1);
  CHECK((*objs[0].box == std::array<double, 4>{2, 0, 4, 1}));
  CHECK(objs[1].label == 2);
  CHECK((*objs[1].box == std::array<double, 4>{0, 2, 2, 3}));
  for (const auto& o : objs) {
    REQUIRE(o.points.size() == 3);
    std::set<std::pair<int, int>> seen;
    for (const auto& p : o.points) {
      CHECK(lab.u8()[size_t(p[1]) * 6 + size_t(p[0])] == o.label);  // inside the object
      seen.insert({int(p[0]), int(p[1])});
    }
    CHECK(seen.size() == 3);  // distinct
  }
  // Deterministic per (seed, key), different for another key or seed.
  CHECK((model::sam_objects_from_labels(lab, how, "k", "lab.png")[0].points == objs[0].points));
  bool differs = false;
  for (int s = 1; s < 8 && !differs; ++s) {
    how.seed = uint64_t(s);
    differs = model::sam_objects_from_labels(lab, how, "k", "lab.png")[1].points != objs[1].points;
  }
  CHECK(differs);
  // An object of one pixel: that pixel for every point (GleSAM's get_point_prompt repeats it).
  Image one(3, 3, 1, 8);
  one.u8()[4] = 7;
  how.skip = {0};
  const auto o1 = model::sam_objects_from_labels(one, how, "k", "one.png");
  REQUIRE(o1.size() == 1);
  CHECK((o1[0].points == std::vector<std::array<double, 2>>(3, {1.0, 1.0})));
  // Boxes only: no points drawn.
  how.kind = model::SamPromptKind::box;
  CHECK(model::sam_objects_from_labels(one, how, "k", "one.png")[0].points.empty());
  CHECK_THROWS_AS(model::sam_objects_from_labels(Image(2, 2, 3, 8), how, "k", "rgb.png"), rass::Error);
}

TEST_CASE("SAM prompt flags: points, boxes and kinds parse; malformed ones are usage errors") {
  CHECK((model::parse_sam_point("3,4").first == std::array<double, 2>{3, 4}));
  CHECK(model::parse_sam_point("3,4").second == 1);
  CHECK(model::parse_sam_point("3.5,4,0").second == 0);
  CHECK((model::parse_sam_box("1,2,3,4") == std::array<double, 4>{1, 2, 3, 4}));
  for (const char* bad : {"", "3", "3,", "a,b", "1,2,3,4", "1,2,5", "nan,1", "1e400,2"}) {
    INFO(bad);
    CHECK_THROWS_AS(model::parse_sam_point(bad), rass::Error);
  }
  for (const char* bad : {"1,2,3", "3,2,1,4", "1,4,3,2", "1,2,3,4,5"}) {
    INFO(bad);
    CHECK_THROWS_AS(model::parse_sam_box(bad), rass::Error);
  }
  CHECK(model::parse_sam_prompt_kind("box+points") == model::SamPromptKind::box_points);
  CHECK_THROWS_AS(model::parse_sam_prompt_kind("boxes"), rass::Error);
  std::vector<model::SamObject> objs(1);
  objs[0].points = {{10, 5}};
  objs[0].point_labels = {1};
  CHECK_NOTHROW(model::check_sam_objects(objs, 10, 5, "x"));
  objs[0].points = {{10.5, 5}};
  CHECK_THROWS_AS(model::check_sam_objects(objs, 10, 5, "x"), rass::Error);
}

TEST_CASE("SAM segment everything equals segment-anything's SamAutomaticMaskGenerator (one crop layer)") {
  c10::InferenceMode guard;
  model::SamModelOptions opt;
  opt.dir = kDir + "/sam_tiny";
  const model::SamModel m(opt);
  auto io = SafeTensorsFile::open(kDir + "/sam_io.safetensors");
  std::ifstream cf(kDir + "/sam_amg_cases.json");
  const nlohmann::json cases = nlohmann::json::parse(cf);
  REQUIRE(cases.size() == 10);
  for (const auto& c : cases) {
    const std::string name = c["name"], img = c["image"];
    INFO(name);
    const model::SamInput in = m.prepare(sam_fixture_rgb("sam_" + img + ".png"));
    model::SamEverythingOptions o = sam_everything_filters(c);
    // The reference's embedding, through one crop's pass (the whole image).
    const rass::SamCrop whole{{0, 0, in.width, in.height}, 0};
    const std::vector<model::SamMask> got =
        m.everything_crop(sam_golden(*io, img + "_features"), torch::Tensor(), in, o, whole, o.points_per_side, in.width,
                          in.height);
    REQUIRE(got.size() == c["count"].get<size_t>());
    const torch::Tensor box = sam_golden(*io, name + "_box"), iou = sam_golden(*io, name + "_iou"),
                        stab = sam_golden(*io, name + "_stability"), pt = sam_golden(*io, name + "_point"),
                        masks = sam_golden(*io, name + "_masks");
    for (size_t i = 0; i < got.size(); ++i) {
      INFO("mask ", i);
      CHECK(std::abs(got[i].iou_pred - iou[int64_t(i)].item<double>()) < 1e-4);
      CHECK(std::abs(got[i].stability - stab[int64_t(i)].item<double>()) < 0.01);
      CHECK(std::abs(got[i].point[0] - pt[int64_t(i)][0].item<double>()) < 1e-9);
      CHECK(std::abs(got[i].point[1] - pt[int64_t(i)][1].item<double>()) < 1e-9);
      const torch::Tensor want = masks[int64_t(i)] > 0.5;
      const torch::Tensor pixels = m.upsample_logits(got[i].mask, in) > 0;
      const int64_t differ = (pixels != want).sum().item<int64_t>();
      CHECK(differ <= want.numel() / 200);  // pixels whose logit is within rounding of 0
      // The box is the reference's exactly where the pixels are.
      for (int q = 0; q < 4; ++q)
        CHECK(std::abs(double(got[i].box[size_t(q)]) - box[int64_t(i)][q].item<double>()) <= (differ > 0 ? 1 : 0));
      CHECK(got[i].area == pixels.sum().item<int64_t>());
    }
  }
}

TEST_CASE("SAM segment everything with crop layers and the small-region clean-up equals SamAutomaticMaskGenerator") {
  c10::InferenceMode guard;
  model::SamModelOptions opt;
  opt.dir = kDir + "/sam_tiny";
  model::SamModel plain(opt), flat(opt);
  // make_sam_fixture.py's flat_upscaling: each transposed convolution of the
  // decoder's upscaling with its first kernel tap in all four.
  for (auto& p : flat.sam->mask_decoder->output_upscaling->named_parameters())
    if (p.key().size() > 7 && p.key().substr(p.key().size() - 7) == ".weight" && p.value().dim() == 4)
      p.value().copy_(p.value().slice(2, 0, 1).slice(3, 0, 1).expand_as(p.value()).clone());
  auto io = SafeTensorsFile::open(kDir + "/sam_amg_crops.safetensors");
  std::ifstream cf(kDir + "/sam_amg_crop_cases.json");
  const nlohmann::json cases = nlohmann::json::parse(cf);
  REQUIRE(cases.size() == 7);
  size_t from_crops = 0;
  for (const auto& c : cases) {
    const std::string name = c["name"];
    INFO(name);
    const Image rgb = sam_fixture_rgb("sam_" + c["image"].get<std::string>() + ".png");
    model::SamEverythingOptions o = sam_everything_filters(c);
    o.crop_n_layers = c["crop_n_layers"];
    o.crop_nms_thresh = c["crop_nms_thresh"];
    o.crop_overlap_ratio = c["crop_overlap_ratio"];
    o.crop_n_points_downscale_factor = c["crop_n_points_downscale_factor"];
    o.min_mask_region_area = c["min_mask_region_area"];
    const model::SamModel& m = c["model"] == "flat" ? flat : plain;
    const std::vector<model::SamMask> got = m.everything(rgb, o);
    REQUIRE(got.size() == c["count"].get<size_t>());
    const torch::Tensor box = sam_golden(*io, name + "_box"), crop = sam_golden(*io, name + "_crop"),
                        iou = sam_golden(*io, name + "_iou"), pt = sam_golden(*io, name + "_point"),
                        area = sam_golden(*io, name + "_area"), bits = sam_golden(*io, name + "_masks");
    const int64_t npx = int64_t(rgb.width) * rgb.height;
    for (size_t i = 0; i < got.size(); ++i) {
      INFO("mask ", i);
      const int64_t k = int64_t(i);
      CHECK(std::abs(got[i].iou_pred - iou[k].item<double>()) < 1e-4);
      CHECK(std::abs(got[i].point[0] - pt[k][0].item<double>()) < 1e-3);  // float32 in the fixture
      CHECK(std::abs(got[i].point[1] - pt[k][1].item<double>()) < 1e-3);
      for (int q = 0; q < 4; ++q) CHECK(got[i].crop[size_t(q)] == int64_t(crop[k][q].item<double>()));
      from_crops += got[i].crop != std::array<int64_t, 4>{0, 0, rgb.width, rgb.height};
      const torch::Tensor want = sam_unpack_bits(bits[k], rgb.height, rgb.width);
      const torch::Tensor pixels = m.mask_pixels(got[i], rgb.width, rgb.height);
      const int64_t differ = (pixels != want).sum().item<int64_t>();
      CHECK(differ <= npx / 200);  // pixels whose logit is within rounding of 0
      for (int q = 0; q < 4; ++q)
        CHECK(std::abs(double(got[i].box[size_t(q)]) - box[k][q].item<double>()) <= (differ > 0 ? 1 : 0));
      CHECK(std::abs(double(got[i].area) - area[k].item<double>()) <= double(differ));
      CHECK(got[i].area == pixels.sum().item<int64_t>());
    }
  }
  CHECK(from_crops >= 6);  // the crop layers' masks are compared, not only the whole image's
}

TEST_CASE("SAM instance map: ids in the masks' order, largest painted first, 0 elsewhere, 16-bit past 255") {
  auto mask = [](int w, int h, int x0, int y0, int x1, int y1) {
    model::SamMask m;
    m.mask = torch::zeros({h, w}, torch::kBool);
    m.mask.slice(0, y0, y1 + 1).slice(1, x0, x1 + 1).fill_(true);
    m.area = m.mask.sum().item<int64_t>();
    return m;
  };
  // Mask 1 small inside mask 2 (large): 1 stays visible; mask 3 apart.
  const std::vector<model::SamMask> ms{mask(6, 4, 1, 1, 2, 2), mask(6, 4, 0, 0, 3, 3), mask(6, 4, 5, 0, 5, 0)};
  auto px = [&](const std::vector<model::SamMask>& v) {
    return [&v](size_t k) { return v[k].mask; };
  };
  const Image out = model::sam_instance_map(ms, 6, 4, px(ms));
  REQUIRE(out.depth == 8);
  const uint8_t want[] = {2, 2, 2, 2, 0, 3, 2, 1, 1, 2, 0, 0, 2, 1, 1, 2, 0, 0, 2, 2, 2, 2, 0, 0};
  for (size_t i = 0; i < 24; ++i) CHECK(int(out.u8()[i]) == int(want[i]));
  std::vector<model::SamMask> many(300, mask(2, 1, 0, 0, 0, 0));
  many.back() = mask(2, 1, 1, 0, 1, 0);
  const Image big = model::sam_instance_map(many, 2, 1, px(many));
  CHECK(big.depth == 16);
  CHECK(big.u16()[1] == 300);
}
