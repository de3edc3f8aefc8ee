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
  int64_t warmup_steps = 0;      // linear warmup from 0 (0: none)
  double clip_grad_norm = 0;     // > 0: clip the L2 norm of all trainable gradients
  bool amp = false;              // CUDA: autocast to StageEnv::dtype (bf16/fp16)
  uint64_t seed = 0;
  // Outputs (rank 0 writes): <out_dir>/log.jsonl, <out_dir>/checkpoints/,
  // the exported model in export_dir (default <out_dir>/final).
  std::string out_dir;
  std::string export_dir;
  int64_t checkpoint_every = 500;  // 0: only the last step's
  int keep_checkpoints = 2;        // older ones are removed
  int64_t log_every = 1;
  bool resume = false;             // continue from out_dir's latest checkpoint
  std::string resume_from;         // or from this checkpoint file
  int64_t bucket_mb = 25;          // gradient all-reduce bucket size
  bool progress = true;            // a progress bar when stderr is a terminal
  bool quiet = false;
  // The whole merged configuration (written into every checkpoint; --resume
  // refuses a checkpoint whose configuration differs except in `steps`).
  nlohmann::ordered_json config;
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
