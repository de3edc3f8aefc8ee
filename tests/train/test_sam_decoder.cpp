// rass-train sam-decoder (lib/rass/train/sam_decoder_stage.hpp, GleSAM's
// decoder fine-tuning) on the tiny SAM of tests/fixtures/nn/sam_tiny:
// gradients and Adam steps against the reference modules
// (tests/train/make_sam_decoder_fixture.py), the data pipeline's rules by
// hand, refusals, a run of the loop and the exported folder in rass-sam.
#include "nn/torch_doctest.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/degrade/cv_resize.hpp"
#include "rass/degrade/record.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/train/adam.hpp"
#include "rass/train/loop.hpp"
#include "rass/train/run_dir.hpp"
#include "rass/train/sam_decoder_stage.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace rass;
using namespace rass::train;
using ojson = nlohmann::ordered_json;

namespace {

const std::string kFix = std::string(RASS_FIXTURES);
const std::string kTiny = kFix + "/nn/sam_tiny";

StageEnv cpu_env() {
  StageEnv e;
  e.quiet = true;
  e.seed = 5;
  return e;
}

// n pairs of w x w images with a disc (object 255 in a binary mask, or
// labels 1 (disc) and 2 (a bar) with an ignored top row in a label map).
void write_data(const std::string& dir, int n, int w, bool binary) {
  fs::create_directories(dir + "/images");
  fs::create_directories(dir + "/labels");
  for (int i = 0; i < n; ++i) {
    Image img(w, w, 3, 8), lab(w, w, 1, 8);
    for (int y = 0; y < w; ++y)
      for (int x = 0; x < w; ++x) {
        const int dx = x - w / 3 - i, dy = y - w / 2;
        const bool disc = dx * dx + dy * dy < w * w / 16;
        const bool bar = x > w * 2 / 3 && y > w / 4 && y < w * 3 / 4;
        uint8_t* p = img.u8() + (size_t(y) * w + x) * 3;
        p[0] = disc ? 220 : uint8_t(x * 3);
        p[1] = bar ? 200 : uint8_t(40 + y);
        p[2] = uint8_t((x * 7 + y * 5) % 256);
        lab.u8()[size_t(y) * w + x] =
            binary ? (disc ? 255 : 0) : y == 0 ? 255 : disc ? 1 : bar ? 2 : 0;
      }
    write_image(dir + "/images/" + std::to_string(i) + ".png", img);
    write_image(dir + "/labels/" + std::to_string(i) + ".png", lab);
  }
}

ojson settings(const std::string& data, bool binary) {
  return ojson{{"model", kTiny},  {"images", data + "/images"}, {"labels", data + "/labels"},
               {"size", 64},      {"preset", "none"},           {"masks", binary ? "binary" : "labels"}};
}

std::unique_ptr<Stage> make(const ojson& s) { return sam_decoder_stage_info().make(s, cpu_env()); }

bool is_key_bias(const std::string& name) { return name.size() > 12 && name.rfind("k_proj.bias") == name.size() - 11; }

void expect_error(const ojson& s, ExitCode code, const std::string& needle) {
  try {
    make(s);
    FAIL("accepted: " << s.dump());
  } catch (const Error& e) {
    CHECK(e.code() == code);
    const std::string what = e.what();
    INFO(what);
    CHECK(what.find(needle) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("sam-decoder: gradients and three Adam steps equal GleSAM's training on the reference modules") {
  const std::string fx = kFix + "/train/sam_decoder_ref.safetensors";
  const auto f = SafeTensorsFile::open(fx);
  auto get = [&](const std::string& n) {
    const auto* v = f->find(n);
    REQUIRE_MESSAGE(v, n);
    return model::to_tensor(*v, fx).to(torch::kFloat);
  };
  const ojson cases = ojson::parse(std::ifstream(kFix + "/train/sam_decoder_cases.json"));
  test::TempDir t;
  write_data(t.path + "/d", 1, 64, true);
  auto stage_ptr = make(settings(t.path + "/d", true));
  auto& stage = dynamic_cast<SamDecoderStage&>(*stage_ptr);
  // The trainable tensors are the reference's, by name.
  std::map<std::string, torch::Tensor> params;
  for (const auto& g : stage.param_groups())
    for (const auto& [n, p] : g.params) params[n] = p;
  std::set<std::string> want;
  for (const auto& n : cases["trainable"]) want.insert(n.get<std::string>());
  std::set<std::string> got;
  for (const auto& [n, p] : params) got.insert(n);
  CHECK(bool(got == want));
  CHECK(params.count("mask_decoder.iou_token.weight") == 0);
  CHECK(params.count("mask_decoder.iou_prediction_head.layers.0.weight") == 0);

  std::map<std::string, Image> imgs, masks;
  for (const char* k : {"a", "b"}) {
    imgs[k] = read_image(kFix + "/train/sam_decoder_" + k + ".png");
    masks[k] = read_image(kFix + "/train/sam_decoder_" + k + "_mask.png");
  }
  std::map<std::string, torch::Tensor> exp_avg, exp_avg_sq;
  for (const auto& [n, p] : params) exp_avg[n] = torch::zeros_like(p), exp_avg_sq[n] = torch::zeros_like(p);
  AdamSettings adam;
  adam.lr = cases["lr"].get<double>();
  adam.weight_decay = cases["weight_decay"].get<double>();
  adam.decoupled = false;
  // Elements whose step-0 gradient is at rounding level but not 0 (a dead
  // ReLU's are exactly 0 in both), or whose sign the two implementations
  // disagree on: Adam moves an element by about lr * sign(g) for any |g|
  // above its eps, so where every step's gradient is that small rounding
  // alone decides the direction (about 0.2% of the elements here).
  std::map<std::string, torch::Tensor> unsettled;
  int64_t step = 0;
  for (const auto& st : cases["steps"]) {
    const std::string k = st["image"].get<std::string>();
    const model::SamInput in = stage.model().prepare(imgs[k]);
    const torch::Tensor emb = stage.embed(in);
    CHECK(torch::allclose(emb, get("embedding." + k), 1e-4, 1e-4));
    std::vector<std::array<double, 2>> pts;
    for (const auto& p : st["points"]) pts.push_back({p[0].get<double>(), p[1].get<double>()});
    std::optional<std::array<double, 4>> box;
    if (st.contains("box")) box = std::array<double, 4>{st["box"][0], st["box"][1], st["box"][2], st["box"][3]};
    const torch::Tensor low = stage.decode(emb, in, pts, box);
    const int64_t S = imgs[k].width;
    const torch::Tensor up = torch::upsample_bilinear2d(low, {S, S}, false);
    const torch::Tensor target =
        torch::from_blob(masks[k].u8(), {1, 1, S, S}, torch::kUInt8).to(torch::kFloat).div(255.0);
    const SamMaskLoss l = sam_mask_loss(up, target, 0.25, 2.0, 1e-6);
    const torch::Tensor loss = l.focal + l.dice;
    const torch::Tensor ref = get("step" + std::to_string(step) + ".losses").to(torch::kDouble);
    CHECK(loss.item<double>() == doctest::Approx(ref[0].item<double>()).epsilon(1e-5));
    CHECK(l.focal.item<double>() == doctest::Approx(ref[1].item<double>()).epsilon(1e-5));
    CHECK(l.dice.item<double>() == doctest::Approx(ref[2].item<double>()).epsilon(1e-5));
    for (auto& [n, p] : params) p.mutable_grad() = torch::Tensor();
    loss.backward();
    if (step == 0) {
      CHECK(torch::allclose(low, get("step0.logits"), 1e-4, 1e-4));
      double top = 0;
      for (const auto& [n, p] : params) top = std::max(top, get("step0.grad." + n).abs().max().item<double>());
      double worst = 0;
      for (const auto& [n, p] : params) {
        INFO(n);
        REQUIRE(p.grad().defined());
        const torch::Tensor r = get("step0.grad." + n);
        if (is_key_bias(n)) {
          // Softmax ignores a bias added to every key: its gradient is 0 up to rounding, in both.
          CHECK(r.abs().max().item<double>() < 1e-5 * top);
          CHECK(p.grad().abs().max().item<double>() < 1e-5 * top);
          continue;
        }
        const double scale = r.abs().max().item<double>();
        unsettled[n] = (r != 0).logical_and(r.abs() < 1e-4 * scale).logical_or(p.grad().sign() != r.sign());
        if (scale == 0) {
          // Mask tokens 1..3 feed only the masks multimask_output=False drops.
          CHECK(p.grad().abs().max().item<double>() == 0);
          continue;
        }
        const double err = (p.grad() - r).abs().max().item<double>() / scale;
        worst = std::max(worst, err);
        CHECK(err < 1e-3);
      }
      MESSAGE("step 0: the largest gradient difference is " << worst << " of the tensor's largest gradient (largest "
              "gradient " << top << ")");
    }
    ++step;
    for (auto& [n, p] : params) adam_update(p, exp_avg[n], exp_avg_sq[n], step, p.grad(), adam);
  }
  // Adam turns the key biases' rounding-level gradients into steps of about
  // lr whose sign is the rounding's: they are left out here.
  // The unsettled elements may differ by Adam's whole path: at most about lr
  // per step on each side.
  double worst = 0, worst_unsettled = 0;
  int64_t n_unsettled = 0, n_all = 0;
  for (const auto& [n, p] : params) {
    if (is_key_bias(n)) continue;
    INFO(n);
    const torch::Tensor diff = (p.detach() - get("final." + n)).abs();
    const torch::Tensor& loose = unsettled.at(n);
    const double err = diff.masked_fill(loose, 0).max().item<double>();
    const double err_loose = diff.masked_fill(loose.logical_not(), 0).max().item<double>();
    worst = std::max(worst, err);
    worst_unsettled = std::max(worst_unsettled, err_loose);
    n_unsettled += loose.sum().item<int64_t>();
    n_all += diff.numel();
    CHECK(err < 1e-4);
    CHECK(err_loose < 2 * 3 * adam.lr * 1.01);
  }
  CHECK(n_unsettled * 100 < n_all);
  MESSAGE("after 3 Adam steps of lr 1e-3: the largest weight difference is " << worst << " (" << n_unsettled
          << " of " << n_all << " elements with a rounding-level step-0 gradient: " << worst_unsettled << ")");
}

TEST_CASE("sam-decoder: trainable tokens: the mask tokens and their hypernetwork MLPs only") {
  test::TempDir t;
  write_data(t.path + "/d", 1, 64, true);
  ojson s = settings(t.path + "/d", true);
  s["trainable"] = "tokens";
  auto stage = make(s);
  std::set<std::string> got;
  for (const auto& g : stage->param_groups())
    for (const auto& [n, p] : g.params) got.insert(n);
  // mask_tokens.weight and 4 MLPs of 3 layers (weight, bias).
  CHECK(got.size() == 1 + 4 * 3 * 2);
  CHECK(got.count("mask_tokens.weight") == 0);
  CHECK(got.count("mask_decoder.mask_tokens.weight") == 1);
  CHECK(got.count("mask_decoder.output_hypernetworks_mlps.3.layers.2.bias") == 1);
  CHECK(got.count("mask_decoder.transformer.layers.0.self_attn.q_proj.weight") == 0);
  // It trains: the loss falls, the transformer stays as it was.
  auto& sd = dynamic_cast<SamDecoderStage&>(*stage);
  const torch::Tensor q0 = sd.model().sam->mask_decoder->transformer->named_parameters()["layers.0.self_attn.q_proj.weight"].clone();
  LoopConfig c;
  c.optimizer = "adam";
  c.steps = 10;
  c.batch = 1;
  c.lr = 1e-2;
  const TrainSummary r = run_training(*stage, c);
  CHECK(r.losses.back() < r.losses.front());
  CHECK(torch::equal(sd.model().sam->mask_decoder->transformer->named_parameters()["layers.0.self_attn.q_proj.weight"], q0));
}

TEST_CASE("sam-decoder: OpenCV's bilinear resize of a mask, worked by hand") {
  // cv2.resize([[0, 255]], (4, 1)): source x = (x + 0.5) / 2 - 0.5 clamped to
  // the edges; weights in 1/2048 and the sum rounded at 2^22:
  // 0, (255 * 512 * 2048 + 2^21) >> 22 = 64, 191, 255.
  Image in(2, 1, 1, 8);
  in.u8()[0] = 0, in.u8()[1] = 255;
  const Image out = cv_resize_linear(in, 4, 1);
  REQUIRE(out.width == 4);
  CHECK(int(out.u8()[0]) == 0);
  CHECK(int(out.u8()[1]) == 64);
  CHECK(int(out.u8()[2]) == 191);
  CHECK(int(out.u8()[3]) == 255);
  CHECK_THROWS_AS(cv_resize_linear(in, 0, 1), Error);
}

TEST_CASE("sam-decoder: prompts from a resized mask: points on its full pixels, the box of its non-zero ones") {
  // 5 x 3 mask: full (255) at (1,1) and (3,1); partial elsewhere in the box x 1..4, y 0..2.
  Image m(5, 3, 1, 8);
  const uint8_t v[15] = {0, 10, 0, 0, 0,  //
                         0, 255, 90, 255, 0,  //
                         0, 0, 0, 0, 40};
  std::copy(v, v + 15, m.u8());
  Rng rng(1, "k", "s");
  SamDecoderSample s;
  sam_decoder_prompts(m, 3, true, true, rng, s);
  REQUIRE(s.points.size() == 3);
  std::set<std::pair<int, int>> seen;
  for (const auto& p : s.points) seen.insert({int(p[0]), int(p[1])});
  // Two full pixels, fewer than 3: both in raster order, the last repeated (get_prompt).
  CHECK(bool(seen == std::set<std::pair<int, int>>{{1, 1}, {3, 1}}));
  CHECK(bool(s.points[0] == std::array<double, 2>{1, 1}));
  CHECK(bool(s.points[1] == std::array<double, 2>{3, 1}));
  CHECK(bool(s.points[2] == s.points[1]));
  REQUIRE(s.box.has_value());
  CHECK(bool(*s.box == std::array<double, 4>{1, 0, 4, 2}));
  // No pixel at 255: the largest value stands in; an empty mask gives nothing.
  m.u8()[6] = 200, m.u8()[8] = 200;
  sam_decoder_prompts(m, 1, true, false, rng, s);
  REQUIRE(s.points.size() == 1);
  CHECK((s.points[0] == std::array<double, 2>{1, 1} || s.points[0] == std::array<double, 2>{3, 1}));
  CHECK(!s.box);
  std::fill(m.data.begin(), m.data.end(), uint8_t(0));
  sam_decoder_prompts(m, 3, true, true, rng, s);
  CHECK(s.points.empty());
  CHECK(!s.box);
  // A label value's mask.
  Image lab(3, 1, 1, 8);
  lab.u8()[0] = 2, lab.u8()[1] = 7, lab.u8()[2] = 2;
  const Image om = object_mask(lab, 2);
  CHECK(bool(std::vector<uint8_t>(om.data.begin(), om.data.end()) == std::vector<uint8_t>{255, 0, 255}));
}

TEST_CASE("sam-decoder: samples are pure functions of (seed, step, sample); objects, sizes and presets") {
  test::TempDir t;
  write_data(t.path + "/d", 2, 96, false);
  SamDecoderDataConfig c;
  c.images = t.path + "/d/images";
  c.labels = t.path + "/d/labels";
  c.size = 64;
  c.preset = "none";
  SamDecoderData d(c, 9);
  d.check();
  const SamDecoderSample a = d.sample(0, 3, 1), b = d.sample(0, 3, 1);
  CHECK(bool(a.target.data == b.target.data));
  CHECK(bool(a.points == b.points));
  CHECK(a.lq.width == 64);
  CHECK(a.lq.height == 64);
  REQUIRE(a.target.width == 64);
  // Every point lies on a full pixel of the target; every object gets drawn
  // (background 0 is one: only 255 is skipped by default).
  std::set<int> objects;
  for (int64_t step = 0; step < 24; ++step) {
    const SamDecoderSample s = d.sample(1, step, 0);
    objects.insert(s.object);
    REQUIRE(s.points.size() == 3);
    for (const auto& p : s.points) CHECK(int(s.target.u8()[size_t(p[1]) * 64 + size_t(p[0])]) == 255);
  }
  CHECK(bool(objects == std::set<int>{0, 1, 2}));
  // The target is the object's 0/255 mask resized as cv2.resize does.
  const Image lab = read_label_image(t.path + "/d/labels/1.png");
  const SamDecoderSample s = d.sample(1, 0, 0);
  CHECK(bool(s.target.data == cv_resize_linear(object_mask(lab, s.object), 64, 64).data));
  CHECK(d.check().empty());
  // 0/255 masks read as label maps: a warning (their object would be the background).
  write_data(t.path + "/b", 1, 64, true);
  SamDecoderDataConfig cb = c;
  cb.images = t.path + "/b/images";
  cb.labels = t.path + "/b/labels";
  CHECK(SamDecoderData(cb, 9).check().find("masks \"binary\"") != std::string::npos);
  cb.skip = {0};  // 255 the object, as a label value
  CHECK(SamDecoderData(cb, 9).check().empty());
  cb.skip = {255};
  cb.masks = "binary";
  CHECK(SamDecoderData(cb, 9).check().empty());
  // Background 0 is an object unless skipped.
  c.skip = {0, 1, 2, 255};
  CHECK_THROWS_WITH_AS(SamDecoderData(c, 9).check(), doctest::Contains("holds no object"), Error);
  // GleSAM's preset: LQ at the sample's size, a factor from its list.
  c.skip = {255};
  c.preset = "glesam";
  SamDecoderData g(c, 9);
  std::set<int> scales;
  for (int64_t step = 0; step < 16; ++step) {
    const SamDecoderSample q = g.sample(0, step, 0);
    CHECK(q.lq.width == 64);
    CHECK(q.lq.height == 64);
    scales.insert(q.scale);
  }
  for (int sc : scales) CHECK((sc >= 1 && sc <= 4));
  CHECK(scales.size() >= 2);
  const degrade::PipelineConfig gp = degrade::make_preset("glesam");
  CHECK(bool(gp.first.resize_prob == std::vector<double>{0.1, 0.2, 0.7}));
  CHECK(bool(gp.scale_choices == std::vector<int>{1, 2, 3, 3, 4, 4, 4, 4}));
  // GleSAM's last steps: the factor sizes only the second resize, the final
  // resize goes straight back to the full size, the second blur reuses the
  // first kernel.
  for (int scale = 1; scale <= 4; ++scale)
    for (int k = 0; k < 8; ++k) {
      degrade::PipelineConfig fixed = gp;  // as rass-degrade -p glesam --scale N
      fixed.scale = scale;
      fixed.scale_choices.clear();
      const degrade::Record rec = degrade::sample_record(fixed, 7, "x" + std::to_string(k), 96, 96, 3);
      CHECK(rec.scale == scale);
      const degrade::Op *b1 = nullptr, *b2 = nullptr;
      for (const degrade::Op& op : rec.ops) {
        CHECK(op.stage != "to_hq_size");
        if (op.stage == "final_resize") CHECK((op.width == 96 && op.height == 96));
        if (op.stage == "resize2") CHECK(op.width == int(96.0 / scale * op.factor));
        if (op.stage == "blur1") b1 = &op;
        if (op.stage == "blur2") b2 = &op;
      }
      CHECK((rec.out_width == 96 && rec.out_height == 96));
      if (b1 && b2) {
        CHECK(b2->kernel.size == b1->kernel.size);
        CHECK(b2->kernel.sigma_x == b1->kernel.sigma_x);
        CHECK(b2->kernel.theta == b1->kernel.theta);
      }
    }
}

TEST_CASE("sam-decoder: bad settings and data stop before the first step, naming what is wrong") {
  test::TempDir t;
  write_data(t.path + "/d", 1, 64, true);
  const ojson s = settings(t.path + "/d", true);
  auto with = [&](const char* k, const ojson& v) {
    ojson b = s;
    b[k] = v;
    return b;
  };
  expect_error(with("lora_rank", 4), ExitCode::usage, "sam-decoder setting 'lora_rank'");
  expect_error(with("trainable", "all"), ExitCode::usage, "sam-decoder.trainable");
  expect_error(with("size", 15), ExitCode::usage, "size must be an integer 16..4096");
  expect_error(with("focal_alpha", 2), ExitCode::usage, "focal_alpha must be in 0.0..1.0");
  expect_error(with("masks", "instances"), ExitCode::usage, "sam-decoder.masks");
  expect_error(with("prompt", "clicks"), ExitCode::usage, "points");
  expect_error(with("preset", "realesrgan-x4"), ExitCode::usage, "keep the HQ size");
  expect_error(with("enhance", "maybe"), ExitCode::usage, "sam-decoder.enhance");
  expect_error(with("enhance", "on"), ExitCode::usage, "no enhancer");
  expect_error(with("model", kFix + "/nn/sam2_tiny"), ExitCode::usage, "SAM 2");
  expect_error(with("model", kFix + "/nn/robust_sam_tiny"), ExitCode::usage, "RobustSAM");
  expect_error(with("model", t.path + "/d"), ExitCode::bad_input, "sam.json");
  {
    // A binary mask without a 255 pixel (0/1 masks).
    Image lab(64, 64, 1, 8);
    std::fill(lab.data.begin(), lab.data.end(), uint8_t(1));
    write_image(t.path + "/d/labels/0.png", lab);
    expect_error(s, ExitCode::bad_input, "labels/0.png");
    // Its image's size differs.
    write_image(t.path + "/d/labels/0.png", Image(32, 64, 1, 8));
    expect_error(s, ExitCode::bad_input, "32x64");
  }
  {
    // An object of one pixel vanishes at 16 x 16.
    Image lab(64, 64, 1, 8);
    lab.u8()[0] = 255;
    write_image(t.path + "/d/labels/0.png", lab);
    expect_error(with("size", 16), ExitCode::bad_input, "stays visible");
  }
}

TEST_CASE("sam-decoder: the loop lowers the loss; the export carries the trained decoder into rass-sam") {
  test::TempDir t;
  write_data(t.path + "/d", 2, 64, true);
  auto stage = make(settings(t.path + "/d", true));
  const ojson ld = sam_decoder_stage_info().loop_defaults();
  CHECK(ld["optimizer"] == "adam");
  CHECK(ld["lr"].get<double>() == doctest::Approx(1e-4));
  CHECK(ld["weight_decay"].get<double>() == doctest::Approx(1e-5));
  CHECK(ld["clip_grad_norm"].get<double>() == 0);
  LoopConfig c;
  c.optimizer = "adam";
  c.steps = 30;
  c.batch = 2;
  c.lr = 1e-2;
  c.weight_decay = 1e-5;
  c.seed = 5;
  const TrainSummary r = run_training(*stage, c);
  REQUIRE(r.losses.size() == 30);
  const double first = (r.losses[0] + r.losses[1] + r.losses[2]) / 3, last = (r.losses[27] + r.losses[28] + r.losses[29]) / 3;
  std::string curve;
  for (double x : r.losses) curve += std::to_string(x).substr(0, 5) + " ";
  MESSAGE("loss " << first << " -> " << last << ": " << curve);
  // The tiny random SAM settles fast (its 8x8 embedding limits the fit).
  CHECK(last < 0.9 * first);
  CHECK(last < *std::min_element(r.losses.begin(), r.losses.begin() + 3));

  auto& sd = dynamic_cast<SamDecoderStage&>(*stage);
  const std::string out = t.path + "/export";
  sd.export_model(out);
  // Everything but the trained tensors is the start file's, byte for byte.
  const auto a = SafeTensorsFile::open(kTiny + "/sam.safetensors"), b = SafeTensorsFile::open(out + "/sam.safetensors");
  REQUIRE(a->tensors().size() == b->tensors().size());
  std::set<std::string> trained;
  for (const auto& g : sd.param_groups())
    for (const auto& [n, p] : g.params) trained.insert(n);
  size_t changed = 0;
  for (const TensorView& v : a->tensors()) {
    const TensorView* w = b->find(v.name);
    REQUIRE_MESSAGE(w, v.name);
    const bool same = v.dtype == w->dtype && v.nbytes == w->nbytes && std::equal(v.data, v.data + v.nbytes, w->data);
    if (!trained.count(v.name)) CHECK_MESSAGE(same, v.name);
    changed += !same;
  }
  CHECK(changed > 0);
  const ojson cfg = ojson::parse(std::ifstream(out + "/sam.json"));
  CHECK(cfg["source"].get<std::string>().find("rass-train sam-decoder") == 0);
  // The exported folder predicts what the trained decoder predicts.
  const Image img = read_image(t.path + "/d/images/1.png");
  model::SamModelOptions so;
  so.dir = out;
  const model::SamModel exported(so);
  torch::NoGradGuard ng;
  const model::SamInput in = exported.prepare(img);
  const torch::Tensor want = sd.decode(sd.embed(in), in, {{20, 30}}, std::nullopt);
  model::SamObject obj;
  obj.points = {{20, 30}};
  obj.point_labels = {1};
  const model::SamPrediction p = exported.predict(exported.embed(in), {obj}, in, false, 0, true);
  CHECK(torch::allclose(p.low_res, want, 1e-4, 1e-4));
  // The real binary runs it.
  const std::string bin = std::string(RASS_BINARY_DIR) + "/rass-sam";
  REQUIRE_MESSAGE(fs::exists(bin), "build rass-sam first: " << bin);
  const std::string cmd = bin + " -q -m " + out + " " + t.path + "/d/images/1.png --point 20,30 -o " + t.path + "/m.png";
  CHECK(std::system(cmd.c_str()) == 0);
  CHECK(fs::exists(t.path + "/m.png"));
  // The export may not be the start folder.
  CHECK_THROWS_AS(sd.export_model(kTiny), Error);
}

TEST_CASE("sam-decoder: a GleSAM folder trains on the enhanced embedding and exports with its enhancer") {
  test::TempDir t;
  write_data(t.path + "/d", 1, 64, true);
  ojson s = settings(t.path + "/d", true);
  s["model"] = kFix + "/nn/sam_tiny_gle";
  auto stage = make(s);
  auto& sd = dynamic_cast<SamDecoderStage&>(*stage);
  CHECK(sd.model().enhancing);
  for (const auto& p : sd.model().unet->parameters()) CHECK(!p.requires_grad());
  // The decoder sees the enhanced embedding, not SAM's.
  const Image img = read_image(t.path + "/d/images/0.png");
  const model::SamInput in = sd.model().prepare(img);
  {
    torch::NoGradGuard ng;
    s["enhance"] = "off";
    auto plain = make(s);
    auto& pd = dynamic_cast<SamDecoderStage&>(*plain);
    CHECK(!pd.model().enhancing);
    CHECK(!torch::allclose(sd.embed(in), pd.embed(in), 1e-3, 1e-3));
    CHECK(torch::allclose(sd.embed(in), sd.model().enhance(pd.embed(in)), 1e-5, 1e-5));
  }
  StepContext ctx;
  const StepLoss l = stage->compute_loss(ctx);
  l.loss.backward();
  CHECK(std::isfinite(l.loss.item<double>()));
  const std::string out = t.path + "/export";
  stage->export_model(out);
  CHECK(fs::exists(out + "/unet/config.json"));
  model::SamModelOptions so;
  so.dir = out;
  CHECK(model::SamModel(so).enhancing);
  // Trained with the enhancer off, the export is plain SAM (no enhancer it never saw).
  s["enhance"] = "off";
  auto off = make(s);
  off->export_model(t.path + "/export-off");
  CHECK(!fs::exists(t.path + "/export-off/unet"));
  CHECK(!ojson::parse(std::ifstream(t.path + "/export-off/sam.json")).contains("enhancer"));
  so.dir = t.path + "/export-off";
  CHECK(!model::SamModel(so).enhancing);
}

TEST_CASE("check_export_dir: the export never holds an input or the run, nor lies in its checkpoints") {
  test::TempDir t;
  fs::create_directories(t.path + "/data/img");
  const std::vector<std::string> inputs = {"s.images=" + t.path + "/data/img"};
  auto refused = [&](const std::string& ex, const std::string& out, const std::string& needle) {
    try {
      check_export_dir(ex, out, inputs);
      FAIL("accepted " << ex);
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::usage);
      INFO(e.what());
      CHECK(std::string(e.what()).find(needle) != std::string::npos);
    }
  };
  refused(t.path + "/data", t.path + "/run", "holds the input folder");
  refused(t.path + "/data/img/x", t.path + "/run", "input folder");
  refused(t.path + "/run", t.path + "/run", "output directory");
  refused(t.path, t.path + "/run", "holds the input folder");
  refused(t.path + "/top", t.path + "/top/run", "output directory");
  refused(t.path + "/run/checkpoints/x", t.path + "/run", "checkpoints");
  CHECK_NOTHROW(check_export_dir(t.path + "/run/final", t.path + "/run", inputs));
  CHECK_NOTHROW(check_export_dir(t.path + "/exports/a", t.path + "/run", inputs));
}

TEST_CASE("check_export_writable: an export that could not be written is refused before the run") {
  test::TempDir t;
  CHECK_NOTHROW(check_export_writable(t.path + "/exports/a/b"));  // the writer makes the missing folders
  CHECK_NOTHROW(check_export_writable(t.path + "/final/"));
  {
    std::ofstream(t.path + "/afile") << "x";
    try {
      check_export_writable(t.path + "/afile/sub/final");
      FAIL("accepted an export below a file");
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::usage);
      CHECK(std::string(e.what()).find("is not a folder") != std::string::npos);
    }
  }
  // A read-only place: a folder without write permission (not for root), a
  // container's read-only /proc/sys (root too cannot write there).
  std::vector<std::string> places;
  if (::geteuid() != 0) {
    fs::create_directories(t.path + "/ro");
    fs::permissions(t.path + "/ro", fs::perms::owner_read | fs::perms::owner_exec);
    places.push_back(t.path + "/ro");
  }
  for (const std::string ro : {"/proc/sys", "/proc/sys/kernel"})
    if (::access(ro.c_str(), W_OK) != 0) places.push_back(ro);
  if (places.empty()) MESSAGE("no read-only place here: the refusal is not exercised");
  for (const std::string& ro : places) {
    try {
      check_export_writable(ro + "/rass-export/x");
      FAIL("accepted an export under " << ro);
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::usage);
      CHECK(std::string(e.what()).find("loop.export_dir") != std::string::npos);
      CHECK(std::string(e.what()).find("cannot write in " + ro) != std::string::npos);
    }
  }
}

TEST_CASE("the loop refuses start weights whose trainable tensors hold NaN, naming the tensor (exit 3)") {
  test::TempDir t;
  write_data(t.path + "/d", 1, 64, true);
  fs::create_directories(t.path + "/m");
  fs::copy_file(kTiny + "/sam.json", t.path + "/m/sam.json");
  {
    // The tiny SAM with a NaN in one decoder weight.
    const auto f = SafeTensorsFile::open(kTiny + "/sam.safetensors");
    std::vector<torch::Tensor> keep;
    std::vector<TensorToWrite> out;
    for (const TensorView& v : f->tensors()) {
      keep.push_back(model::to_tensor(v, f->path()).to(torch::kFloat).contiguous());
      if (v.name == "mask_decoder.output_upscaling.0.weight") keep.back().view({-1})[3] = NAN;
      out.push_back({v.name, DType::f32, v.shape, keep.back().data_ptr(), size_t(keep.back().nbytes())});
    }
    write_safetensors(t.path + "/m/sam.safetensors", out);
  }
  ojson s = settings(t.path + "/d", true);
  s["model"] = t.path + "/m";
  LoopConfig c;
  c.steps = 2;
  c.batch = 1;
  try {
    // Refused when SAM loads (every network tool checks its weights), before the loop's own check.
    auto stage = make(s);
    run_training(*stage, c);
    FAIL("trained on NaN weights");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::bad_input);
    INFO(e.what());
    CHECK(std::string(e.what()).find("mask_decoder.output_upscaling.0.weight") != std::string::npos);
  }
}

TEST_CASE("sam-decoder: a start folder the export could not link stops the run before the first step") {
  test::TempDir t;
  write_data(t.path + "/d", 1, 64, true);
  fs::copy(kTiny, t.path + "/m");
  fs::create_directory_symlink(".", t.path + "/m/loop");
  ojson s = settings(t.path + "/d", true);
  s["model"] = t.path + "/m";
  expect_error(s, ExitCode::bad_input, "symbolic link loop");
  fs::remove(t.path + "/m/loop");
  fs::create_symlink(t.path + "/nowhere", t.path + "/m/dangling");
  expect_error(s, ExitCode::bad_input, "m/dangling");
}
