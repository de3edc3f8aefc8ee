// rass-train sam-enhancer (lib/rass/train/sam_enhancer_stage.hpp, GleSAM's
// first stage) on the tiny SAM and SD of tests/fixtures/nn: the adapted
// layers, SAM's embeddings of the pairs, x0, the loss and every adapter's
// gradient against the reference modules (tests/train/make_sam_enhancer_fixture.py:
// segment-anything, diffusers and PEFT as GleSAM's trainer builds them); the
// export in rass-sam's enhancer and the data rules.
#include "nn/torch_doctest.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/merge_lora_tool.hpp"
#include "rass/model/sam_model.hpp"
#include "rass/nn/lora.hpp"
#include "rass/train/sam_enhancer_stage.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace rass;
using namespace rass::train;
using ojson = nlohmann::ordered_json;

namespace {

const std::string kFix = std::string(RASS_FIXTURES);

StageEnv cpu_env() {
  StageEnv e;
  e.quiet = true;
  e.seed = 5;
  return e;
}

// The fixture's two pairs as an HQ folder and an LQ folder.
std::string write_pairs(const std::string& dir) {
  fs::create_directories(dir + "/hq");
  fs::create_directories(dir + "/lq");
  for (const char* k : {"a", "b"}) {
    fs::copy_file(kFix + "/train/sam_enhancer_" + k + "_hq.png", dir + "/hq/" + k + ".png");
    fs::copy_file(kFix + "/train/sam_enhancer_" + k + "_lq.png", dir + "/lq/" + k + ".png");
  }
  return dir;
}

ojson settings(const std::string& data) {
  return ojson{{"model", kFix + "/nn/sam_tiny"}, {"sd", kFix + "/nn/sd_tiny"}, {"images", data + "/hq"},
               {"lq", data + "/lq"},             {"preset", "none"},         {"size", 32},
               {"feat_weight", 5.0}};
}

std::unique_ptr<Stage> make(const ojson& s) { return sam_enhancer_stage_info().make(s, cpu_env()); }

struct Ref {
  std::string path = kFix + "/train/sam_enhancer_ref.safetensors";
  std::shared_ptr<SafeTensorsFile> f = SafeTensorsFile::open(path);
  torch::Tensor operator()(const std::string& n) const {
    const auto* v = f->find(n);
    REQUIRE_MESSAGE(v, n);
    return model::to_tensor(*v, path).to(torch::kFloat);
  }
};

// The stage's adapters set to the fixture's values.
void load_adapters(SamEnhancerStage& st, const Ref& ref) {
  torch::NoGradGuard ng;
  for (const auto& p : st.unet()->named_parameters(true))
    if (nn::is_lora_parameter(p.key())) p.value().copy_(ref("lora." + p.key()));
}

// Two UNet folders' weights hold the same tensors (within float rounding);
// returns how many differ from `base`'s of the same name and shape.
size_t same_tensors(const std::string& dir_a, const std::string& dir_b, const std::string& base_dir) {
  const std::string a = dir_a + "/diffusion_pytorch_model.safetensors", b = dir_b + "/diffusion_pytorch_model.safetensors",
                    base = base_dir + "/diffusion_pytorch_model.safetensors";
  const auto fa = SafeTensorsFile::open(a), fb = SafeTensorsFile::open(b), f0 = SafeTensorsFile::open(base);
  CHECK(fa->tensors().size() == fb->tensors().size());
  size_t changed = 0;
  for (const TensorView& v : fa->tensors()) {
    INFO(v.name);
    const TensorView* w = fb->find(v.name);
    REQUIRE(w);
    const torch::Tensor x = model::to_tensor(v, a);
    CHECK(torch::allclose(x, model::to_tensor(*w, b), 1e-5, 1e-6));
    if (const TensorView* o = f0->find(v.name); o && o->shape == v.shape && !torch::equal(model::to_tensor(*o, base), x))
      ++changed;
  }
  return changed;
}

void expect_error(const ojson& s, ExitCode code, const std::string& needle) {
  try {
    make(s);
    FAIL("no error for " << s.dump());
  } catch (const Error& e) {
    CHECK(e.code() == code);
    CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
  }
}

}  // namespace

