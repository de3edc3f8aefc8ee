// What a training stage (rass-train scr, ras; later vae, unet) gives the
// shared training loop (loop.hpp), and what the loop gives it.
//
// A stage owns its model, data and loss; the loop owns everything that is
// the same for every stage: the optimizer and its parameter groups, the
// learning-rate schedule, gradient clipping, mixed precision, checkpoints and
// --resume, logs, and data-parallel processes.
//
// Determinism contract (what makes --resume bit-for-bit and N processes equal
// to one with the combined batch): every random draw a stage makes for step s
// comes from generators keyed by (seed, s, global sample index) -- never from
// state carried from one step to the next, never from the rank. The data item
// of a sample comes from data_order.hpp.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

namespace rass::train {

// Where a stage runs; filled by the loop before the stage is made.
struct StageEnv {
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat;  // compute dtype of the frozen parts
  int threads = 0;                           // intra-op threads (0: all cores)
  int rank = 0, world = 1;                   // data-parallel process and count
  bool quiet = false;
  std::string prog = "rass-train";           // prefix of stderr notes (only rank 0 prints)
  uint64_t seed = 0;
  // loop.gradient_checkpointing: the stage's diffusers UNet (and VAE, where
  // gradients pass through it) recomputes its blocks' activations in the
  // backward pass (stages with StageInfo::gradient_checkpointing only).
  bool gradient_checkpointing = false;
};

// One optimizer parameter group. Names are unique across groups and stable:
// they are the checkpoint's tensor names.
struct ParamGroup {
  std::string name;                                          // e.g. "lora", "head", "backbone"
  std::vector<std::pair<std::string, torch::Tensor>> params; // requires_grad tensors
  double lr_mult = 1.0;                                      // x the loop's learning rate
  double weight_decay = -1;                                  // < 0: the loop's weight decay
};

struct StepContext {
  int64_t step = 0;           // 0-based global step being computed
  int64_t global_batch = 1;   // samples per step over all processes
  int64_t local_batch = 1;    // samples this process computes
  int64_t sample_offset = 0;  // global index of this process's first sample
  int rank = 0, world = 1;
  // Sum of a value over all processes (identity with one): normalisers such as
  // Mask2Former's num_masks must be global for N processes to equal one.
  std::function<double(double)> allreduce_sum = [](double x) { return x; };
};

struct StepLoss {
  // The scalar to differentiate: for N processes to equal one process with
  // the combined batch, the gradient of the global loss must be the mean of
  // the processes' gradients (the loop averages them), e.g. a mean over this
  // process's samples when every process has the same local_batch.
  torch::Tensor loss;
  // Every loss term for the log, as plain numbers (weighted or not as named).
  std::vector<std::pair<std::string, double>> terms;
  int64_t images = 0;  // samples this process used (images/s)
};

class Stage {
 public:
  virtual ~Stage() = default;
  virtual std::string name() const = 0;
  // The trainable parameters, grouped for the optimizer.
  virtual std::vector<ParamGroup> param_groups() = 0;
  // Forward and loss of this process's part of step ctx.step.
  virtual StepLoss compute_loss(const StepContext& ctx) = 0;
  // Writes the trained weights as a folder the inference tools load
  // (rass-restore --lora / -m, rass-segment -m), atomically.
  virtual void export_model(const std::string& dir) = 0;
};

// A stage as the CLI and the config layer see it.
struct StageInfo {
  std::string name;     // the subcommand: "scr", "ras", ...
  std::string summary;  // one line for --help
  // Every stage setting with its default (the "stage" section of the config;
  // --print-config prints it; a config file may only use these keys).
  std::function<nlohmann::ordered_json()> defaults;
  // The stage's own defaults for loop settings (e.g. lr, weight decay,
  // schedule), overriding the loop's generic ones.
  std::function<nlohmann::ordered_json()> loop_defaults;
  // Builds the stage from its merged "stage" section. Bad settings throw
  // rass::Error(usage or bad_input) naming the key, before any training.
  std::function<std::unique_ptr<Stage>(const nlohmann::ordered_json& stage_config, const StageEnv& env)> make;
  // Whether it honours StageEnv::gradient_checkpointing (else the setting is refused).
  bool gradient_checkpointing = false;
};

}  // namespace rass::train
