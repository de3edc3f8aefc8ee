#include "rass/cli/train_cli.hpp"

#include "rass/core/error.hpp"

namespace rass::cli {

const std::vector<std::pair<std::string, std::string>>& train_stage_names() {
  static const std::vector<std::pair<std::string, std::string>> names = {
      {"scr", "stage 1: SCR LoRA for one-step restoration with the semantic-constrained loss"},
      {"ras", "RASS stage 2: Seg LoRA + conv_in + projection + Mask2Former head on LQ crops (Mask2Former criterion)"},
      {"sam-enhancer",
       "GleSAM stage 1: the latent enhancer (SD UNet, channels replicated, LoRA) from SAM's LQ to HQ embeddings (MSE)"},
      {"sam-decoder",
       "GleSAM stage 2: SAM's mask decoder (not its IoU head) on LQ images, enhanced embeddings with a GleSAM folder "
       "(focal + Dice)"},
      {"sinsr", "SinSR / SAMSR: a one-step x4 network distilled from a ResShift teacher (noise gaussian or sam)"},
      {"resshift", "ResShift: the x4 network on its whole chain (random step, x_0 loss; sinsr's teacher), from a rass-samsr "
                   "folder or from ResShift's random initialisation"},
      {"selftest",
       "a small linear model on generated data: checks a launch (processes, checkpoints, --resume) without data or "
       "weights"},
      {"vae", "pretraining: the VAE (AutoencoderKL) of a diffusers folder on clean images (reconstruction + KL, optional LPIPS)"},
      {"unet", "pretraining: the UNet of a diffusers folder as an epsilon DDPM on clean images with captions or tags"},
  };
  return names;
}

TrainCli::TrainCli()
    : ToolCli("train", "Train the RASS stages (SCR LoRA, RAS segmentation) with checkpoints, --resume and "
                       "data-parallel processes (torchrun / srun variables); plot training logs.") {
  CLI::App& app = *app_;
  app.require_subcommand(1);
  // plot first: the flag tests parse the first subcommand with one operand.
  plot_ = app.add_subcommand("plot", "draw the loss curves of training logs (log.jsonl) as PNG, SVG or PDF");
  plot_->add_option("logs", j_.plot.logs, "log.jsonl files (curves overlaid, labelled by file)")->required();
  plot_->add_option("-o,--output", j_.plot.output, "output .png, .svg or .pdf (- for PNG on stdout)")->type_name("FILE");
  plot_->add_option("--terms", terms_, "comma-separated keys to draw (default: every numeric key but step; a boolean key such as skipped, as 0/1, only when named)")
      ->type_name("A,B");
  plot_->add_option("--width", j_.plot.width, "image width in pixels")->default_str("1200")->check(positive_integer(16384));
  plot_->add_option("--height", j_.plot.height, "image height in pixels (0: 300 a panel, at most 16384)")
      ->default_str("0")
      ->check(non_negative_integer(16384));
  plot_->add_option("--smooth", j_.plot.smooth, "moving-average window in logged points (0: none)")
      ->default_str("0")
      ->check(non_negative_integer());
  plot_->add_flag("--log-y", j_.plot.log_y, "logarithmic y axes");
  plot_->fallthrough();

  for (const auto& [name, summary] : train_stage_names()) {
    StageFlags f;
    CLI::App* s = f.app = app.add_subcommand(name, summary);
    s->add_option("--config", j_.config_file, "configuration file (JSON): {\"loop\": {...}, \"" + name + "\": {...}}")
        ->type_name("FILE");
    s->add_option("--set", j_.sets, "set one setting, KEY=VALUE with a dotted key and a JSON value (repeatable)")
        ->type_name("KEY=VALUE");
    s->add_flag("--print-config", j_.print_config, "print the merged configuration (every default) and exit");
    f.opts["loop.out_dir"] = s->add_option("-o,--out-dir", out_dir_, "output directory (log.jsonl, checkpoints/, final/)")
                                 ->type_name("DIR");
    f.opts["loop.steps"] = s->add_option("--steps", steps_, "training steps")->check(positive_integer(int64_t(1) << 40));
    f.opts["loop.batch"] = s->add_option("--batch", batch_, "global batch: samples per step over all processes")
                               ->check(positive_integer(1 << 20));
    f.opts["loop.lr"] = s->add_option("--lr", lr_, "learning rate")->check(positive_number());
    f.opts["loop.resume"] = s->add_flag("--resume", resume_, "continue from the newest checkpoint in the output directory");
    f.opts["loop.resume_from"] = s->add_option("--resume-from", resume_from_, "continue from this checkpoint")
                                     ->type_name("FILE");
    f.opts["loop.stop_after"] = s->add_option("--stop-after", stop_after_,
                                              "stop (with a checkpoint) after N steps of this run; --resume continues")
                                    ->check(positive_integer(int64_t(1) << 40));
    f.opts["loop.seed"] = s->add_option("--seed", seed_, "seed of every random draw (data order, crops, noise)");
    f.opts["loop.device"] = s->add_option("--device", device_, "cpu, cuda or cuda:N (cuda: the process's LOCAL_RANK)");
    f.opts["loop.dtype"] = with_choices(s->add_option("--dtype", dtype_, "compute dtype of the frozen parts"),
                                        {"fp32", "fp16", "bf16"});
    f.opts["loop.threads"] = s->add_option("--threads", threads_, "intra-op threads per process (0: cores / local processes)")
                                 ->check(non_negative_integer(kMaxThreads));
    f.opts["loop.checkpoint_every"] =
        s->add_option("--checkpoint-every", checkpoint_every_, "checkpoint every N steps (0: only at the end)")
            ->check(non_negative_integer(int64_t(1) << 40));
    f.opts["loop.log_every"] = s->add_option("--log-every", log_every_, "log every N steps (0: only the last)")
                                   ->check(non_negative_integer(int64_t(1) << 40));
    s->fallthrough();
    stages_.push_back(f);
  }
}

train::TrainJob TrainCli::job() const {
  train::TrainJob j = j_;
  j.json = common.json;
  j.quiet = common.quiet;
  if (plot_->parsed()) {
    j.command = "plot";
    j.plot.quiet = common.quiet;
    if (j.plot.output.empty()) throw_usage("plot: -o/--output is required (e.g. -o curves.png)");
    if (plot_->count("--terms") > 0 && terms_.empty()) throw_usage("--terms is empty: name the keys to draw, or leave it out for all");
    size_t p = 0;
    while (!terms_.empty() && p <= terms_.size()) {
      const size_t c = terms_.find(',', p);
      const std::string t = terms_.substr(p, c == std::string::npos ? std::string::npos : c - p);
      if (t.empty()) throw_usage("--terms " + terms_ + ": empty name");
      j.plot.terms.push_back(t);
      if (c == std::string::npos) break;
      p = c + 1;
    }
    return j;
  }
  for (const StageFlags& f : stages_) {
    if (!f.app->parsed()) continue;
    j.command = f.app->get_name();
    nlohmann::ordered_json loop = nlohmann::ordered_json::object();
    auto given = [&](const char* key) { return f.opts.at(key)->count() > 0; };
    if (given("loop.out_dir")) loop["out_dir"] = out_dir_;
    if (given("loop.steps")) loop["steps"] = steps_;
    if (given("loop.batch")) loop["batch"] = batch_;
    if (given("loop.lr")) loop["lr"] = lr_;
    if (given("loop.resume")) loop["resume"] = resume_;
    if (given("loop.resume_from")) loop["resume_from"] = resume_from_;
    if (given("loop.stop_after")) loop["stop_after"] = stop_after_;
    if (given("loop.seed")) loop["seed"] = parse_seed(seed_);
    if (given("loop.device")) loop["device"] = device_;
    if (given("loop.dtype")) loop["dtype"] = dtype_;
    if (given("loop.threads")) loop["threads"] = threads_;
    if (given("loop.checkpoint_every")) loop["checkpoint_every"] = checkpoint_every_;
    if (given("loop.log_every")) loop["log_every"] = log_every_;
    if (common.quiet) loop["quiet"] = true;
    if (given("loop.resume") && given("loop.resume_from")) throw_usage("--resume and --resume-from exclude each other");
    if (!loop.empty()) j.flags["loop"] = loop;
  }
  return j;
}

}  // namespace rass::cli
