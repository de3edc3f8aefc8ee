// The segmentation parts rass-merge-lora init-seg writes (model/seg_init.hpp):
// the projection's taps and strides from the VAE and UNet configs, and
// seg_head.safetensors initialised as the released training starts.
// Expected values come from outside the code under test: the released
// FEATURE_DIMS / FEATURE_STRIDES of Ka1Guan/RASS's maskformer2_RASS.yaml, and
// per-parameter init statistics of Mask2Former's own head modules and
// detectron2's c2_msra_fill'ed BottleneckBlocks (seg_head_init.json,
// tests/nn/make_seg_head_init_fixture.py).
#include "torch_doctest.hpp"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/seg_init.hpp"
#include "rass/model/segment_model.hpp"

using namespace rass;
namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/rass-seg-init-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

const std::vector<int> kStrides = {4, 8, 16, 32};

}  // namespace

TEST_CASE("ras_projection_json: SD 2.1-base gives the released taps; a UNet without res4/res5 is refused") {
  const ojson fp = model::ras_projection_json({128, 256, 512, 512}, {320, 640, 1280, 1280}, 512, kStrides, "vae.json", "unet.json");
  CHECK(fp["feature_dims"] == ojson::array({256, 512, 1280, 1280, 640, 320}));
  CHECK(fp["feature_strides"] == ojson::array({4, 8, 32, 16, 8, 8}));
  CHECK(fp["projection_dim"] == 512);
  // tiny4 / tiny-seg: the same strides at tiny widths.
  const ojson tiny = model::ras_projection_json({8, 16, 16, 16}, {16, 16, 32, 32}, 128, kStrides, "vae.json", "unet.json");
  CHECK(tiny["feature_dims"] == ojson::array({16, 16, 32, 32, 16, 16}));
  CHECK(tiny["feature_strides"] == ojson::array({4, 8, 32, 16, 8, 8}));
  // rass-model init --preset tiny: 2 levels, up blocks at strides 8 and 8 (no res4, res5).
  try {
    model::ras_projection_json({8, 16, 16, 16}, {32, 64}, 128, kStrides, "vae.json", "sd/unet/config.json");
    FAIL("a 2-level UNet was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::bad_input);
    const std::string m = e.what();
    CHECK(m.find("sd/unet/config.json") != std::string::npos);
    CHECK(m.find("strides 8, 8") != std::string::npos);
    CHECK(m.find("tiny4") != std::string::npos);
  }
  // A VAE of 3 blocks has no down_blocks[3]: named.
  try {
    model::ras_projection_json({8, 16, 16}, {16, 16, 32, 32}, 128, kStrides, "sd/vae/config.json", "unet.json");
    FAIL("a 3-block VAE was accepted");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("sd/vae/config.json") != std::string::npos);
  }
}

TEST_CASE("write_seg_head: the released projection and head initialised as Mask2Former/detectron2 do") {
  const ojson fix = read_json_file(std::string(RASS_FIXTURES) + "/nn/seg_head_init.json");
  TempDir t;
  nn::MaskFormerHeadConfig h;  // the released head
  const ojson fp = model::ras_projection_json({128, 256, 512, 512}, {320, 640, 1280, 1280}, 512, h.in_strides, "vae", "unet");
  CHECK(fp["feature_dims"] == fix["projection"]["feature_dims"]);
  write_file_atomic(t.path + "/segment.json", model::segment_json(fp, h, "ade20k", 1, "rass", "test").dump(2));
  const model::SegmentFolderConfig cfg = model::read_segment_config(t.path);
  CHECK(cfg.classes.size() == 150);
  const std::string path = t.path + "/seg_head.safetensors";
  model::write_seg_head(path, cfg, 7, torch::kFloat, {{"format", "pt"}});
  const auto f = SafeTensorsFile::open(path);

  std::set<std::string> ours;
  for (const TensorView& v : f->tensors()) ours.insert(v.name);
  std::set<std::string> ref;
  for (const auto& [name, e] : fix["params"].items()) ref.insert(name);
  CHECK(ours == ref);

  int random = 0, fixed = 0, distinguished = 0;
  for (const auto& [name, e] : fix["params"].items()) {
    const TensorView* v = f->find(name);
    if (!v) continue;
    const torch::Tensor x = model::to_tensor(*v, path).to(torch::kDouble).flatten();
    INFO(name);
    CHECK(x.sizes().vec() == std::vector<int64_t>{int64_t(x.numel())});
    int64_t numel = 1;
    for (const auto& d : e["shape"]) numel *= d.get<int64_t>();
    REQUIRE(x.numel() == numel);
    if (e.contains("constant")) {
      CHECK((x == e["constant"].get<double>()).all().item<bool>());
      ++fixed;
    } else if (e.contains("values")) {
      const torch::Tensor want = torch::tensor(e["values"].get<std::vector<double>>(), torch::kDouble);
      CHECK((x - want).abs().max().item<double>() < 1e-6);
      ++fixed;
    } else {
      // A random draw: its distribution's signature within sampling error
      // (5 standard errors of ours, n values, against the fixture's 3n).
      const double n = double(x.numel()), std_ref = e["std"].get<double>();
      const double std_ours = x.std().item<double>();
      const double se = std::sqrt(1 / (2 * n) + 1 / (6 * n));
      CHECK(std::abs(std_ours / std_ref - 1) < 5 * se + 1e-3);
      CHECK(std::abs(x.mean().item<double>() - e["mean"].get<double>()) < 5 * std_ref * std::sqrt(1 / n + 1 / (3 * n)));
      if (n >= 4000) {
        // Uniform (0.866) and normal (0.798) are 8 standard errors apart here.
        const double ratio = x.abs().mean().item<double>() / std_ours;
        CHECK(std::abs(ratio - e["abs_over_std"].get<double>()) < 5 * 0.6 / std::sqrt(n) + 2e-3);
        ++distinguished;
      }
      if (e["abs_over_std"].get<double>() > 0.84 && n >= 100) {
        // A uniform's bound: the fixture's largest of 3n draws and ours of n
        // are both within a few bound/n of it (P(gap > 10 b/n) ~ e^-10).
        const double hi = x.abs().max().item<double>(), bound = e["max_abs"].get<double>();
        CHECK(hi <= bound * (1 + 10 / (3 * n)) + 1e-6);
        CHECK(hi >= bound * (1 - 10 / n) - 1e-6);
      }
      ++random;
    }
  }
  CHECK(random > 100);
  CHECK(fixed > 100);
  CHECK(distinguished > 50);

  // Deterministic by seed: the same seed, the same bytes; another seed, others.
  model::write_seg_head(t.path + "/again.safetensors", cfg, 7, torch::kFloat, {{"format", "pt"}});
  model::write_seg_head(t.path + "/other.safetensors", cfg, 8, torch::kFloat, {{"format", "pt"}});
  CHECK(read_file_bytes(path) == read_file_bytes(t.path + "/again.safetensors"));
  CHECK(read_file_bytes(path) != read_file_bytes(t.path + "/other.safetensors"));
}
