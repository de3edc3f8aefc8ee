// rass-train sinsr (lib/rass/train/sinsr_stage.hpp: SinSR's distillation and
// SAMSR's variant) on the tiny ResShift network of tests/fixtures/nn/samsr_tiny:
// the teacher's chain, the loss terms and the student's gradients against the
// reference code (tests/train/make_sinsr_fixture.py), the data, refusals, and
// a run of the loop whose export rass-samsr loads.
#include "nn/torch_doctest.hpp"

#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/samsr_model.hpp"
#include "rass/train/loop.hpp"
#include "rass/train/sinsr_stage.hpp"
#include "rass/train/train_checkpoint.hpp"
#include "test_support.hpp"
#include "train/resshift_ref_grads.hpp"

namespace fs = std::filesystem;
using namespace rass;
using namespace rass::train;
using ojson = nlohmann::ordered_json;

namespace {

const std::string kFix = std::string(RASS_FIXTURES);
const std::string kTiny = kFix + "/nn/samsr_tiny";

StageEnv cpu_env() {
  StageEnv e;
  e.quiet = true;
  e.seed = 3;
  return e;
}

void write_images(const std::string& dir, int n, int w) {
  fs::create_directories(dir);
  for (int i = 0; i < n; ++i) {
    Image img(w, w, 3, 8);
    for (int y = 0; y < w; ++y)
      for (int x = 0; x < w; ++x) {
        uint8_t* p = img.u8() + (size_t(y) * w + x) * 3;
        const int dx = x - w / 3 - 3 * i, dy = y - w / 2;
        p[0] = dx * dx + dy * dy < w * w / 12 ? 220 : uint8_t(x * 2);
        p[1] = uint8_t(40 + y * 2);
        p[2] = uint8_t((x * 7 + y * 5 + 30 * i) % 256);
      }
    write_image(dir + "/" + std::to_string(i) + ".png", img);
  }
}

ojson settings(const std::string& images, const std::string& noise = "gaussian") {
  return ojson{{"teacher", kTiny}, {"images", images}, {"crop_size", 64}, {"noise", noise}};
}

std::unique_ptr<Stage> make(const ojson& s) { return sinsr_stage_info().make(s, cpu_env()); }

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



// Terms, the teacher's x_0 and the student's gradients of one method against the fixture.
void check_against_reference(const std::string& method) {
  const test::RefFile ref(kFix + "/train/sinsr_ref.safetensors");
  test::TempDir t;
  write_images(t.path + "/hq", 1, 64);
  auto stage_ptr = make(settings(t.path + "/hq", method == "sam" ? "sam" : "gaussian"));
  auto& stage = dynamic_cast<SinsrStage&>(*stage_ptr);
  // The fixture's student: the teacher times 1.03.
  {
    torch::NoGradGuard ng;
    for (auto& p : stage.student().parameters()) p.mul_(1.03);
  }
  SinsrInputs in;
  in.gt = ref.get("gt");
  in.lq = ref.get("lq");
  in.noise = ref.get("noise");
  {
    torch::NoGradGuard ng;
    in.z_y = stage.teacher().encode_lq(in.lq);
  }
  if (method == "sam") {
    // normalize_mask_counts(count_masks_per_pixel(masks)), by hand.
    const torch::Tensor count = ref.get("sam.masks").sum(1, true);
    const torch::Tensor mx = std::get<0>(count.flatten(1).max(1)).clamp_min(1).view({-1, 1, 1, 1});
    in.weight = (count / mx).clamp(0, 1);
  }
  SinsrSettings s;
  const SinsrTerms terms = sinsr_terms(stage.student(), stage.teacher(), in, s);
  const std::string p = method == "sam" ? "sam." : "gauss.";
  CHECK(torch::allclose(terms.z_teacher, ref.get(p + "z_teacher"), 1e-4, 1e-4));
  if (method == "sam") CHECK(torch::allclose(terms.z_t, ref.get("sam.z_t"), 1e-5, 1e-5));
  for (const auto& [name, mine] : {std::pair<std::string, torch::Tensor>{"mse", terms.mse}, {"mse_xT", terms.mse_xT},
                                   {"mse_gt", terms.mse_gt}}) {
    const std::string what = p + name;
    INFO(what);
    const torch::Tensor r = ref.get(p + name);
    MESSAGE(what << ": " << mine[0].item<double>() << " " << mine[1].item<double>() << " (reference "
              << r[0].item<double>() << " " << r[1].item<double>() << ")");
    CHECK(torch::allclose(mine.detach(), r, 2e-4, 1e-7));
  }
  const torch::Tensor loss = (terms.mse + terms.mse_xT + terms.mse_gt).mean();
  loss.backward();
  std::map<std::string, torch::Tensor> grads;
  for (const auto& q : stage.student().named_parameters(true)) grads[q.key()] = q.value().grad();
  MESSAGE(method << ": " << test::check_ref_grads(grads, test::ref_grad_names(ref), ref, p));
}

}  // namespace

