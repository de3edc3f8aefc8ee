// The training loop shared by every stage (stage.hpp): AdamW over the
// stage's parameter groups, the learning-rate schedule, gradient clipping,
// and the step loop.
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "rass/train/stage.hpp"

namespace rass::train {

struct LoopConfig {
  int64_t steps = 1000;
  int64_t batch = 4;             // global batch: samples per step over all processes
  // Gradient accumulation: each process computes its batch / world samples
  // in forwards and backwards of micro_batch samples (0: all at once), the
  // gradients added up with each micro-batch's loss divided by their count.
  int64_t micro_batch = 0;
  double lr = 1e-4;
  // adamw: torch.optim.AdamW; adam: torch.optim.Adam (weight decay as an L2
  // term added to the gradient, as GleSAM's decoder fine-tuning uses it).
  std::string optimizer = "adamw";
  double weight_decay = 1e-2;    // AdamW's decoupled decay, Adam's L2 (groups may override)
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  std::string schedule = "constant";  // constant | poly | cosine
  double poly_power = 0.9;
  double lr_min = 0;             // cosine: the rate it decays to (absolute, every group)
  int64_t warmup_steps = 0;      // linear warmup (0: none) ...
  double warmup_factor = 0.001;  // ... from this fraction of lr (detectron2's WARMUP_FACTOR)
  double clip_grad_norm = 0;     // > 0: clip the L2 norm of all trainable gradients
  // > 0: an exponential moving average of the trainable tensors, after every
  // optimizer step ema = rate ema + (1 - rate) w, from the start weights
  // (ResShift's and SinSR's trainers); checkpoints keep it ("ema.<name>")
  // and the export holds it instead of the last weights.
  double ema_rate = 0;
  // CUDA: autocast of the stage's compute to amp_dtype: bf16, or fp16 with
  // dynamic loss scaling (loss_scaler.hpp; GradScaler's initial scale and
  // growth interval), as the released trainers run it. The scaling also runs
  // on the CPU, where autocast does not (exact there: powers of two).
  bool amp = false;
  std::string amp_dtype = "bf16";  // bf16 | fp16
  double loss_scale = 65536;
  int64_t loss_scale_growth_interval = 2000;
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
  int64_t stop_after = 0;          // > 0: run at most this many steps in this call, then
                                   // checkpoint and return (a job's time slice; --resume goes on)
  int64_t bucket_mb = 25;          // gradient all-reduce bucket size
  bool progress = true;            // a progress bar when stderr is a terminal
  bool quiet = false;
  // The whole merged configuration (written into every checkpoint; --resume
  // refuses a checkpoint whose configuration differs except in `steps`).
  nlohmann::ordered_json config;
  // Every setting's default (train_config.hpp's default_config): a key that a
  // checkpoint's configuration lacks (written before the setting existed) is
  // compared as its default.
  nlohmann::ordered_json config_defaults;
};

struct TrainSummary {
  int64_t steps_done = 0;
  std::vector<double> losses;  // the loss of every step run here
  int64_t start_step = 0;      // where this call began (> 0 after --resume)
  std::string last_checkpoint; // the newest checkpoint written or resumed from ("" if none)
  std::string export_dir;      // where the final model went ("" when the run stopped early)
  double seconds = 0;          // wall time of the steps run here
  double images_per_second = 0;
  int stop_signal = 0;         // the signal that stopped the run before c.steps (0: none)
  int64_t skipped_steps = 0;   // fp16 loss scaling: steps run here whose loss or gradients were not finite
  double loss_scale = 0;       // fp16 loss scaling: the scale at the end (0: no scaling)
};

class Distributed;

// Learning rate of step `step` (0-based) for a group whose rate is lr *
// lr_mult (b): b for constant; b (1 - step / steps)^power for poly
// (detectron2's WarmupPolyLR); for cosine, ResShift's trainer's
// CosineAnnealingLR started after the warmup, lr_min + (b - lr_min) (1 +
// cos(pi (step - W) / (steps - W))) / 2 from step W = warmup_steps on (b
// before it); times the linear warmup factor f0 * (1 - a) + a, a = step /
// W, while step < W.
double learning_rate(const LoopConfig& c, int64_t step, double lr_mult = 1);

// Runs steps [0, c.steps) of `stage` in this process (or continues a run
// from its checkpoint: c.resume / c.resume_from). With `dist` (world > 1)
// every process runs c.batch / world samples of each step and the gradients
// are averaged; only rank 0 writes. Errors: Error(usage) for settings that do
// not go together, Error(bad_input) for a checkpoint of another run, naming
// the differing keys, Error(runtime) for a non-finite loss or gradient
// (nothing written for that step; the last checkpoint stays). With fp16 loss
// scaling such a step is skipped instead (the weights and optimizer state
// unchanged, the scale halved), as GradScaler does, and the run stops with
// Error(runtime) only when the scale falls below 2^-24.
TrainSummary run_training(Stage& stage, const LoopConfig& c, Distributed* dist);
TrainSummary run_training(Stage& stage, const LoopConfig& c);

// Error(usage) naming the setting for values run_training refuses (checked
// before the processes meet, so a bad setting does not wait for a rendezvous).
void check_loop_config(const LoopConfig& c, int world);

// The configuration keys (dotted) a resumed run may change: `steps` and the
// ones that do not change the weights (outputs, logging, resume itself).
const std::set<std::string>& resume_free_keys();

}  // namespace rass::train
