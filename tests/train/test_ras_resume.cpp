// --resume of rass-train ras continues bit for bit: a run stopped after 2 of 5
// steps (stop_after) and resumed in a fresh stage object writes the same
// step-5 checkpoint bytes as an uninterrupted run (data order, crops, colour
// jitter, the online degradation, the VAE sample and the criterion's points
// are all keyed by (seed, step, sample); poly schedule and clipping on).
#include "nn/torch_doctest.hpp"

#include "rass/core/file.hpp"
#include "rass/io/image_io.hpp"
#include "rass/train/loop.hpp"
#include "rass/train/ras_stage.hpp"
#include "test_support.hpp"
#include "train/train_test_util.hpp"

using namespace rass;
using namespace rass::train;

TEST_CASE("ras: resume after 2 of 5 steps equals the uninterrupted run byte for byte") {
  test::TempDir tmp;
  const std::string d = (tmp / "data");
  std::filesystem::create_directories(d + "/images");
  std::filesystem::create_directories(d + "/labels");
  for (int i = 0; i < 3; ++i) {
    Image img(80, 72, 3, 8), lab(80, 72, 1, 8);
    for (size_t k = 0; k < img.data.size(); ++k) img.data[k] = uint8_t((k * 7 + i * 13) % 256);
    for (size_t k = 0; k < lab.data.size(); ++k) lab.data[k] = uint8_t((k / 80 / 20 + (k % 80) / 30 + i) % 5);
    write_image(d + "/images/" + std::to_string(i) + ".png", img);
    write_image(d + "/labels/" + std::to_string(i) + ".png", lab);
  }
  auto info = ras_stage_info();
  nlohmann::ordered_json s = info.defaults();
  s["model"] = std::string(RASS_FIXTURES) + "/nn/ras_tiny";
  s["images"] = d + "/images";
  s["labels"] = d + "/labels";
  s["crop_size"] = 64;
  s["num_points"] = 512;
  StageEnv env;
  env.seed = 5;
  env.quiet = true;
  auto cfg = [&](const std::string& out) {
    LoopConfig c;
    c.steps = 5;
    c.batch = 2;
    c.lr = 1e-4;
    c.weight_decay = 0.05;
    c.schedule = "poly";
    c.clip_grad_norm = 0.01;
    c.seed = 5;
    c.checkpoint_every = 2;
    c.keep_checkpoints = 10;
    c.out_dir = out;
    c.quiet = true;
    c.config = {{"stage", "ras"}, {"ras", s}};
    return c;
  };
  const std::string a = (tmp / "a"), b = (tmp / "b");
  torch::manual_seed(0);  // each make() as in a fresh process (module init draws from the global generator)
  auto sa = info.make(s, env);
  auto full = run_training(*sa, cfg(a));
  LoopConfig cb = cfg(b);
  cb.stop_after = 2;
  torch::manual_seed(0);
  auto sb = info.make(s, env);
  run_training(*sb, cb);
  cb.stop_after = 0;
  cb.resume = true;
  torch::manual_seed(0);
  auto sb2 = info.make(s, env);
  auto second = run_training(*sb2, cb);
  CHECK(second.start_step == 2);
  CHECK(test::file_bytes(a + "/checkpoints/step_5.safetensors") == test::file_bytes(b + "/checkpoints/step_5.safetensors"));
  CHECK(file_exists(a + "/final/segment.json"));
  CHECK(file_exists(a + "/final/seg_lora.safetensors"));
  // A second uninterrupted run is the same too (nothing depends on the process's history).
  {
    const std::string a2 = (tmp / "a2");
    torch::manual_seed(0);
    auto sa2 = info.make(s, env);
    run_training(*sa2, cfg(a2));
    CHECK(test::file_bytes(a + "/checkpoints/step_2.safetensors") == test::file_bytes(b + "/checkpoints/step_2.safetensors"));
    CHECK(test::file_bytes(a + "/checkpoints/step_5.safetensors") == test::file_bytes(a2 + "/checkpoints/step_5.safetensors"));
  }
  CHECK(second.losses.size() == 3);
  for (size_t i = 0; i < second.losses.size(); ++i) CHECK(second.losses[i] == full.losses[i + 2]);
  MESSAGE("losses " << full.losses.front() << " .. " << full.losses.back());
}