TEST_CASE("sinsr: SinSR's terms and gradients equal the reference's (Gaussian noise)") { check_against_reference("gauss"); }

TEST_CASE("sinsr: SAMSR's terms and gradients equal the reference's (SAM-weighted prior)") { check_against_reference("sam"); }

TEST_CASE("sinsr: data: keyed HQ crops and their x4 LQ by the preset") {
  test::TempDir t;
  write_images(t.path + "/hq", 2, 80);
  SinsrDataConfig c;
  c.images = t.path + "/hq";
  c.crop = 64;
  c.seed = 9;
  SinsrData d(c);
  const SinsrSample a = d.sample(0, 3, 1), b = d.sample(0, 3, 1), other = d.sample(0, 4, 1);
  CHECK(a.hq.sizes() == torch::IntArrayRef({3, 64, 64}));
  CHECK(a.lq.sizes() == torch::IntArrayRef({3, 16, 16}));
  CHECK(torch::equal(a.hq, b.hq));
  CHECK(torch::equal(a.lq, b.lq));
  CHECK(!torch::equal(a.lq, other.lq));
  CHECK(a.lq.min().item<float>() >= -1);
  CHECK(a.lq.max().item<float>() <= 1);
  c.preset = "lqseg-1";
  CHECK_THROWS_WITH_AS(SinsrData{c}, doctest::Contains("x4"), Error);
  c.preset = "realesrgan-x4";
  c.crop = 66;
  CHECK_THROWS_WITH_AS(SinsrData{c}, doctest::Contains("multiple of 4"), Error);
}

TEST_CASE("sinsr: refusals name the setting") {
  test::TempDir t;
  write_images(t.path + "/hq", 1, 80);
  ojson s = settings(t.path + "/hq");
  s["noise"] = "uniform";
  expect_error(s, ExitCode::usage, "sinsr.noise");
  s = settings(t.path + "/hq");
  s.erase("teacher");
  expect_error(s, ExitCode::usage, "sinsr.teacher");
  s = settings(t.path + "/hq");
  s["crop_size"] = 68;  // LQ 17: not a multiple of the tiny network's 8
  expect_error(s, ExitCode::usage, "multiple");
  s = settings(t.path + "/hq");
  s["distill_weight"] = 0.0;
  s["gt_weight"] = 0.0;
  expect_error(s, ExitCode::usage, "nothing");
  s = settings(t.path + "/hq");
  s["sam"] = kTiny + "/sam";  // SAM's folder with Gaussian noise: a forgotten noise=sam
  expect_error(s, ExitCode::usage, "sinsr.sam");
  s = settings(t.path + "/hq", "sam");
  s["sam"] = t.path + "/hq";  // no sam.json
  expect_error(s, ExitCode::bad_input, "sam.json");
  s = settings(t.path + "/none");
  expect_error(s, ExitCode::bad_input, "none");
  // An image smaller than the crop, or a 16-bit one: named before the first step (check_data).
  write_images(t.path + "/small", 1, 48);
  expect_error(settings(t.path + "/small"), ExitCode::bad_input, "smaller than crop_size 64");
  for (const char* ext : {".png", ".ppm"}) {
    fs::create_directories(t.path + "/deep" + ext);
    write_images(t.path + "/deep" + ext, 1, 64);
    Image deep(64, 64, 3, 16);
    write_image(t.path + "/deep" + ext + "/z" + ext, deep);
    expect_error(settings(t.path + "/deep" + ext), ExitCode::bad_input, "16-bit");
  }
}

