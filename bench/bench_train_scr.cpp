// rass-bench-train-scr SD_DIR HQ_DIR PACK_DIR [crop] [batch] [steps] [threads]: seconds
// per training step of rass-train scr (stage 1) on SD_DIR (e.g.
// tests/fixtures/nn/sd_tiny) with HQ images and caption-map packs:
//   full:  the whole step as training runs it (data: decode, crop, flip, the
//          online "rass" degradation; VAE encode, UNet, decode; MSE + SCL;
//          backward; clipping; AdamW) through run_training;
//   fixed: forward + backward + clipping + AdamW on fixed samples (MSE + SCL,
//          no LPIPS): the step scripts/bench_train_scr_torch.py times in
//          PyTorch eager.
// Median of `steps` after one warm-up. Not a test: scripts/bench-train.sh runs both sides.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "rass/train/loop.hpp"
#include "rass/train/scr_stage.hpp"

using namespace rass;
using namespace rass::train;

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: rass-bench-train-scr SD_DIR HQ_DIR PACK_DIR [crop] [batch] [steps] [threads]\n");
    return 2;
  }
  const int crop = argc > 4 ? std::stoi(argv[4]) : 64;
  const int batch = argc > 5 ? std::stoi(argv[5]) : 2;
  const int steps = argc > 6 ? std::stoi(argv[6]) : 5;
  const int threads = argc > 7 ? std::stoi(argv[7]) : 2;
  torch::set_num_threads(threads);
  StageEnv env;
  env.quiet = true;
  env.threads = threads;
  const nlohmann::ordered_json s = {{"sd", argv[1]},       {"hq_dir", argv[2]}, {"pack_dir", argv[3]},
                                    {"crop_size", crop},   {"w_lpips", 0.0}};
  ScrStage stage(s, env);
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  auto since = [](std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };

  // full: (1 + steps) steps minus 1 step, per step (the optimizer is built per call).
  LoopConfig c;
  c.batch = batch;
  c.lr = 5e-5;
  c.weight_decay = 1e-2;
  c.clip_grad_norm = 1.0;
  auto run = [&](int n) {
    c.steps = n;
    const auto t0 = std::chrono::steady_clock::now();
    run_training(stage, c);
    return since(t0);
  };
  const double one = run(1), many = run(1 + steps);
  const double full = (many - one) / steps;
  // The data part alone (decode, crop, flip, degradation).
  std::vector<double> data_times;
  for (int r = 0; r < steps; ++r) {
    StepContext ctx;
    ctx.step = r;
    ctx.global_batch = ctx.local_batch = batch;
    const auto t0 = std::chrono::steady_clock::now();
    (void)stage.make_samples(ctx);
    data_times.push_back(since(t0));
  }

  // fixed: the eager script's step.
  StepContext ctx;
  ctx.global_batch = ctx.local_batch = batch;
  const std::vector<ScrSample> fixed = stage.make_samples(ctx);
  std::vector<torch::Tensor> params;
  for (auto& [n, t] : stage.trainable()) params.push_back(t);
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(5e-5).weight_decay(1e-2));
  std::vector<double> times;
  for (int r = 0; r <= steps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    opt.zero_grad();
    stage.forward_loss(fixed).loss.backward();
    torch::nn::utils::clip_grad_norm_(params, 1.0);
    opt.step();
    if (r > 0) times.push_back(since(t0));
  }
  std::printf("rass   scr step, crop %d, batch %d, %d threads: full %.3f s/step (of which data + degradation %.3f s, "
              "serial), fixed %.3f s/step (median of %d)\n",
              crop, batch, threads, full, median(data_times), median(times), steps);
  return 0;
}
