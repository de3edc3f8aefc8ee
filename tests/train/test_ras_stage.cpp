// rass-train ras (lib/rass/train/ras_stage.hpp) on the tiny RAS folder
// tests/fixtures/nn/ras_tiny: parameter groups by name, bad configurations,
// a few steps of run_training, and the exported folder in rass-segment.
#include "nn/torch_doctest.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "rass/core/error.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/npy.hpp"
#include "rass/model/segment_model.hpp"
#include "rass/train/loop.hpp"
#include "rass/train/ras_stage.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace rass;
using namespace rass::train;
using ojson = nlohmann::ordered_json;

namespace {

const std::string kTiny = std::string(RASS_FIXTURES) + "/nn/ras_tiny";

// n image/label pairs of w x h: four quadrants of classes (0 wall, 2 sky,
// 4 tree, 6 road + i), each with its own colour, and an ignored border row.
void write_data(const std::string& dir, int n, int w, int h) {
  fs::create_directories(dir + "/images");
  fs::create_directories(dir + "/labels");
  const int cls[4] = {0, 2, 4, 6};
  for (int i = 0; i < n; ++i) {
    Image img(w, h, 3, 8), lab(w, h, 1, 8);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const int q = (y * 2 / h) * 2 + (x * 2 / w);
        const int c = cls[q] + (q == 3 ? i : 0);
        uint8_t* p = img.u8() + (size_t(y) * w + x) * 3;
        p[0] = uint8_t(40 * q + 20), p[1] = uint8_t(255 - 50 * q), p[2] = uint8_t((x * 7 + y * 3 + 30 * c) % 256);
        lab.u8()[size_t(y) * w + x] = y == 0 ? 255 : uint8_t(c);
      }
    write_image(dir + "/images/" + std::to_string(i) + ".png", img);
    write_image(dir + "/labels/" + std::to_string(i) + ".png", lab);
  }
}

ojson small_settings(const std::string& data) {
  return ojson{{"model", kTiny},       {"images", data + "/images"}, {"labels", data + "/labels"},
               {"crop_size", 64},      {"min_sizes", {64}},          {"num_points", 256}};
}

StageEnv cpu_env() {
  StageEnv e;
  e.quiet = true;
  e.seed = 3;
  return e;
}

std::unique_ptr<Stage> make(const ojson& s) { return ras_stage_info().make(s, cpu_env()); }