TEST_CASE("sinsr: a run of the loop (SAM noise, EMA) exports a folder rass-samsr runs as SAMSR") {
  test::TempDir t;
  write_images(t.path + "/hq", 3, 72);
  auto stage = make(settings(t.path + "/hq", "sam"));
  LoopConfig c;
  c.steps = 2;
  c.batch = 2;
  c.lr = 1e-4;
  c.weight_decay = 0;
  c.ema_rate = 0.5;
  c.out_dir = t.path + "/run";
  c.quiet = true;
  c.config = {{"stage", "sinsr"}, {"loop", {{"steps", 2}, {"ema_rate", 0.5}}}};
  const TrainSummary sum = run_training(*stage, c);
  REQUIRE(sum.losses.size() == 2);
  for (double l : sum.losses) CHECK(std::isfinite(l));
  const std::string out = t.path + "/run/final";
  const ojson cfg = read_json_file(out + "/samsr.json");
  CHECK(cfg["method"] == "samsr");
  CHECK(file_exists(out + "/sam/sam.json"));
  CHECK(file_exists(out + "/autoencoder.safetensors"));
  // Only the network changed, and it holds the moving average of the weights.
  const auto ck = read_train_checkpoint(t.path + "/run/checkpoints/step_2.safetensors");
  const auto f = SafeTensorsFile::open(out + "/unet.safetensors");
  const std::string name = "out.2.weight";
  const torch::Tensor exported = model::to_tensor(*f->find(name), "export");
  CHECK(torch::allclose(exported, ck.tensors.at("ema.unet." + name)));
  CHECK(!torch::equal(exported, ck.tensors.at("unet." + name)));
  model::SamsrModelOptions o;
  o.dir = out;
  model::SamsrModel m(o);
  CHECK(m.sam_noise);
  const Image lq = read_image(kFix + "/nn/samsr_lq.png");
  const Image sr = m.restore(lq, 1, "x", 0, 0);
  CHECK(sr.width == lq.width * 4);
}

TEST_CASE("sinsr: paired data (preset none): the same window of both, flipped alike; sizes checked") {
  test::TempDir t;
  fs::create_directories(t.path + "/hq");
  fs::create_directories(t.path + "/lq");
  // Each pixel holds its position: HQ (4x, 4y), LQ (16x, 16y), so an LQ pixel
  // equals the HQ pixel at 4x its place.
  auto grid = [](int w, int step) {
    Image img(w, w, 3, 8);
    for (int y = 0; y < w; ++y)
      for (int x = 0; x < w; ++x) {
        uint8_t* p = img.u8() + (size_t(y) * w + x) * 3;
        p[0] = uint8_t(x * step), p[1] = uint8_t(y * step), p[2] = 100;
      }
    return img;
  };
  for (int i = 0; i < 2; ++i) {
    write_image(t.path + "/hq/" + std::to_string(i) + ".png", grid(64, 4));
    write_image(t.path + "/lq/" + std::to_string(i) + ".png", grid(16, 16));
  }
  SinsrDataConfig c;
  c.images = t.path + "/hq";
  c.lq_images = t.path + "/lq";
  c.preset = "none";
  c.crop = 32;
  c.seed = 4;
  SinsrData d(c);
  CHECK(d.paired());
  CHECK(d.size() == 2);
  using torch::indexing::None;
  using torch::indexing::Slice;
  int flipped = 0, offsets = 0;
  std::set<int64_t> seen;
  for (int64_t step = 0; step < 12; ++step) {
    const SinsrSample s = d.sample(size_t(step % 2), step, 0);
    REQUIRE(s.hq.sizes() == torch::IntArrayRef({3, 32, 32}));
    REQUIRE(s.lq.sizes() == torch::IntArrayRef({3, 8, 8}));
    const torch::Tensor plain = s.hq.index({Slice(), Slice(0, None, 4), Slice(0, None, 4)});
    const torch::Tensor mirror = s.hq.index({Slice(), Slice(0, None, 4), Slice(3, None, 4)});
    const bool a = torch::equal(plain, s.lq), b = torch::equal(mirror, s.lq);
    CHECK(a != b);
    flipped += b;
    seen.insert(int64_t(std::lround((s.lq[0][0][0].item<float>() + 1) * 127.5)));  // 16 x0 (or the flipped edge)
    CHECK(torch::equal(s.lq, d.sample(size_t(step % 2), step, 0).lq));
  }
  offsets = int(seen.size());
  CHECK(flipped > 0);
  CHECK(flipped < 12);
  CHECK(offsets > 1);
  // An LQ image that is not a quarter of its HQ image is named.
  write_image(t.path + "/lq/1.png", grid(15, 16));
  CHECK_THROWS_WITH_AS(d.sample(1, 0, 0), doctest::Contains("lq/1.png"), Error);
  // Settings that do not go together.
  SinsrDataConfig u = c;
  u.lq_images.clear();
  CHECK_THROWS_WITH_AS(SinsrData{u}, doctest::Contains("lq_images"), Error);
  u = c;
  u.preset = "realesrgan-x4";
  CHECK_THROWS_WITH_AS(SinsrData{u}, doctest::Contains("preset=none"), Error);
  u = c;
  u.preset = "realesrgan-x4";
  u.lq_images.clear();
  u.match_stem = true;  // pairs nothing with an online preset
  CHECK_THROWS_WITH_AS(SinsrData{u}, doctest::Contains("sinsr.match_stem"), Error);
  // A manifest of pairs read with an online preset: the fix is named.
  write_file_atomic(t.path + "/pairs.jsonl", "{\"hq\": \"hq/0.png\", \"lq\": \"lq/0.png\"}\n");
  u = c;
  u.preset = "realesrgan-x4";
  u.images.clear();
  u.lq_images.clear();
  u.manifest = t.path + "/pairs.jsonl";
  CHECK_THROWS_WITH_AS(SinsrData{u}, doctest::Contains("sinsr.preset=none"), Error);
}