TEST_CASE("sam-enhancer: adapted layers, embeddings, x0, loss and every adapter's gradient equal GleSAM's trainer") {
  const ojson cases = ojson::parse(std::ifstream(kFix + "/train/sam_enhancer_cases.json"));
  const Ref ref;
  test::TempDir t;
  auto ptr = make(settings(write_pairs(t.path)));
  auto& st = dynamic_cast<SamEnhancerStage&>(*ptr);
  // PEFT's suffix match of GleSAM's targets selects the same layers.
  std::vector<std::string> want = cases["adapted"].get<std::vector<std::string>>(), got = st.adapted_layers();
  std::sort(got.begin(), got.end());
  CHECK(got.size() == 81);
  CHECK(bool(got == want));
  std::set<std::string> trainable, want_trainable;
  for (const auto& g : st.param_groups())
    for (const auto& [n, p] : g.params) trainable.insert(n);
  for (const auto& n : cases["trainable"]) want_trainable.insert(n.get<std::string>());
  CHECK(bool(trainable == want_trainable));
  // PEFT's initialisation: B zero (the enhancer starts as the CRE UNet), A within Kaiming's bound.
  for (const auto& p : st.unet()->named_parameters(true)) {
    std::string adapter;
    if (!nn::is_lora_parameter(p.key(), &adapter)) continue;
    if (p.key().find(".lora_B.") != std::string::npos) CHECK(p.value().abs().max().item<double>() == 0);
    else CHECK(p.value().abs().max().item<double>() <= 1.0 / std::sqrt(double(p.value()[0].numel())) + 1e-7);
  }
  load_adapters(st, ref);

  std::vector<torch::Tensor> px;
  for (const char* role : {"hq", "lq"})
    for (const char* k : {"a", "b"}) px.push_back(st.encoder_input(read_image(t.path + "/" + role + "/" + k + ".png")));
  const torch::Tensor z = st.embed(torch::cat(px));
  // One encoder pass over the batch, as released, equals one per image.
  for (int i = 0; i < 4; ++i) CHECK(torch::allclose(st.embed(px[size_t(i)]), z.slice(0, i, i + 1), 1e-5, 1e-5));
  const torch::Tensor z_hq = z.slice(0, 0, 2), z_lq = z.slice(0, 2);
  CHECK(torch::allclose(z_hq, ref("z_hq"), 1e-4, 1e-4));
  CHECK(torch::allclose(z_lq, ref("z_lq"), 1e-4, 1e-4));
  // From the reference's embeddings on, so x0 and the gradients test the enhancer alone.
  const torch::Tensor loss = st.loss(ref("z_lq"), ref("z_hq"));
  CHECK(loss.item<double>() == doctest::Approx(ref("loss").item<double>()).epsilon(1e-5));
  const torch::Tensor x0 = st.enhance(ref("z_lq")) * cases["feat_weight"].get<double>();
  CHECK(torch::allclose(x0, ref("x0"), 1e-4, 1e-4));
  loss.backward();
  double worst = 0;
  size_t n = 0;
  for (const auto& g : st.param_groups())
    for (const auto& [name, p] : g.params) {
      INFO(name);
      REQUIRE(p.grad().defined());
      const torch::Tensor r = ref("grad." + name);
      const double scale = r.abs().max().item<double>();
      REQUIRE(scale > 0);
      const double err = (p.grad() - r).abs().max().item<double>() / scale;
      worst = std::max(worst, err);
      CHECK(err < 1e-4);
      ++n;
    }
  CHECK(n == 2 * 81);
  MESSAGE("the largest gradient difference is " << worst << " of its tensor's largest gradient");
}

TEST_CASE("sam-enhancer: the export is a GleSAM folder whose enhancer (rass-sam's) is the trained one") {
  const Ref ref;
  test::TempDir t;
  auto ptr = make(settings(write_pairs(t.path)));
  auto& st = dynamic_cast<SamEnhancerStage&>(*ptr);
  load_adapters(st, ref);
  st.export_model(t.path + "/out");
  for (const char* f : {"sam.json", "sam.safetensors", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
                        "text_encoder/config.json", "tokenizer/vocab.json", "scheduler/scheduler_config.json",
                        "glesam_lora.safetensors"})
    CHECK_MESSAGE(fs::exists(t.path + "/out/" + f), f);
  const ojson cfg = ojson::parse(std::ifstream(t.path + "/out/sam.json"));
  CHECK(cfg["enhancer"]["feat_weight"].get<double>() == 5.0);
  CHECK(cfg["enhancer"]["timestep"].get<int>() == 1);
  const ojson ucfg = ojson::parse(std::ifstream(t.path + "/out/unet/config.json"));
  CHECK(ucfg["in_channels"].get<int>() == 32);
  CHECK(ucfg["out_channels"].get<int>() == 32);
  // The adapters alone, under PEFT's saved names.
  const auto lora = SafeTensorsFile::open(t.path + "/out/glesam_lora.safetensors");
  CHECK(lora->tensors().size() == 2 * 81);
  CHECK(lora->find("unet.conv_in.lora_A.weight") != nullptr);
  // The adapters alone, merged by rass-merge-lora into SD's UNet expanded
  // by its expand-channels, give the exported UNet.
  model::MergeLoraJob job;
  job.quiet = true;
  job.command = model::MergeLoraJob::Command::expand_channels;
  job.model = kFix + "/nn/sd_tiny";
  job.factor = 8;
  job.output_dir = t.path + "/x8";
  REQUIRE(model::run_merge_lora_tool(job) == 0);
  job.command = model::MergeLoraJob::Command::merge;
  job.model = t.path + "/x8";
  torch::NoGradGuard ng;
  // A stage's export: its UNet equals rass-merge-lora's merge of its adapters
  // alone into that expanded UNet (every adapted layer's weight changed but
  // conv_in's and conv_out's, of other shapes than SD's), and rass-sam's
  // enhancement on it equals the stage's. Returns that enhancement.
  auto exported = [&](SamEnhancerStage& stage, const std::string& name) {
    stage.export_model(t.path + "/" + name);
    job.loras = {{t.path + "/" + name + "/glesam_lora.safetensors", 1.0}};
    job.output_dir = t.path + "/merged-" + name;
    REQUIRE(model::run_merge_lora_tool(job) == 0);
    CHECK(same_tensors(t.path + "/" + name + "/unet", job.output_dir + "/unet", kFix + "/nn/sd_tiny/unet") == 81 - 2);
    model::SamModelOptions o;
    o.dir = t.path + "/" + name;
    o.enhance = "on";
    const torch::Tensor e = model::SamModel(o).enhance(ref("z_lq"));
    CHECK(torch::allclose(e, stage.enhance(ref("z_lq")), 1e-5, 1e-5));
    return e;
  };
  // ... and the reference's x0 / g.
  const torch::Tensor e = exported(st, "out");  // (again: an export replaces its earlier one)
  CHECK(torch::allclose(e, ref("x0") / 5.0, 1e-4, 1e-4));
  // Alpha 16 (scale 2): all three use the scale.
  {
    ojson s16 = settings(t.path);
    s16["lora_alpha"] = 16.0;
    auto p16 = make(s16);
    auto& st16 = dynamic_cast<SamEnhancerStage&>(*p16);
    load_adapters(st16, ref);
    CHECK(!torch::allclose(exported(st16, "out-a16"), e, 1e-3, 1e-3));
  }
  // A start from that GleSAM folder alone (no sd): its enhancer is the base,
  // with new adapters that start at zero, so it enhances as the export does.
  ojson s = settings(t.path);
  s["model"] = t.path + "/out";
  s["sd"] = "";
  auto again = make(s);
  auto& st2 = dynamic_cast<SamEnhancerStage&>(*again);
  CHECK(torch::allclose(st2.enhance(ref("z_lq")), e, 1e-5, 1e-5));
}