void expect_error(const ojson& s, ExitCode code, const std::string& needle) {
  try {
    make(s);
    FAIL("accepted: " << s.dump());
  } catch (const Error& e) {
    CHECK(e.code() == code);
    INFO(e.what());
    CHECK(std::string(e.what()).find(needle) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("ras stage: parameter groups by name, lr multipliers and weight decays as released") {
  test::TempDir t;
  write_data(t.path + "/d", 1, 64, 64);
  auto stage = make(small_settings(t.path + "/d"));
  std::map<std::string, const ParamGroup*> by_param;
  const auto groups = stage->param_groups();
  for (const auto& g : groups)
    for (const auto& [name, p] : g.params) {
      CHECK(by_param.count(name) == 0);
      by_param[name] = &g;
      CHECK(p.requires_grad());
    }
  auto group_of = [&](const std::string& name) -> std::string {
    auto it = by_param.find(name);
    return it == by_param.end() ? "(frozen)" : it->second->name;
  };
  auto check = [&](const std::string& name, const std::string& group, double lr_mult, double wd) {
    INFO(name);
    REQUIRE(group_of(name) == group);
    CHECK(by_param[name]->lr_mult == doctest::Approx(lr_mult));
    CHECK(by_param[name]->weight_decay == doctest::Approx(wd));
  };
  // Backbone: conv_in, the Seg LoRA, the projection (x 0.1; its GroupNorms without decay).
  check("unet.conv_in.weight", "backbone", 0.1, -1);
  check("unet.conv_in.bias", "backbone", 0.1, -1);
  check("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.default_encoder_s2.weight", "backbone", 0.1, -1);
  check("unet.up_blocks.1.resnets.0.conv1.lora_B.default_decoder_s2.weight", "backbone", 0.1, -1);
  check("feature_projections.0.0.conv1.weight", "backbone", 0.1, -1);
  check("feature_projections.5.0.shortcut.weight", "backbone", 0.1, -1);
  check("feature_projections.0.0.conv1.norm.weight", "backbone_norm", 0.1, 0);
  check("feature_projections.3.0.conv3.norm.bias", "backbone_norm", 0.1, 0);
  // Head: x 1; LayerNorm / GroupNorm / Embedding parameters without decay.
  check("sem_seg_head.predictor.class_embed.weight", "head", 1, -1);  // a Linear, whatever its name
  check("sem_seg_head.predictor.mask_embed.layers.0.weight", "head", 1, -1);
  check("sem_seg_head.pixel_decoder.transformer.level_embed", "head", 1, -1);  // a plain Parameter upstream
  check("sem_seg_head.predictor.decoder_norm.weight", "head_norm", 1, 0);
  check("sem_seg_head.predictor.transformer_ffn_layers.0.norm.bias", "head_norm", 1, 0);
  check("sem_seg_head.pixel_decoder.input_proj.0.1.weight", "head_norm", 1, 0);
  check("sem_seg_head.pixel_decoder.adapter_1.norm.weight", "head_norm", 1, 0);
  check("sem_seg_head.pixel_decoder.transformer.encoder.layers.0.norm1.weight", "head_norm", 1, 0);
  check("sem_seg_head.predictor.query_feat.weight", "head_embed", 1, 0);
  check("sem_seg_head.predictor.query_embed.weight", "head_embed", 1, 0);
  check("sem_seg_head.predictor.level_embed.weight", "head_embed", 1, 0);
  // Frozen: the UNet base, the SCR-merged weights, VAE and text encoder.
  CHECK(group_of("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight") == "(frozen)");
  CHECK(group_of("unet.conv_out.weight") == "(frozen)");
  // Every UNet parameter in a group is conv_in or a Seg LoRA factor; every head parameter is in one.
  auto& rs = dynamic_cast<RasStage&>(*stage);
  size_t unet_trainable = 0, lora = 0;
  for (const auto& p : rs.model().unet->named_parameters(true)) {
    const std::string n = "unet." + p.key();
    const bool is_lora = n.find(".lora_A.default_") != std::string::npos || n.find(".lora_B.default_") != std::string::npos;
    const bool want = is_lora || p.key().rfind("conv_in.", 0) == 0;
    CHECK_MESSAGE(by_param.count(n) == size_t(want), n);
    unet_trainable += want;
    lora += is_lora;
  }
  CHECK(lora > 0);
  for (const auto& p : rs.model().heads->named_parameters(true)) CHECK_MESSAGE(by_param.count(p.key()) == 1, p.key());
  for (const auto& p : rs.model().vae->parameters()) CHECK(!p.requires_grad());
  for (const auto& p : rs.model().text_encoder->parameters()) CHECK(!p.requires_grad());
  CHECK(by_param.size() == unet_trainable + rs.model().heads->named_parameters(true).size());
  // The loop settings the stage brings.
  const ojson ld = ras_stage_info().loop_defaults();
  CHECK(ld["lr"].get<double>() == doctest::Approx(1e-4));
  CHECK(ld["weight_decay"].get<double>() == doctest::Approx(0.05));
  CHECK(ld["schedule"] == "poly");
  CHECK(ld["poly_power"].get<double>() == doctest::Approx(0.9));
  CHECK(ld["clip_grad_norm"].get<double>() == doctest::Approx(0.01));
}

TEST_CASE("ras stage: bad configurations stop before the first step, naming what is wrong") {
  test::TempDir t;
  write_data(t.path + "/d", 1, 64, 64);
  ojson s = small_settings(t.path + "/d");
  {
    ojson b = s;
    b["lora_rank"] = 4;
    expect_error(b, ExitCode::usage, "ras.lora_rank");
  }
  {
    ojson b = s;
    b["crop_size"] = 48;
    expect_error(b, ExitCode::usage, "multiple of 32");
  }
  {
    ojson b = s;
    b["model"] = t.path + "/d";  // a folder, not a segmentation folder
    expect_error(b, ExitCode::bad_input, "segment.json");
  }
  {
    // The tiny folder without its Seg LoRA.
    fs::copy(kTiny, t.path + "/m", fs::copy_options::recursive);
    fs::remove(t.path + "/m/seg_lora.safetensors");
    ojson b = s;
    b["model"] = t.path + "/m";
    expect_error(b, ExitCode::bad_input, "seg_lora.safetensors");
  }
  {
    // A label beyond the head's 150 classes.
    Image lab(64, 64, 1, 8);
    std::fill(lab.data.begin(), lab.data.end(), uint8_t(200));
    write_image(t.path + "/d/labels/0.png", lab);
    expect_error(s, ExitCode::bad_input, "labels/0.png");
  }
}

TEST_CASE("ras stage: a few steps of run_training reduce the loss; every criterion term is logged") {
  test::TempDir t;
  write_data(t.path + "/d", 2, 64, 64);
  ojson s = small_settings(t.path + "/d");
  s["preset"] = "none";  // a fixed input, so the loss curve shows learning only
  s["color_aug"] = false;
  s["flip"] = false;
  auto stage = make(s);
  StepContext ctx;
  ctx.global_batch = ctx.local_batch = 2;
  const StepLoss l0 = stage->compute_loss(ctx);
  std::set<std::string> names;
  for (const auto& [n, v] : l0.terms) {
    names.insert(n);
    CHECK(std::isfinite(v));
  }
  for (const char* n : {"loss_ce", "loss_mask", "loss_dice", "loss_ce_0", "loss_mask_0", "loss_dice_0"}) CHECK(names.count(n) == 1);
  CHECK(l0.images == 2);
  LoopConfig c;
  c.steps = 30;
  c.batch = 2;
  c.lr = 1e-3;
  c.weight_decay = 0.05;
  c.seed = 3;
  const TrainSummary r = run_training(*stage, c);
  REQUIRE(r.losses.size() == 30);
  const double first = (r.losses[0] + r.losses[1] + r.losses[2]) / 3, last = (r.losses[27] + r.losses[28] + r.losses[29]) / 3;
  MESSAGE("loss " << first << " -> " << last);
  CHECK(last < 0.8 * first);
}

TEST_CASE("ras stage: the exported folder loads in rass-segment and gives the trained model's outputs") {
  test::TempDir t;
  write_data(t.path + "/d", 2, 64, 64);
  auto stage = make(small_settings(t.path + "/d"));
  LoopConfig c;
  c.steps = 3;
  c.batch = 2;
  c.lr = 1e-3;
  run_training(*stage, c);
  auto& rs = dynamic_cast<RasStage&>(*stage);
  const std::string out = t.path + "/export";
  rs.export_model(out);
  for (const char* f : {"segment.json", "seg_lora.safetensors", "seg_head.safetensors", "unet/config.json",
                        "unet/diffusion_pytorch_model.safetensors", "vae/config.json", "text_encoder/config.json",
                        "tokenizer/vocab.json"})
    CHECK_MESSAGE(fs::exists(out + "/" + f), f);
  // The trained model (Seg LoRA unmerged) on one image, the latent mean, prompt "".
  const Image img = read_image(t.path + "/d/images/1.png");
  torch::Tensor x = torch::from_blob(const_cast<uint8_t*>(img.u8()), {1, 64, 64, 3}, torch::kUInt8)
                        .permute({0, 3, 1, 2}).to(torch::kFloat).div(255).mul(2).sub(1);
  torch::Tensor want;
  {
    torch::NoGradGuard ng;
    const nn::MaskFormerOutput o = rs.forward(x, rs.encode_prompt(""), torch::Tensor());
    const torch::Tensor masks = torch::upsample_bilinear2d(o.pred_masks, {64, 64}, false);
    want = nn::semantic_inference(o.pred_logits, masks)[0];
  }
  // The start folder gives something else (the export carries the training).
  model::SegmentModelOptions so;
  so.dir = out;
  so.quiet = true;
  {
    torch::NoGradGuard ng;
    model::SegmentModel exported(so);  // Seg LoRA merged, as rass-segment loads it
    const auto f = exported.crop_features(x, exported.encode_prompt(""), torch::Tensor(), torch::Tensor());
    const nn::MaskFormerOutput o = exported.head(f);
    const torch::Tensor got = nn::semantic_inference(o.pred_logits, torch::upsample_bilinear2d(o.pred_masks, {64, 64}, false))[0];
    CHECK(torch::allclose(got, want, 1e-4, 1e-5));
    so.dir = kTiny;
    model::SegmentModel start(so);
    const auto f0 = start.crop_features(x, start.encode_prompt(""), torch::Tensor(), torch::Tensor());
    const nn::MaskFormerOutput o0 = start.head(f0);
    CHECK(!torch::allclose(o0.pred_logits, o.pred_logits, 1e-4, 1e-5));
  }
  // The real binary.
  const std::string bin = std::string(RASS_BINARY_DIR) + "/rass-segment";
  REQUIRE_MESSAGE(fs::exists(bin), "build rass-segment first: " << bin);
  const std::string cmd = bin + " -q -m " + out + " " + t.path + "/d/images/1.png --whole --no-resize --vae-mode -o " +
                          t.path + "/seg.png --logits-out " + t.path + "/logits.npy";
  REQUIRE(std::system(cmd.c_str()) == 0);
  const NpyArray a = read_npy(t.path + "/logits.npy");
  REQUIRE(a.shape == std::vector<int64_t>{150, 64, 64});
  const torch::Tensor got = torch::from_blob(const_cast<float*>(a.as<float>()), {150, 64, 64}, torch::kFloat);
  CHECK(torch::allclose(got, want, 1e-4, 1e-5));
  // Exporting again replaces the folder whole.
  rs.export_model(out);
  CHECK(fs::exists(out + "/segment.json"));
  CHECK(!fs::exists(out + ".tmp-" + std::to_string(::getpid())));
}
