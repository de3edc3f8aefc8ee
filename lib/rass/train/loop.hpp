// The training loop shared by every stage (stage.hpp): AdamW over the
// stage's parameter groups, the learning-rate schedule, gradient clipping,
// and the step loop.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rass/train/stage.hpp"

namespace rass::train {

struct LoopConfig {
  int64_t steps = 1000;
  int64_t batch = 4;             // global batch: samples per step over all processes
  double lr = 1e-4;
  double weight_decay = 1e-2;    // AdamW's decoupled decay (groups may override)
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  std::string schedule = "constant";  // constant | poly
  double poly_power = 0.9;
  double clip_grad_norm = 0;     // > 0: clip the L2 norm of all trainable gradients
  uint64_t seed = 0;
};

struct TrainSummary {
  int64_t steps_done = 0;
  std::vector<double> losses;  // the loss of every step run here
};

// Learning rate of step `step` (0-based): lr for constant; lr * (1 -
// step / steps)^power for poly (detectron2's WarmupPolyLR without warmup).
double learning_rate(const LoopConfig& c, int64_t step);

// Runs steps [0, c.steps) of `stage` in this process.
TrainSummary run_training(Stage& stage, const LoopConfig& c);

}  // namespace rass::train
