// rass-bench-train-ras MODEL_DIR [crop] [batch] [steps] [threads] [points]: seconds per
// training step of rass-train ras on MODEL_DIR (e.g. tests/fixtures/nn/ras_tiny):
//   full:  the whole step as training runs it (data: decode, augment, the
//          online "rass" degradation; forward; Mask2Former criterion with
//          12544 points; backward; clipping; AdamW) through run_training;
//   fixed: forward + backward + AdamW on a fixed random batch with the loss
//          mean(logits * A) + mean(masks * M) over every prediction, the step
//          scripts/bench_train_ras_torch.py times in PyTorch eager.
// Median of `steps` after one warm-up. Not a test: scripts/bench-train.sh
// runs both sides.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "rass/io/image_io.hpp"
#include "rass/train/loop.hpp"
#include "rass/train/ras_stage.hpp"

namespace fs = std::filesystem;
using namespace rass;
using namespace rass::train;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: rass-bench-train-ras MODEL_DIR [crop] [batch] [steps] [threads] [points]\n");
    return 2;
  }
  const int crop = argc > 2 ? std::stoi(argv[2]) : 128;
  const int batch = argc > 3 ? std::stoi(argv[3]) : 2;
  const int steps = argc > 4 ? std::stoi(argv[4]) : 5;
  const int threads = argc > 5 ? std::stoi(argv[5]) : 2;
  const int points = argc > 6 ? std::stoi(argv[6]) : 12544;  // the criterion's TRAIN_NUM_POINTS
  torch::set_num_threads(threads);
  const fs::path tmp = fs::temp_directory_path() / ("rass-bench-train-ras." + std::to_string(::getpid()));
  fs::create_directories(tmp / "images");
  fs::create_directories(tmp / "labels");
  // Synthetic data a little larger than the crop: four class regions, textured.
  for (int i = 0; i < 4; ++i) {
    const int w = crop * 5 / 4, h = crop * 5 / 4;
    Image img(w, h, 3, 8), lab(w, h, 1, 8);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const int q = (y * 2 / h) * 2 + (x * 2 / w);
        uint8_t* p = img.u8() + (size_t(y) * w + x) * 3;
        p[0] = uint8_t(60 * q), p[1] = uint8_t((x * 5 + i * 40) % 256), p[2] = uint8_t((y * 3) % 256);
        lab.u8()[size_t(y) * w + x] = uint8_t(q * 3 + i);
      }
    write_image((tmp / "images" / (std::to_string(i) + ".png")).string(), img);
    write_image((tmp / "labels" / (std::to_string(i) + ".png")).string(), lab);
  }
  StageEnv env;
  env.quiet = true;
  const nlohmann::ordered_json s = {{"model", argv[1]}, {"images", (tmp / "images").string()},
                                    {"labels", (tmp / "labels").string()}, {"crop_size", crop},
                                    {"num_points", points}};
  RasStage stage(parse_ras_settings(s), env);
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };

  // full: run_training one step at a time would rebuild the optimizer; time
  // (1 + steps) steps and (1) step and take the difference per step.
  LoopConfig c;
  c.batch = batch;
  c.lr = 1e-4;
  c.weight_decay = 0.05;
  c.schedule = "poly";
  c.clip_grad_norm = 0.01;
  auto run = [&](int n) {
    c.steps = n;
    const auto t0 = std::chrono::steady_clock::now();
    run_training(stage, c);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  const double one = run(1), many = run(1 + steps);
  const double full = (many - one) / steps;
  // Where the full step's time goes: the data part alone (decode, augment, degrade).
  std::vector<double> data_times;
  for (int r = 0; r < steps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int b = 0; b < batch; ++b) stage.data().sample(size_t(b) % stage.data().size(), r, b);
    data_times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }

  // fixed: the eager script's step.
  std::vector<torch::Tensor> params;
  for (const auto& g : stage.param_groups())
    for (const auto& [n, p] : g.params) params.push_back(p);
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(1e-4).weight_decay(0.05));
  torch::manual_seed(0);
  const torch::Tensor x = torch::rand({batch, 3, crop, crop}) * 2 - 1;
  const torch::Tensor ctx = stage.encode_prompt("wall sky tree").expand({batch, -1, -1}).contiguous();
  std::vector<double> times;
  for (int r = 0; r <= steps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    opt.zero_grad();
    const nn::MaskFormerOutput o = stage.forward(x, ctx, torch::Tensor());
    std::vector<std::pair<torch::Tensor, torch::Tensor>> preds{{o.pred_logits, o.pred_masks}};
    for (const auto& a : o.aux) preds.push_back(a);
    torch::Tensor loss = torch::zeros({});
    for (const auto& [lg, mk] : preds) loss = loss + (lg * torch::randn_like(lg)).mean() + (mk * torch::randn_like(mk)).mean();
    loss.backward();
    opt.step();
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) times.push_back(t);
  }
  std::printf("rass   ras step, crop %d, batch %d, %d threads: full %.3f s/step (%d points; of which data + degradation %.3f s, "
              "serial), fixed %.3f s/step (median of %d)\n",
              crop, batch, threads, full, points, median(data_times), median(times), steps);
  fs::remove_all(tmp);
  return 0;
}
