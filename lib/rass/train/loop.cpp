#include "rass/train/loop.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>
#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/found_file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/progress.hpp"
#include "rass/core/signals.hpp"
#include "rass/model/model_folder.hpp"
#include "rass/model/peak_memory.hpp"
#include "rass/train/adam.hpp"
#include "rass/nn/autocast.hpp"
#include "rass/train/distributed.hpp"
#include "rass/train/loss_scaler.hpp"
#include "rass/train/run_dir.hpp"
#include "rass/train/train_checkpoint.hpp"

namespace fs = std::filesystem;

namespace rass::train {

double learning_rate(const LoopConfig& c, int64_t step, double lr_mult) {
  double lr = c.lr * lr_mult;
  if (c.schedule == "poly") lr *= std::pow(1.0 - double(step) / double(c.steps), c.poly_power);
  if (c.schedule == "cosine" && step > c.warmup_steps) {
    // torch's CosineAnnealingLR(T_max = steps - W, eta_min = lr_min), which
    // ResShift's trainer steps once per step after its warmup; its eta_min
    // is the same absolute rate for every group.
    const double t = double(step - c.warmup_steps) / double(c.steps - c.warmup_steps);
    lr = c.lr_min + (lr - c.lr_min) * (1 + std::cos(M_PI * t)) / 2;
  }
  if (c.warmup_steps > 0 && step < c.warmup_steps) {
    const double a = double(step) / double(c.warmup_steps);
    lr *= c.warmup_factor * (1 - a) + a;
  }
  return lr;
}

const std::set<std::string>& resume_free_keys() {
  static const std::set<std::string> k = {
      "loop.steps",       "loop.resume",          "loop.resume_from", "loop.stop_after", "loop.out_dir",
      "loop.export_dir",  "loop.checkpoint_every", "loop.keep_checkpoints", "loop.log_every", "loop.progress",
      "loop.quiet",       "loop.device",           "loop.threads", "loop.bucket_mb", "loop.timeout_s",
      // How the samples of a step are split into forwards, and whether the
      // UNet recomputes its activations, change the weights by float rounding
      // (as another process count does, which --resume also allows) for a
      // per-sample mean loss; ras's criterion is normalised per micro-batch
      // (README). A run that ran out of memory resumes with either.
      "loop.micro_batch", "loop.gradient_checkpointing",
      // Whether the data is read once before the first step changes no weight.
      "ras.check_labels", "sam-decoder.check_data", "sinsr.check_data",
      "resshift.check_data", "sam-enhancer.check_data",
      // The rehearsed damaged sample, "mended" for the --resume.
      "selftest.bad_item"};
  return k;
}

namespace {

std::string fmt_double(double v) {
  std::ostringstream o;
  o.precision(9);
  o << v;
  return o.str();
}

// One trainable tensor with its AdamW state (torch.optim.AdamW's, kept here
// so checkpoints hold exactly what the update uses, in any LibTorch version).
struct Param {
  std::string name;
  torch::Tensor p, exp_avg, exp_avg_sq;
  torch::Tensor ema;  // loop.ema_rate > 0: the moving average
  int64_t step = 0;
  double lr_mult = 1, weight_decay = 0;
};

// torch.optim.AdamW's (or, with loop.optimizer "adam", torch.optim.Adam's)
// single-tensor update.
void optimizer_update(Param& q, const torch::Tensor& grad, double lr, const LoopConfig& c) {
  q.step += 1;
  AdamSettings a;
  a.lr = lr;
  a.weight_decay = q.weight_decay;
  a.beta1 = c.beta1;
  a.beta2 = c.beta2;
  a.eps = c.eps;
  a.decoupled = c.optimizer == "adamw";
  adam_update(q.p, q.exp_avg, q.exp_avg_sq, q.step, grad, a);
}

// The log's peak_memory_mb: LibTorch's allocator's peak on CUDA (the
// tensors), the process's resident set elsewhere.
double peak_memory_mb(const torch::Device& dev) {
  const rass::model::PeakMemory m = rass::model::peak_memory(dev);
  return double(m.allocated >= 0 ? m.allocated : m.resident) / (1 << 20);
}

}  // namespace

void check_loop_config(const LoopConfig& c, int world) {
  if (c.steps <= 0) throw_usage("loop.steps must be positive, got " + std::to_string(c.steps));
  // The bounds of the --steps and --batch flags, for values from --set and
  // --config too (loop.batch=4294967296 tried to allocate 275 GB).
  if (c.steps > (int64_t(1) << 40)) throw_usage("loop.steps must be at most 2^40, got " + std::to_string(c.steps));
  if (c.batch <= 0 || c.batch > (1 << 20))
    throw_usage("loop.batch must be in 1..1048576, got " + std::to_string(c.batch));
  if (c.batch % world != 0)
    throw_usage("loop.batch " + std::to_string(c.batch) + " is the global batch and must be divisible by the " +
                std::to_string(world) + " processes");
  if (c.schedule != "constant" && c.schedule != "poly" && c.schedule != "cosine")
    throw_usage("loop.schedule must be constant, poly or cosine, got '" + c.schedule + "'");
  if (!(c.lr_min >= 0) || !std::isfinite(c.lr_min)) throw_usage("loop.lr_min must be a finite number >= 0");
  if (c.lr_min != 0 && c.schedule != "cosine")
    throw_usage("loop.lr_min " + fmt_double(c.lr_min) + " is the cosine schedule's floor; loop.schedule is " + c.schedule +
                " (set loop.schedule=cosine, or leave loop.lr_min at 0)");
  if (c.schedule == "cosine" && c.lr_min > c.lr)
    throw_usage("loop.lr_min (" + fmt_double(c.lr_min) + ") must not exceed loop.lr (" + fmt_double(c.lr) +
                "): the cosine schedule decays from lr to lr_min");
  if (c.schedule == "cosine" && c.warmup_steps >= c.steps)
    throw_usage("loop.schedule cosine decays after the warmup: loop.warmup_steps (" + std::to_string(c.warmup_steps) +
                ") must be below loop.steps (" + std::to_string(c.steps) + ")");
  if (c.optimizer != "adamw" && c.optimizer != "adam")
    throw_usage("loop.optimizer must be adamw or adam, got '" + c.optimizer + "'");
  if (!(c.lr >= 0) || !std::isfinite(c.lr)) throw_usage("loop.lr must be a finite number >= 0");
  // A negative warmup factor or poly power made the learning rate negative
  // (gradient ascent) or grow during the run.
  if (!(c.warmup_factor >= 0 && c.warmup_factor <= 1))
    throw_usage("loop.warmup_factor must be in [0, 1] (the warmup starts at lr times it), got " + fmt_double(c.warmup_factor));
  if (!(c.poly_power >= 0) || !std::isfinite(c.poly_power))
    throw_usage("loop.poly_power must be a finite number >= 0, got " + fmt_double(c.poly_power));
  if (!(c.beta1 >= 0 && c.beta1 < 1 && c.beta2 >= 0 && c.beta2 < 1)) throw_usage("loop.beta1 and loop.beta2 must be in [0, 1)");
  if (!(c.eps > 0) || !std::isfinite(c.eps)) throw_usage("loop.eps must be a finite number > 0");
  if (!(c.weight_decay >= 0) || !std::isfinite(c.weight_decay))
    throw_usage("loop.weight_decay must be a finite number >= 0 (as PyTorch's Adam and AdamW require)");
  if (c.warmup_steps < 0 || c.checkpoint_every < 0 || c.log_every < 0 || c.stop_after < 0 || c.keep_checkpoints < 0)
    throw_usage("loop.warmup_steps, checkpoint_every, keep_checkpoints, log_every and stop_after must not be negative");
  if (c.bucket_mb <= 0) throw_usage("loop.bucket_mb must be positive");
  if (c.micro_batch < 0) throw_usage("loop.micro_batch must not be negative (0: all of a process's samples at once)");
  if (c.micro_batch > 0 && (c.batch / world) % c.micro_batch != 0)
    throw_usage("loop.micro_batch " + std::to_string(c.micro_batch) + " must divide the " + std::to_string(c.batch / world) +
                " samples each process computes per step (loop.batch " + std::to_string(c.batch) + " over " +
                std::to_string(world) + " process(es)); 0: all of them at once");
  if (c.clip_grad_norm < 0) throw_usage("loop.clip_grad_norm must not be negative (0: no clipping)");
  if (!(c.ema_rate >= 0 && c.ema_rate < 1)) throw_usage("loop.ema_rate must be in [0, 1) (0: no moving average)");
  if (c.amp_dtype != "bf16" && c.amp_dtype != "fp16")
    throw_usage("loop.amp_dtype must be bf16 or fp16, got '" + c.amp_dtype + "'");
  // Below 2^-24 the run would stop at its first non-finite step (the loop's
  // floor), and float32 rounds far smaller values to 0 or a subnormal.
  if (!(c.loss_scale >= 0x1p-24) || !std::isfinite(float(c.loss_scale)))
    throw_usage("loop.loss_scale must be a number from 2^-24 (5.96e-08) to float32's largest, got " + fmt_double(c.loss_scale));
  if (c.loss_scale_growth_interval < 1 || c.loss_scale_growth_interval > (int64_t(1) << 31))
    throw_usage("loop.loss_scale_growth_interval must be in 1..2^31, got " + std::to_string(c.loss_scale_growth_interval));
  // Settings another setting ignores are refused, not dropped silently.
  const LoopConfig d;
  if (c.amp_dtype != d.amp_dtype && !c.amp)
    throw_usage("loop.amp_dtype " + c.amp_dtype + " is the dtype of loop.amp, which is off (set loop.amp=true)");
  if ((c.loss_scale != d.loss_scale || c.loss_scale_growth_interval != d.loss_scale_growth_interval) &&
      !(c.amp && c.amp_dtype == "fp16"))
    throw_usage("loop.loss_scale and loop.loss_scale_growth_interval are fp16's loss scaling, which runs with "
                "loop.amp=true and loop.amp_dtype=fp16 only");
}

namespace {

// Keeps the log lines of steps before `step` (a resumed run logs the rest
// again; a killed run may have left a torn last line).
void truncate_log(const std::string& path, int64_t step) {
  std::ifstream in(path);
  if (!in) return;
  std::string line, kept;
  while (std::getline(in, line)) {
    try {
      auto j = parse_json_bounded<nlohmann::json>(line);
      if (j.contains("step") && j["step"].is_number_integer() && j["step"].get<int64_t>() < step) kept += line + "\n";
    } catch (const std::exception&) {
    }
  }
  write_file_atomic(path, kept);
}

}  // namespace

namespace {

// The stage's trainable tensors, in group order (the order of the gradient
// buckets: the same in every process), with zeroed AdamW state.
std::vector<Param> collect_params(Stage& stage, const LoopConfig& c) {
  std::vector<Param> params;
  std::set<std::string> names;
  for (auto& g : stage.param_groups()) {
    for (auto& [name, t] : g.params) {
      if (!t.defined() || !t.requires_grad())
        throw_usage(stage.name() + ": trainable tensor '" + name + "' is undefined or does not require grad");
      if (!names.insert(name).second) throw_usage(stage.name() + ": two trainable tensors are named '" + name + "'");
      Param q;
      q.name = name;
      q.p = t;
      q.exp_avg = torch::zeros_like(t);
      q.exp_avg_sq = torch::zeros_like(t);
      if (c.ema_rate > 0) q.ema = t.detach().clone();
      q.lr_mult = g.lr_mult;
      q.weight_decay = g.weight_decay < 0 ? c.weight_decay : g.weight_decay;
      params.push_back(std::move(q));
    }
  }
  if (params.empty()) throw_usage(stage.name() + ": nothing to train (no parameter groups)");
  return params;
}

// Loads a checkpoint's weights, AdamW state and generator state into
// `params` in place, after checking it belongs to this configuration.
// Returns its step.
int64_t load_state(std::vector<Param>& params, LossScaler& scaler, const TrainCheckpoint& ck, const std::string& from,
                   const LoopConfig& c, int world, const std::function<void(const std::string&)>& note) {
  // Configurations from before loop.optimizer existed were AdamW's, and
  // those from before loop.ema_rate had none.
  auto with_defaults = [&c](nlohmann::ordered_json j) {
    if (j.contains("loop") && j["loop"].is_object() && !j["loop"].contains("optimizer")) j["loop"]["optimizer"] = "adamw";
    if (j.contains("loop") && j["loop"].is_object() && !j["loop"].contains("ema_rate")) j["loop"]["ema_rate"] = 0.0;
    // Then any other key added since: its default.
    std::function<void(nlohmann::ordered_json&, const nlohmann::ordered_json&)> fill =
        [&](nlohmann::ordered_json& dst, const nlohmann::ordered_json& def) {
          if (!dst.is_object() || !def.is_object()) return;
          for (auto it = def.begin(); it != def.end(); ++it) {
            if (!dst.contains(it.key())) dst[it.key()] = it.value();
            else fill(dst[it.key()], it.value());
          }
        };
    fill(j, c.config_defaults);
    return j;
  };
  auto diffs = config_differences(with_defaults(ck.config), with_defaults(c.config), resume_free_keys());
  if (!diffs.empty()) {
    std::string keys;
    for (size_t i = 0; i < diffs.size() && i < 12; ++i) keys += (i ? ", " : "") + diffs[i];
    if (diffs.size() > 12) keys += ", ...";
    throw_bad_input(from, "checkpoint of another configuration: " + keys + (diffs.size() == 1 ? " differs" : " differ") +
                              " (only loop.steps, loop.micro_batch, loop.gradient_checkpointing and the output "
                              "settings may change on --resume)");
  }
  if (ck.step > c.steps)
    throw_usage(from + ": the checkpoint is at step " + std::to_string(ck.step) + ", beyond loop.steps " +
                std::to_string(c.steps));
  torch::NoGradGuard ng;
  auto get = [&](const std::string& key, const torch::Tensor& like) {
    auto it = ck.tensors.find(key);
    if (it == ck.tensors.end()) throw_bad_input(from, "checkpoint lacks tensor '" + key + "'");
    if (it->second.sizes() != like.sizes() || it->second.scalar_type() != like.scalar_type()) {
      auto desc = [](const torch::Tensor& t) {
        std::string d = std::string(c10::toString(t.scalar_type())) + " [";
        for (int64_t i = 0; i < t.dim(); ++i) d += (i ? ", " : "") + std::to_string(t.size(i));
        return d + "]";
      };
      throw_bad_input(from, "tensor '" + key + "' is " + desc(it->second) + ", the model's is " + desc(like));
    }
    return it->second;
  };
  // Everything is checked before anything is copied.
  for (auto& q : params) {
    get(q.name, q.p);
    get("adamw.exp_avg." + q.name, q.exp_avg);
    get("adamw.exp_avg_sq." + q.name, q.exp_avg_sq);
    if (!ck.tensors.count("adamw.step." + q.name)) throw_bad_input(from, "checkpoint lacks tensor 'adamw.step." + q.name + "'");
    if (q.ema.defined()) get("ema." + q.name, q.ema);
  }
  // fp16 loss scaling's state (the configuration says whether it ran).
  float loss_scale = 0;
  int64_t growth_tracker = 0;
  if (scaler.enabled()) {
    auto scalar = [&](const std::string& key, torch::ScalarType type) {
      auto it = ck.tensors.find(key);
      if (it == ck.tensors.end()) throw_bad_input(from, "checkpoint lacks tensor '" + key + "' (fp16 loss scaling's state)");
      if (it->second.numel() != 1 || it->second.scalar_type() != type)
        throw_bad_input(from, "tensor '" + key + "' holds " + std::to_string(it->second.numel()) + " " +
                                  c10::toString(it->second.scalar_type()) + " value(s), not one " + c10::toString(type) +
                                  " (" + (type == torch::kFloat ? "F32" : "I64") + ")");
      return it->second;
    };
    loss_scale = scalar("amp.loss_scale", torch::kFloat).item<float>();
    growth_tracker = scalar("amp.growth_tracker", torch::kLong).item<int64_t>();
    // What the loop writes: a scale from 2^-24 up (it stops below), a count
    // below the growth interval (it restarts at the interval).
    if (!(loss_scale >= 0x1p-24f) || !std::isfinite(loss_scale) || growth_tracker < 0 ||
        growth_tracker >= c.loss_scale_growth_interval)
      throw_bad_input(from, "fp16 loss scaling's state (scale " + fmt_double(loss_scale) + ", growth tracker " +
                                std::to_string(growth_tracker) + ") is not what this configuration writes (a scale of at least 2^-24, "
                                "a count below loop.loss_scale_growth_interval " +
                                std::to_string(c.loss_scale_growth_interval) + "): a damaged checkpoint?");
  }
  // The generator state is tried on a scratch generator: LibTorch refuses a
  // damaged one with an exception carrying its stack trace.
  if (auto r = ck.tensors.find("rng.cpu"); r != ck.tensors.end()) {
    if (r->second.scalar_type() != torch::kUInt8 || r->second.dim() != 1)
      throw_bad_input(from, "tensor 'rng.cpu' is not a CPU generator state (expected a U8 vector)");
    try {
      at::detail::createCPUGenerator().set_state(r->second);
    } catch (const c10::Error&) {
      throw_bad_input(from, "tensor 'rng.cpu' is not a valid CPU generator state (damaged checkpoint?)");
    }
  }
  for (auto& q : params) {
    q.p.copy_(get(q.name, q.p));
    q.exp_avg.copy_(get("adamw.exp_avg." + q.name, q.exp_avg));
    q.exp_avg_sq.copy_(get("adamw.exp_avg_sq." + q.name, q.exp_avg_sq));
    q.step = ck.tensors.at("adamw.step." + q.name).to(torch::kLong).item<int64_t>();
    if (q.ema.defined()) q.ema.copy_(get("ema." + q.name, q.ema));
  }
  if (scaler.enabled()) scaler.set_state(loss_scale, growth_tracker);
  if (auto r = ck.tensors.find("rng.cpu"); r != ck.tensors.end()) {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(r->second);
  }
  if (ck.world != world)
    note("the checkpoint was written by " + std::to_string(ck.world) + " process(es), this run has " +
         std::to_string(world) + ": equal to fp32 rounding, not bit for bit");
  note("resuming from " + from + " at step " + std::to_string(ck.step));
  return ck.step;
}

// The CPU generator's state (a copy).
torch::Tensor cpu_rng_state() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

// rng: the CPU generator's state to record (default: as it is now).
void save_state(const std::string& path, const std::vector<Param>& params, const LossScaler& scaler, int64_t steps_done,
                const LoopConfig& c, int world, const std::string& stage, const torch::Tensor& rng = torch::Tensor()) {
  TrainCheckpoint ck;
  ck.step = steps_done;
  ck.seed = c.seed;
  ck.world = world;
  ck.stage = stage;
  ck.config = c.config;
  for (auto& q : params) {
    ck.tensors[q.name] = q.p;
    ck.tensors["adamw.exp_avg." + q.name] = q.exp_avg;
    ck.tensors["adamw.exp_avg_sq." + q.name] = q.exp_avg_sq;
    ck.tensors["adamw.step." + q.name] = torch::tensor(q.step, torch::kLong);
    if (q.ema.defined()) ck.tensors["ema." + q.name] = q.ema;
  }
  if (scaler.enabled()) {
    ck.tensors["amp.loss_scale"] = torch::tensor(scaler.scale(), torch::kFloat);
    ck.tensors["amp.growth_tracker"] = torch::tensor(scaler.growth_tracker(), torch::kLong);
  }
  // The CPU generator too, for stages that draw from it (the contract asks
  // for keyed generators; this keeps --resume exact for those that do not).
  ck.tensors["rng.cpu"] = rng.defined() ? rng : cpu_rng_state();
  write_train_checkpoint(path, ck);
}

}  // namespace

TrainSummary run_training(Stage& stage, const LoopConfig& c) { return run_training(stage, c, nullptr); }

TrainSummary run_training(Stage& stage, const LoopConfig& c, Distributed* dist) {
  const int world = dist ? dist->world() : 1, rank = dist ? dist->rank() : 0;
  // Every process must hold the same configuration: checked first, so the
  // checks below fail alike everywhere.
  if (dist) dist->check_same("configuration", c.config.dump());  // strict: bytes compared as given
  const bool writer = rank == 0 && !c.out_dir.empty();
  const std::string ckdir = c.out_dir.empty() ? "" : path_join(c.out_dir, "checkpoints");
  auto note = [&](const std::string& m) {
    if (rank == 0 && !c.quiet) std::fprintf(stderr, "rass-train: %s\n", printable_message(m).c_str());
  };
  std::vector<Param> params;
  // fp16 autocast's loss scaling (on the CPU too: exact there, and the same
  // skipped steps).
  LossScaler scaler(c.amp && c.amp_dtype == "fp16", c.loss_scale, c.loss_scale_growth_interval);
  int64_t start = 0;
  TrainSummary s;
  std::string log_path;
  // What fails before step 0 in one process stops all of them (agree below).
  std::exception_ptr early;
  // Held to the end of the run: a second run on this directory is refused
  // before it reads or writes anything there.
  std::unique_ptr<RunDirLock> lock;
  try {
    check_loop_config(c, world);
    if (writer) lock = std::make_unique<RunDirLock>(c.out_dir);
    params = collect_params(stage, c);
    std::string from = c.resume_from;
    TrainCheckpoint ck;
    if (!from.empty()) ck = read_train_checkpoint(from);
    if (from.empty() && c.resume) {
      auto all = list_checkpoints(ckdir);
      if (all.empty()) note("--resume: no checkpoint in " + ckdir + " yet; starting at step 0");
      // The newest that reads: one damaged on disk (checkpoints are written
      // whole, then renamed) is passed over, with a note, for the one
      // before it, which keep_checkpoints kept for this.
      // One that opens but is not this rass-train's (a newer format version)
      // stops the run: an older binary must not resume behind it and prune it.
      for (auto it = all.rbegin(); it != all.rend(); ++it) {
        try {
          ck = read_train_checkpoint(it->second);
          from = it->second;
          break;
        } catch (const Error& e) {
          const std::string damage = checkpoint_damage(it->second);
          if (std::next(it) == all.rend() || damage.empty()) throw;
          // Damaged contents are renamed aside (kept for a look, no longer a
          // checkpoint): pruning counted the file as the newest and removed
          // the good one this run resumed from. A file that could not be
          // opened or mapped (permissions, I/O, memory) may be good: left.
          const bool contents = damage.find(": cannot open: ") == std::string::npos &&
                                damage.find(": cannot map: ") == std::string::npos;
          const std::string aside = it->second + ".damaged";
          std::string renamed;
          if (writer && contents) {
            if (std::rename(it->second.c_str(), aside.c_str()) == 0) renamed = " (renamed " + printable_message(aside) + ")";
            else renamed = " (it could not be renamed aside: " + std::string(std::strerror(errno)) + ")";
          }
          if (rank == 0)  // a warning: shown with -q too
            std::fprintf(stderr, "rass-train: warning: %s; passed over for the checkpoint before it%s\n", e.what(),
                         renamed.c_str());
        }
      }
    }
    // --resume-from of another run's checkpoint into a folder holding a run
    // cut that run's log and mixed the two runs' checkpoints (exit 0); one of
    // this folder's own checkpoints (an older step) continues its run.
    std::error_code eq;
    const fs::path from_dir = fs::path(c.resume_from).parent_path();
    const bool own = !c.resume_from.empty() && fs::equivalent(from_dir.empty() ? fs::path(".") : from_dir, ckdir, eq);
    // loop.resume set beside --resume-from (a config's "resume": true) does
    // not make another run's checkpoint this folder's: resume_from is what loads.
    const bool continues = c.resume_from.empty() ? c.resume : own;
    if (!continues && writer && !list_checkpoints(ckdir).empty())
      throw_usage(c.out_dir + " already holds checkpoints of a run: " +
                  (c.resume_from.empty() ? std::string("--resume to continue it, or another --out-dir")
                                         : "--resume-from starts a run in a folder of its own: another --out-dir (a "
                                           "checkpoint of this run kept elsewhere continues it from " + ckdir + ")"));
    if (!from.empty()) {
      start = load_state(params, scaler, ck, from, c, world, note);
      s.last_checkpoint = from;
    }
    // Damaged start weights (or checkpoint) would end the run at its first
    // step as a "non-finite loss" (exit 1) that points at the learning rate.
    for (const Param& q : params) {
      if (q.p.is_floating_point() && !torch::isfinite(q.p.detach()).all().item<bool>())
        throw_bad_input(from.empty() ? stage.name() + " start weights" : from,
                        "trainable tensor '" + q.name + "' holds NaN or infinite values before the first step (a " +
                            (from.empty() ? std::string("damaged weights file of the start folder?)") : std::string("damaged checkpoint?)")));
      // The average is what the export holds: NaN there would be exported
      // with exit 0; NaN in the optimizer's moments fails every step as a
      // "non-finite loss" that points at the learning rate.
      if (q.ema.defined() && !torch::isfinite(q.ema).all().item<bool>())
        throw_bad_input(from, "the moving average 'ema." + q.name + "' holds NaN or infinite values (a damaged checkpoint?)");
      for (const auto& [key, t] : {std::pair<const char*, const torch::Tensor*>{"adamw.exp_avg.", &q.exp_avg},
                                   {"adamw.exp_avg_sq.", &q.exp_avg_sq}})
        if (!torch::isfinite(*t).all().item<bool>())
          throw_bad_input(from, "the optimizer state '" + std::string(key) + q.name +
                                    "' holds NaN or infinite values (a damaged checkpoint?)");
    }
    if (writer) {
      make_directories(ckdir);
      log_path = path_join(c.out_dir, "log.jsonl");
      require_found_file(log_path, "the run's log");  // a FIFO there blocked the run
      require_found_file(path_join(c.out_dir, model::FolderWriter::run_id_file()), "a run's id file");  // read at the export
      if (start > 0) truncate_log(log_path, start);
      else write_file_atomic(log_path, std::string());
    }
  } catch (...) {
    early = std::current_exception();
  }
  try {
    if (dist) dist->agree(early);  // throws in every process when one failed
    else if (early) std::rethrow_exception(early);
    if (dist && world > 1) {
      // Each process found its own checkpoint: with node-local folders (or a
      // checkpoint written between two listings) they could resume at
      // different steps, run different step counts and leave the last ones
      // waiting in a collective.
      int64_t adam_steps = 0;
      for (const Param& q : params) adam_steps += q.step;
      dist->check_same("step this process resumes from (here " + std::to_string(start) + ")",
                       std::to_string(start) + " " + std::to_string(adam_steps) + " " + std::to_string(scaler.scale()) +
                           " " + std::to_string(scaler.growth_tracker()),
                       "every process must resume from the same checkpoint (the same --resume-from, or -o on a file "
                       "system every process sees)");
      // And from the same state: start weights read on each node (or a
      // checkpoint of another run at the same step) could differ, and the
      // processes would average gradients of different models. Rank 0's
      // state is everyone's, as DistributedDataParallel does.
      std::vector<torch::Tensor> state;
      for (const Param& q : params)
        for (const torch::Tensor* t : {&q.p, &q.ema, &q.exp_avg, &q.exp_avg_sq}) state.push_back(*t);
      dist->broadcast_from_rank0_(state, c.bucket_mb << 20);
    }
  } catch (...) {
    if (lock) lock->abandon();
    throw;
  }
  s.start_step = start;
  s.steps_done = start;  // a resumed run with nothing left to do has done them all
  const torch::Device device = params.front().p.device();
  int64_t checkpoint_step = start;  // the step the newest checkpoint (or the start) holds
  // prune: false for the checkpoint of a failed step, which a newer one in
  // the folder (a --resume-from of an older file) must not see pruned.
  auto write_checkpoint = [&](int64_t steps_done, const torch::Tensor& rng = torch::Tensor(), bool prune = true) {
    if (!writer) return;
    s.last_checkpoint = checkpoint_path(ckdir, steps_done);
    save_state(s.last_checkpoint, params, scaler, steps_done, c, world, stage.name(), rng);
    if (prune) prune_checkpoints(ckdir, c.keep_checkpoints);
    checkpoint_step = steps_done;
  };

  // The steps before a failed step, kept for --resume as they stood when
  // it began (the generator too): rank 0 writes them unless a checkpoint
  // holds them already. The message's tail names the file; "mend the data"
  // only where the data failed (a run that diverged resumes into the same
  // failure).
  auto keep_steps_done = [&](int64_t step, const torch::Tensor& rng_before, bool data_failed) -> std::string {
    const std::string mend = data_failed ? ": mend the data and --resume" : "";
    if (writer && step > checkpoint_step) {
      try {
        write_checkpoint(step, rng_before, /*prune=*/false);
        return "; steps 0.." + std::to_string(step - 1) + " are kept in " + s.last_checkpoint + mend;
      } catch (const std::exception& w) {
        return std::string("; the checkpoint of the steps done could not be written: ") + w.what();
      }
    }
    // Only rank 0 knows the newest (the others hold the one they resumed from).
    if (writer && !s.last_checkpoint.empty()) return "; the last checkpoint is " + s.last_checkpoint + mend;
    return "";
  };

  // A step that fails in one of several processes: that process tells the
  // store why before it ends; the others, whose collective then fails, stop
  // with its message and exit code, and rank 0 keeps the steps done (their
  // weights are as the step found them: updates follow the collectives).
  auto step_failed = [&](const std::exception_ptr& e, int64_t step, const torch::Tensor& rng_before) {
    if (!dist || world == 1) std::rethrow_exception(e);
    if (!dist->collective_failed()) {  // this process's own failure
      dist->tell_failure(e);
      std::rethrow_exception(e);
    }
    const auto [code, peer] = dist->peer_failure();
    if (peer.empty()) std::rethrow_exception(e);
    const std::string kept = keep_steps_done(step, rng_before, code == int(ExitCode::bad_input));
    throw Error(ExitCode(code >= 1 && code <= 3 ? code : 1), "another process failed at step " + std::to_string(step) +
                                                                   ": " + peer + kept);
  };

  // From here a SIGINT, SIGTERM or SIGUSR1 (a batch system's notice before
  // its time limit) ends the run after the step in progress, with a
  // checkpoint for --resume; a second one ends it at once (signals.hpp).
  DeferredStop deferred("rass-train");

  const bool amp = c.amp && device.is_cuda();
  if (c.amp && !device.is_cuda())
    note(std::string("loop.amp is for CUDA; on the CPU the run is in full precision") +
         (scaler.enabled() ? " (fp16's loss scaling still runs: exact in float32, it skips the steps whose gradients are not finite)" : ""));
  const c10::ScalarType amp_type = c.amp_dtype == "fp16" ? c10::kHalf : c10::kBFloat16;
  Progress progress(size_t(c.steps - start), "train", c.quiet || !c.progress || rank != 0);
  const int64_t local = c.batch / world;
  // loop.micro_batch: samples per forward and backward (0: the process's all).
  const int64_t micro = c.micro_batch > 0 ? c.micro_batch : local;
  const int64_t parts = local / micro;
  const auto t_start = std::chrono::steady_clock::now();
  auto t_last = t_start;
  int64_t images_since = 0, images_total = 0;
  int64_t skips_in_a_row = 0;  // fp16 loss scaling
  int64_t step = start;
  for (; step < c.steps; ++step) {
    if (c.stop_after > 0 && step - start >= c.stop_after) break;
    StepContext ctx;
    ctx.step = step;
    ctx.global_batch = c.batch;
    ctx.rank = rank;
    ctx.world = world;
    if (dist) ctx.allreduce_sum = [dist](double x) { return dist->allreduce_sum(x); };
    for (auto& q : params) q.p.mutable_grad() = torch::Tensor();

    // A step that fails on its data (a damaged image, a label out of
    // range, a pack that does not read) keeps the steps done before it: they are
    // checkpointed as they stood when this step began (the generator
    // too), so a --resume after the file is mended continues exactly.
    const torch::Tensor rng_before = writer ? cpu_rng_state() : torch::Tensor();
    // The process's samples in `parts` micro-batches (loop.micro_batch), each
    // a forward and a backward whose gradients add up: every micro-batch's
    // loss divided by their count, so the gradient is that of the mean of
    // their losses (the mean over the samples for a per-sample mean), as
    // ResShift's trainer accumulates its microbatches.
    StepLoss l;
    const float scale_used = scaler.scale();
    try {
      for (int64_t part = 0; part < parts; ++part) {
        ctx.local_batch = micro;
        ctx.sample_offset = int64_t(rank) * local + part * micro;
        StepLoss m;
        {
          const nn::AutocastScope autocast(amp, amp_type);
          try {
            m = stage.compute_loss(ctx);
          } catch (const Error& e) {
            const std::string kept = keep_steps_done(step, rng_before, e.code() == ExitCode::bad_input);
            throw Error(e.code(), std::string(e.what()) + " (" + stage.name() + " step " + std::to_string(step) + kept + ")");
          }
        }
        if (!m.loss.defined() || m.loss.numel() != 1 || !m.loss.requires_grad())
          throw_runtime(stage.name() + ": the stage's loss at step " + std::to_string(step) +
                        " is not a scalar with a gradient");
        scaler.scale_loss(parts > 1 ? m.loss / double(parts) : m.loss).backward();
        // The log's numbers: the mean of the micro-batches' loss and terms.
        // (on the loss's device: one synchronisation per step, below)
        const torch::Tensor mean_part = m.loss.detach().to(torch::kDouble).reshape({}) / double(parts);
        l.loss = l.loss.defined() ? l.loss + mean_part : mean_part;
        if (part == 0) {
          for (auto& t : m.terms) l.terms.emplace_back(t.first, t.second / double(parts));
        } else {
          for (size_t i = 0; i < m.terms.size() || i < l.terms.size(); ++i) {
            if (i >= m.terms.size() || i >= l.terms.size() || m.terms[i].first != l.terms[i].first)
              throw_runtime(stage.name() + ": its micro-batches of step " + std::to_string(step) + " logged different terms");
            l.terms[i].second += m.terms[i].second / double(parts);
          }
        }
        l.images += m.images;
      }
    } catch (...) {
      step_failed(std::current_exception(), step, rng_before);
    }

    // Every process all-reduces the same tensors in the same order: a
    // parameter without a gradient this step gets zeros.
    std::vector<torch::Tensor> grads;
    for (auto& q : params) {
      if (!q.p.grad().defined()) q.p.mutable_grad() = torch::zeros_like(q.p);
      grads.push_back(q.p.grad());
    }
    if (dist) try {
        dist->allreduce_mean_(grads, c.bucket_mb << 20);
      } catch (...) {
        step_failed(std::current_exception(), step, rng_before);
      }
    // As GradScaler.unscale_ before clipping: of the all-reduced gradients,
    // so every process finds the same non-finite ones and skips alike.
    scaler.unscale(grads);

    // The log numbers: loss and terms averaged over processes, images summed.
    std::vector<double> nums{l.loss.item<double>(), double(l.images)};
    for (auto& t : l.terms) nums.push_back(t.second);
    // Whether to stop after this step rides on the same all-reduce: every
    // process stops at the same step, also those no signal reached, and ends
    // by the signal the others got: count, sum and sum of squares of the
    // signal numbers tell it (one number when sum^2 = count * squares).
    const int local_stop = stop_signal();
    nums.push_back(local_stop ? 1.0 : 0.0);
    nums.push_back(double(local_stop));
    nums.push_back(double(local_stop) * local_stop);
    if (dist) try {
        nums = dist->allreduce_sum(nums);
      } catch (...) {
        step_failed(std::current_exception(), step, rng_before);
      }
    const double stopped_processes = nums[nums.size() - 3], sig_sum = nums[nums.size() - 2], sig_sq = nums.back();
    const bool stop_now = stopped_processes > 0;
    const bool one_signal = stop_now && std::abs(sig_sum * sig_sum - stopped_processes * sig_sq) < 0.5;
    const int peer_signal = one_signal ? int(std::lround(sig_sum / stopped_processes)) : SIGTERM;
    const double loss = nums[0] / world;

    // torch.nn.utils.clip_grad_norm_: the 2-norm of the per-tensor 2-norms,
    // and every gradient times min(1, max / (norm + 1e-6)).
    torch::NoGradGuard ng;
    std::vector<torch::Tensor> norms;
    for (auto& g : grads) norms.push_back(g.norm(2).to(torch::kFloat));
    const double grad_norm = torch::stack(norms).norm(2).item<double>();
    // fp16 loss scaling: a step whose loss or gradients are not finite is
    // skipped, as GradScaler.step skips it, and the scale halves; until the
    // scale is so small (below fp16's least subnormal, 2^-24) that it cannot
    // be the cause: then it is a diverged run, stopped as below.
    const bool finite = std::isfinite(loss) && std::isfinite(grad_norm);
    const bool skipped = scaler.enabled() && !finite;
    if (skipped) {
      scaler.update(true);
      ++s.skipped_steps;
      ++skips_in_a_row;
    } else {
      skips_in_a_row = 0;
    }
    if (!finite && (!skipped || scaler.scale() < 0x1p-24f)) {
      std::string terms;
      for (size_t i = 0; i < l.terms.size(); ++i) terms += " " + l.terms[i].first + "=" + fmt_double(nums[2 + i] / world);
      throw_runtime(stage.name() + ": non-finite " + (std::isfinite(loss) ? "gradient (norm " + fmt_double(grad_norm) + ")"
                                                                         : "loss") +
                    " at step " + std::to_string(step) + " (loss=" + fmt_double(loss) + terms + "); stopped" +
                    (!writer                   ? std::string()  // rank 0 names the newest checkpoint
                     : s.last_checkpoint.empty() ? " with no checkpoint written"
                                                 : ", the last checkpoint is " + s.last_checkpoint) +
                    " (a lower loop.lr or loop.clip_grad_norm may help)" +
                    (skipped ? "; fp16 loss scaling skipped " +
                                   (skips_in_a_row > 1 ? "this and the " + std::to_string(skips_in_a_row - 1) +
                                                             " step(s) before it"
                                                       : std::string("this step")) +
                                   ", halving its scale each time, and the scale is now below 2^-24 (" +
                                   fmt_double(scaler.scale()) + "): no scale makes these values finite"
                             : ""));
    }
    if (c.clip_grad_norm > 0 && !skipped) {
      const double coef = std::min(1.0, c.clip_grad_norm / (grad_norm + 1e-6));
      for (auto& g : grads) g.mul_(coef);
    }
    const double lr = learning_rate(c, step);
    if (!skipped) {
      for (size_t i = 0; i < params.size(); ++i)
        optimizer_update(params[i], grads[i], learning_rate(c, step, params[i].lr_mult), c);
      scaler.update(false);
    }
    // The average moves on a skipped step too (ResShift's trainer updates it
    // every iteration, after GradScaler's step).
    if (c.ema_rate > 0)
      for (auto& q : params) q.ema.mul_(c.ema_rate).add_(q.p.detach(), 1.0 - c.ema_rate);

    s.losses.push_back(loss);
    s.steps_done = step + 1;
    images_since += int64_t(nums[1]);
    images_total += int64_t(nums[1]);
    const bool last = step + 1 == c.steps || (c.stop_after > 0 && step + 1 - start >= c.stop_after) || stop_now;
    if (writer && ((c.log_every > 0 && (step + 1) % c.log_every == 0) || last)) {  // log_every 0: the last step only
      const auto now = std::chrono::steady_clock::now();
      const double dt = std::chrono::duration<double>(now - t_last).count();
      nlohmann::ordered_json j;
      j["step"] = step;
      j["loss"] = loss;
      for (size_t i = 0; i < l.terms.size(); ++i) j[l.terms[i].first] = nums[2 + i] / world;
      j["lr"] = lr;
      j["grad_norm"] = grad_norm;
      if (scaler.enabled()) {
        j["loss_scale"] = scale_used;  // the scale of this step's backward
        j["skipped"] = skipped;
      }
      j["images_per_s"] = dt > 0 ? double(images_since) / dt : 0.0;
      j["time"] = std::chrono::duration<double>(now - t_start).count();
      j["peak_memory_mb"] = peak_memory_mb(device);
      std::FILE* f = std::fopen(log_path.c_str(), "a");
      if (!f) throw_runtime(log_path + ": cannot append to the log: " + std::strerror(errno));
      const std::string line = json_text(j) + "\n";
      bool ok = std::fwrite(line.data(), 1, line.size(), f) == line.size();
      int err = ok ? 0 : errno;  // the reason of the call that failed, not a stray one
      if (ok && std::fflush(f) != 0) ok = false, err = errno;
      if (std::fclose(f) != 0 && ok) ok = false, err = errno;
      if (!ok) throw_runtime(log_path + ": cannot write the log: " + std::strerror(err ? err : EIO));
      t_last = now;
      images_since = 0;
    }
    if ((c.checkpoint_every > 0 && (step + 1) % c.checkpoint_every == 0) || last) write_checkpoint(step + 1);
    progress.tick();
    if (stop_now && step + 1 < c.steps) {
      // A peer was signalled: this process ends the same way (SIGTERM when
      // the peers got different signals).
      if (!stop_signal()) request_stop(peer_signal);
      s.stop_signal = stop_signal();
      ++step;
      break;
    }
  }
  // A signal after the last all-reduce of a --stop-after slice: the slice
  // ended anyway, with its checkpoint; the summary still names the signal
  // the process will end by.
  if (step < c.steps && stop_signal() && !s.stop_signal) s.stop_signal = stop_signal();
  progress.finish();
  if (s.skipped_steps > 0)
    note(std::to_string(s.skipped_steps) + " of the " + std::to_string(step - start) +
         " steps run here were skipped: their loss or gradients were not finite under fp16 loss scaling (the scale is now " +
         fmt_double(scaler.scale()) + "; log.jsonl marks them \"skipped\")");
  if (scaler.enabled()) s.loss_scale = scaler.scale();
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  s.images_per_second = s.seconds > 0 ? double(images_total) / s.seconds : 0;
  if (step == c.steps && rank == 0 && !c.out_dir.empty()) {
    s.export_dir = c.export_dir.empty() ? path_join(c.out_dir, "final") : c.export_dir;
    if (c.ema_rate > 0) {
      // The stage exports what its parameters hold: the average, for the
      // export only (the last weights come back after it, also on failure).
      torch::NoGradGuard ng;
      std::vector<torch::Tensor> last;
      for (auto& q : params) {
        last.push_back(q.p.detach().clone());
        q.p.detach().copy_(q.ema);
      }
      auto put_back = [&] {
        for (size_t i = 0; i < params.size(); ++i) params[i].p.detach().copy_(last[i]);
      };
      try {
        stage.export_model(s.export_dir);
      } catch (...) {
        put_back();
        throw;
      }
      put_back();
    } else {
      stage.export_model(s.export_dir);
    }
  }
  // A signal during the last step or the export came too late to stop
  // anything: the run is complete, and its exit status says so.
  if (step == c.steps) clear_stop();
  if (dist) dist->barrier();  // no process leaves while another still needs it
  return s;
}

}  // namespace rass::train