TEST_CASE("sam-enhancer: settings and data are checked before the weights") {
  test::TempDir t;
  const std::string d = write_pairs(t.path);
  ojson s = settings(d);
  s["preset"] = "glesam";
  expect_error(s, ExitCode::usage, "set preset none");
  s = settings(d);
  s.erase("lq");
  expect_error(s, ExitCode::usage, "sam-enhancer.lq");
  s = settings(d);
  s["sd"] = "";
  expect_error(s, ExitCode::usage, "sam-enhancer.sd");
  s = settings(d);
  s["model"] = kFix + "/nn/sam2_tiny";
  expect_error(s, ExitCode::usage, "SAM 2");
  s = settings(d);
  s["lora_targets"] = ojson::array({"to_q", "to_qq"});
  expect_error(s, ExitCode::usage, "'to_qq'");
  s = settings(d);
  s["loss_space"] = "pixels";
  expect_error(s, ExitCode::usage, "loss_space");
  s = settings(d);
  s["timestep"] = 5000;
  expect_error(s, ExitCode::usage, "timestep");
  // An LQ partner of another shape (another scene under the key) is named;
  // a smaller one of the same shape (an x4 LQ, sizes rounded) is fine.
  {
    const Image lq = read_image(d + "/lq/a.png");
    Image wide(32, 20, 3, 8);
    std::copy(lq.data.begin(), lq.data.begin() + wide.data.size(), wide.data.begin());
    write_image(d + "/lq/a.png", wide);
    expect_error(settings(d), ExitCode::bad_input, "another shape than its HQ image");
    Image small(8, 8, 3, 8);
    write_image(d + "/lq/a.png", small);
    CHECK_NOTHROW(make(settings(d)));
    write_image(d + "/lq/a.png", lq);
  }
  // An LQ image without its HQ partner, and a truncated image, named.
  fs::copy_file(d + "/lq/a.png", d + "/lq/c.png");
  expect_error(settings(d), ExitCode::bad_input, "c.png");
  fs::remove(d + "/lq/c.png");
  {
    std::ifstream in(d + "/hq/b.png", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(d + "/hq/b.png", std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
  }
  expect_error(settings(d), ExitCode::bad_input, "b.png");
}

TEST_CASE("sam-enhancer: online LQ by the glesam preset, keyed by seed, step and sample") {
  test::TempDir t;
  const std::string d = write_pairs(t.path);
  SamEnhancerDataConfig c;
  c.images = d + "/hq";
  c.size = 64;
  const SamEnhancerData data(c, 7);
  REQUIRE(data.size() == 2);
  const SamEnhancerSample a = data.sample(0, 3, 1), b = data.sample(0, 3, 1), other = data.sample(0, 4, 1);
  CHECK(a.hq.width == 64);
  CHECK(a.lq.width == 64);
  CHECK(a.lq.height == 64);
  CHECK(bool(a.lq.data == b.lq.data));
  CHECK(bool(a.lq.data != other.lq.data));
  CHECK(bool(a.lq.data != a.hq.data));
  // GleSAM's factors: 1, 2, 3 or 4.
  CHECK(a.scale >= 1);
  CHECK(a.scale <= 4);
}