TEST_CASE("sinsr: a student of another size than the teacher: its network's settings go into the export") {
  test::TempDir t;
  write_images(t.path + "/hq", 2, 64);
  // The teacher with twice the channels per attention head: one head in the
  // Swin blocks (their bias tables keep their first column).
  const std::string st = t.path + "/student";
  fs::create_directories(st);
  ojson cfg = read_json_file(kTiny + "/samsr.json");
  cfg["unet"]["num_head_channels"] = 32;
  write_file_atomic(st + "/samsr.json", cfg.dump(1) + "\n");
  fs::copy_file(kTiny + "/autoencoder.safetensors", st + "/autoencoder.safetensors");
  {
    const auto f = SafeTensorsFile::open(kTiny + "/unet.safetensors");
    std::vector<torch::Tensor> keep;
    std::vector<TensorToWrite> out;
    for (const TensorView& v : f->tensors()) {
      torch::Tensor x = model::to_tensor(v, "teacher").to(torch::kFloat);
      if (v.name.find("relative_position_bias_table") != std::string::npos) x = x.slice(1, 0, 1);
      keep.push_back(x.contiguous());
      out.push_back({v.name, DType::f32, keep.back().sizes().vec(), keep.back().data_ptr(), size_t(keep.back().nbytes())});
    }
    write_safetensors(st + "/unet.safetensors", out, {{"format", "pt"}});
  }
  ojson s = settings(t.path + "/hq");
  s["student"] = st;
  auto stage = make(s);
  LoopConfig c;
  c.steps = 1;
  c.batch = 1;
  c.out_dir = t.path + "/run";
  c.quiet = true;
  c.config = {{"stage", "sinsr"}};
  run_training(*stage, c);
  const ojson exported = read_json_file(t.path + "/run/final/samsr.json");
  CHECK(exported["unet"]["num_head_channels"] == 32);
  model::SamsrModelOptions o;
  o.dir = t.path + "/run/final";
  o.noise = "gaussian";
  model::SamsrModel m(o);  // loads: the settings fit the weights
  CHECK(m.restore(read_image(kFix + "/nn/samsr_lq.png"), 1, "x", 0, 0).width == 96);
}
