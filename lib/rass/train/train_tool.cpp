#include "rass/train/train_tool.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include <torch/torch.h>

#include "rass/batch/output_guard.hpp"
#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/signals.hpp"
#include "rass/model/device.hpp"
#include "rass/model/model_folder.hpp"
#include "rass/train/distributed.hpp"
#include "rass/train/loop.hpp"
#include "rass/train/run_dir.hpp"
#include "rass/train/stage_list.hpp"
#include "rass/train/train_config.hpp"

namespace rass::train {

namespace {

// Intra-op threads: the setting, or the cores shared among the processes of
// this node (torchrun's LOCAL_WORLD_SIZE, Slurm's SLURM_NTASKS_PER_NODE).
int threads_for(int setting) {
  if (setting < 0) throw_usage("loop.threads must not be negative (0: the cores divided by the local processes)");
  if (setting > 0) return setting;
  int local = 1;
  for (const char* v : {"LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE"}) {
    const char* s = std::getenv(v);
    if (s && std::atoi(s) > 0) {
      local = std::atoi(s);
      break;
    }
  }
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / local);
}

}  // namespace

int run_train_tool(const TrainJob& job) {
  if (job.command == "plot") {
    plot_training_log(job.plot);
    return 0;
  }
  const StageInfo* info = find_stage(job.command);
  if (!info) throw_usage("no training stage named '" + job.command + "'");
  ConfigSources src;
  src.file = job.config_file;
  src.sets = job.sets;
  src.flags = job.flags;
  const nlohmann::ordered_json config = merge_config(*info, src);
  if (job.print_config) {
    std::cout << json_text(config, 2) << "\n";
    return 0;
  }
  const LoopConfig c = loop_config_from(config);
  const nlohmann::ordered_json& loop = config.at("loop");
  const DistEnv de = dist_env_from_environment();
  check_loop_config(c, de.world);
  // The tool always writes a run (an empty out_dir would train and keep nothing).
  if (c.out_dir.empty()) throw_usage("loop.out_dir is empty: give the run's output directory with -o DIR");
  // A failure in one process before the first step stops every process at
  // the rendezvous's agreement (below), not after the others waited
  // loop.timeout_s for it.
  std::exception_ptr early;
  if (de.rank == 0) try {  // the other processes write nothing
    // Checked before any process joins or trains: outputs never go into the
    // folders the stage reads, and an export folder that cannot be one is
    // refused now, not after the last step.
    const std::vector<std::string> inputs = input_directories(config.at(info->name), info->name);
    // '-' (also -o /dev/stdout) is no folder (a run went into ./-); names past
    // the system's limits and folders that cannot be made failed after the
    // last step (exit 1).
    batch::OutputGuard().check_output_dir(c.out_dir, "loop.out_dir");
    check_output_outside_inputs("loop.out_dir", c.out_dir, inputs);
    std::error_code ec;
    if (std::filesystem::exists(c.out_dir, ec) && !std::filesystem::is_directory(c.out_dir, ec))
      throw_usage("loop.out_dir " + c.out_dir + " exists and is not a directory");
    // The default export (OUT/final) too: an earlier version's export there
    // holds no mark, and is refused now rather than after the last step.
    const std::string export_dir = c.export_dir.empty() ? path_join(c.out_dir, "final") : c.export_dir;
    try {
      model::FolderWriter::check_destination(export_dir, model::FolderWriter::Existing::replace);
    } catch (const Error& e) {
      throw_usage(std::string("loop.export_dir: ") + e.what());
    }
    check_export_dir(export_dir, c.out_dir, input_directories(config.at(info->name), info->name, /*listed=*/true),
                     input_file_folders(config.at(info->name), info->name));
    check_export_writable(export_dir);
    batch::OutputGuard().check_output_dir(export_dir, "loop.export_dir");
  } catch (...) {
    early = std::current_exception();
  }
  // This run's exports name it in their mark: another run does not replace them.
  model::FolderWriter::set_export_run(batch::OutputGuard::normalised_path(c.out_dir));

  StageEnv env;
  std::string dev = loop.at("device").get<std::string>();
  if (dev == "cuda" && de.world > 1) dev = "cuda:" + std::to_string(de.local_rank);  // one GPU per local process
  try {
    env.device = model::parse_device(dev);
  } catch (const Error& e) {
    // The setting is loop.device (--device is its flag): a config or --set
    // value was named as a flag never given.
    std::string m = e.what();
    if (m.rfind("--device ", 0) == 0) m = "loop.device " + m.substr(9);
    throw Error(e.code(), m);
  }
  env.dtype = model::parse_dtype(loop.at("dtype").get<std::string>());
  env.threads = threads_for(loop.at("threads").get<int>());
  env.rank = de.rank;
  env.world = de.world;
  env.quiet = c.quiet || de.rank != 0;
  env.seed = c.seed;
  env.gradient_checkpointing = loop.at("gradient_checkpointing").get<bool>();
  if (env.gradient_checkpointing && !info->gradient_checkpointing)
    throw_usage("loop.gradient_checkpointing: " + info->name +
                " has no diffusers UNet or VAE to checkpoint (scr, ras, unet, vae and sam-enhancer do)");
  if (env.threads > 1024) throw_usage("loop.threads must be at most 1024");
  torch::set_num_threads(env.threads);

  const int64_t timeout_s = loop.at("timeout_s").get<int64_t>();
  if (timeout_s <= 0) throw_usage("loop.timeout_s must be positive");
  auto dist = Distributed::init(de, env.device, std::chrono::seconds(timeout_s));
  if (de.rank == 0 && !c.quiet && de.world > 1)
    std::fprintf(stderr, "rass-train: %d processes (%s), rendezvous at %s:%d\n", de.world, de.source.c_str(),
                 de.master_addr.c_str(), de.master_port);
  // Whatever a stage draws from torch's global generator while it is built
  // (an initialisation without a keyed generator) follows the run's seed, so
  // two fresh runs of one config start from the same weights.
  // Rank 0's refused output folder (or a configuration that differs) stops
  // every process now, before the others read their data and weights.
  dist->agree(early);
  dist->check_same("configuration", config.dump());
  torch::manual_seed(c.seed);
  std::unique_ptr<Stage> stage;
  try {
    stage = info->make(config.at(info->name), env);  // reads the data and start weights: may fail in one process
  } catch (...) {
    early = std::current_exception();
  }
  dist->agree(early);  // rethrows this process's error, or says that another one stopped
  const TrainSummary s = run_training(*stage, c, dist.get());

  if (de.rank != 0) return 0;
  if (job.json) {
    nlohmann::ordered_json o;
    o["stage"] = info->name;
    o["steps_done"] = s.steps_done;
    o["start_step"] = s.start_step;
    o["steps"] = c.steps;
    o["final_loss"] = s.losses.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(s.losses.back());
    o["seconds"] = s.seconds;
    o["images_per_second"] = s.images_per_second;
    o["processes"] = de.world;
    o["last_checkpoint"] = s.last_checkpoint;
    o["export_dir"] = s.export_dir;
    if (s.loss_scale > 0) {  // fp16 loss scaling ran
      o["skipped_steps"] = s.skipped_steps;
      o["loss_scale"] = s.loss_scale;
    }
    o["stopped_by"] = s.stop_signal ? nlohmann::ordered_json(signal_name(s.stop_signal)) : nlohmann::ordered_json();
    std::cout << json_text(o) << "\n";
  } else if (!c.quiet && s.losses.empty() && s.steps_done == c.steps) {
    std::fprintf(stderr, "rass-train: %s: already at step %lld of %lld, nothing to run%s%s\n", info->name.c_str(),
                 (long long)s.steps_done, (long long)c.steps, s.export_dir.empty() ? "" : "; model in ",
                 printable_message(s.export_dir).c_str());
  } else if (!c.quiet) {
    std::fprintf(stderr, "rass-train: %s: steps %lld..%lld of %lld in %.1f s (%.1f images/s), loss %.6g%s%s\n",
                 info->name.c_str(), (long long)s.start_step, (long long)s.steps_done, (long long)c.steps, s.seconds,
                 s.images_per_second, s.losses.empty() ? 0.0 : s.losses.back(),
                 s.export_dir.empty() ? "" : ", model in ", printable_message(s.export_dir).c_str());
  }
  if (s.stop_signal && !c.quiet)  // the exit status is then the signal's (run_main)
    std::fprintf(stderr, "rass-train: stopped by %s after step %lld; %s --resume continues from %s\n",
                 signal_name(s.stop_signal), (long long)s.steps_done, info->name.c_str(), printable_message(s.last_checkpoint).c_str());
  return 0;
}

}  // namespace rass::train
