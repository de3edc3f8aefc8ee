#include "rass/cli/degrade_cli.hpp"

#include <cerrno>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include <unistd.h>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/degrade/config.hpp"
#include "rass/degrade/frost.hpp"

namespace rass::cli {

using namespace rass::degrade;

namespace {

// The model's per-order settings: flag stem, help, and where the value goes.
struct ModelFlag {
  const char* stem;  // "--blur-sigma" (the second order adds "2")
  const char* help;
  const char* type;  // "LO,HI", "P", "W,W,..."
  void (*set)(OrderConfig&, const std::string& value, const std::string& flag);
};

double parse_prob(const std::string& v, const std::string& flag) {
  auto d = parse_doubles(v, flag);
  if (d.size() != 1) throw_usage(flag + " takes one number");
  return d[0];
}

const std::vector<ModelFlag>& model_flags() {
  static const std::vector<ModelFlag> flags = {
      {"--kernel-prob", "weights of iso,aniso,generalized_iso,generalized_aniso,plateau_iso,plateau_aniso", "W,...",
       [](OrderConfig& o, const std::string& v, const std::string& f) { o.kernel_prob = parse_doubles(v, f); }},
      {"--sinc-prob", "probability of a sinc blur kernel", "P",
       [](OrderConfig& o, const std::string& v, const std::string& f) { o.sinc_prob = parse_prob(v, f); }},
      {"--blur-sigma", "blur sigma range", "LO,HI",
       [](OrderConfig& o, const std::string& v, const std::string& f) { o.blur_sigma = parse_range(v, f); }},
      {"--betag-range", "generalized Gaussian beta range (must contain 1: [LO, 1] or [1, HI], each half the time)", "LO,HI",
       [](OrderConfig& o, const std::string& v, const std::string& f) { o.betag = parse_range(v, f); }},
      {"--betap-range", "plateau beta range (must contain 1: [LO, 1] or [1, HI], each half the time)", "LO,HI",
       [](OrderConfig& o, const std::string& v, const std::string& f) { o.betap = parse_range(v, f); }},
      {"--resize-prob", "weights of up,down,keep", "W,W,W",
       [](OrderConfig& o, const std::string& v, const std::string& f) { o.resize_prob = parse_doubles(v, f); }},
      {"--resize-range", "random resize factor range", "LO,HI",
       [](OrderConfig& o, const std::string& v, const std::string& f) { o.resize_range = parse_range(v, f); }},
      {"--gaussian-noise-prob", "probability of Gaussian noise (else Poisson)", "P",
       [](OrderConfig& o, const std::string& v, const std::string& f) { o.gaussian_noise_prob = parse_prob(v, f); }},
      {"--noise-range", "Gaussian noise sigma range (0-255 units)", "LO,HI",
       [](OrderConfig& o, const std::string& v, const std::string& f) { o.noise_range = parse_range(v, f); }},
      {"--poisson-scale-range", "Poisson noise scale range", "LO,HI",
       [](OrderConfig& o, const std::string& v, const std::string& f) { o.poisson_scale = parse_range(v, f); }},
      {"--gray-noise-prob", "probability that noise is gray (same on all channels)", "P",
       [](OrderConfig& o, const std::string& v, const std::string& f) { o.gray_noise_prob = parse_prob(v, f); }},
      {"--jpeg-range", "JPEG quality range", "LO,HI",
       [](OrderConfig& o, const std::string& v, const std::string& f) { o.jpeg_range = parse_range(v, f); }},
  };
  return flags;
}

}  // namespace

DegradeCli::DegradeCli()
    : ToolCli("degrade", "Turn high-quality images into low-quality ones with the Real-ESRGAN second-order "
                         "degradation model (RASS, OSEDiff, GleSAM presets), reproducibly.") {
  CLI::App& a = *app_;
  a.add_option("inputs", inputs_, "HQ images, directories (searched recursively) or - for stdin")->type_name("INPUT");
  a.add_option("-o,--output", output_, "LQ image file or - (one input), or output directory (batch)")
      ->type_name("PATH");
  a.add_option("--manifest", manifest_, "read HQ paths from a manifest (JSON lines with \"hq\", or one path per line)")
      ->type_name("FILE");
  with_choices(a.add_option("-p,--preset", preset_,
                            "realesrgan-x4, rass, lqseg-1, lqseg-2, lqseg-3, or a single degradation (RobustSeg-style "
                            "benchmarks; ImageNet-C definitions but low-light and rain): " +
                                degrade::single_degradation_list()),
               preset_names())
      ->default_str("rass");
  a.add_option("--severity", severity_, "severity 1-5 of a single-degradation preset (" + degrade::single_degradation_list() + ")")->default_str("3");
  a.add_option("-s,--seed", seed_, "global seed, 0..2^64-1; with the item key it determines every random draw")
      ->type_name("UINT")
      ->default_str("0");
  a.add_option("--key", key_, "item key of a single input (default: its file stem)");
  a.add_option("--variants", variants_, "LQ images per HQ image (batch, 1 to 10000), keyed <key>#v<k>")->default_str("1");
  with_choices(a.add_option("-f,--format", format_, "output format png, jpeg or pnm (default: from -o, else png)"),
               {"png", "jpeg", "pnm"});
  a.add_option("--png-level", png_level_, "deflate level of PNG outputs, 0-9: 0 stored, 1 fastest, 9 smallest")->default_str("1")->check(integer_range(0, 9));
  a.add_option("--out-quality", out_quality_, "quality of JPEG outputs, 1-100")->default_str("95")->check(integer_range(1, 100));
  a.add_option("--record", record_, "write the JSON record of a single image here")->type_name("FILE");
  a.add_option("--replay", replay_, "regenerate the LQ image from a JSON record (single image)")->type_name("FILE");
  a.add_option("--manifest-out", manifest_out_,
               "batch manifest to write (default OUTDIR/manifest.jsonl); sharded runs insert .I-of-N before the extension")
      ->type_name("FILE");
  a.add_flag("--resume", resume_, "skip outputs whose image and record exist and match this run (settings, the HQ file's hash)");
  add_jobs_option();
  add_shard_option();
  a.add_option("--stages", stages_,
               "stages to keep (blur1,noise2,...) or to drop (-noise,-jpeg2); groups: blur resize noise jpeg sinc second");
  a.add_option("--scale", scale_, "downsampling factor of the LQ image, >= 1 (overrides the preset; not for single degradations)");
  with_choices(a.add_option("--lq-size", lq_size_, "native (HQ size / scale) or hq (resized back to the HQ size)"),
               {"native", "hq"});
  with_choices(a.add_option("--upsample-mode", upsample_mode_, "resize mode used by --lq-size hq (default bicubic)"),
               {"area", "bilinear", "bicubic", "nearest"});
  a.add_flag("--usm", usm_, "USM-sharpen the HQ image before degrading (as Real-ESRGAN training does)");
  a.add_option("--kernel-sizes", kernel_sizes_, "blur kernel sizes to draw from (odd, <= 21)")->type_name("K,...");
  a.add_option("--resize-modes", resize_modes_, "resize modes to draw from (area,bilinear,bicubic,nearest)")
      ->type_name("M,...");
  for (const ModelFlag& f : model_flags())
    for (int order = 1; order <= 2; ++order) {
      const std::string flag = std::string(f.stem) + (order == 2 ? "2" : "");
      a.add_option(flag, model_[flag], std::string(order == 1 ? "first" : "second") + " order: " + f.help)
          ->type_name(f.type);
    }
  a.add_option("--blur-prob", model_["--blur-prob"], "first order: probability of blur (reference: 1)")->type_name("P");
  a.add_option("--second-blur-prob", model_["--second-blur-prob"], "second order: probability of blur (reference: 0.8)")
      ->type_name("P");
  a.add_option("--final-sinc-prob", model_["--final-sinc-prob"], "probability of the final sinc filter")->type_name("P");
  a.add_option("--frost-dir", frost_dir_,
               "-p frost: the folder of ImageNet-C's frost pictures (frost1.png ... frost5.jpg, the frost/ folder "
               "of the imagecorruptions package)")
      ->envname("RASS_FROST_DIR")
      ->type_name("DIR");
  a.add_flag("--drop-alpha", drop_alpha_, "accept RGBA/gray+alpha inputs by dropping the alpha channel");
  a.add_flag("--accept-16bit", accept_16bit_, "accept 16-bit inputs (read at full precision; LQ is 8-bit)");
  a.add_flag("--print-config", print_config_, "print the effective settings as JSON and exit");
}

degrade::DegradeJob DegradeCli::job() const {
  DegradeJob job;
  PipelineConfig& cfg = job.cfg;
  cfg = make_preset(preset_, severity_);
  // --replay takes every draw and setting from the record: a flag that would
  // change them is refused, not silently ignored.
  if (!replay_.empty()) {
    const std::vector<std::string> allowed = {"inputs", "-o", "--record", "--replay", "-f", "--png-level",
                                              "--out-quality", "--drop-alpha", "--accept-16bit", "--json",
                                              "--quiet", "--max-pixels", "--jobs", "--frost-dir"};
    for (const CLI::Option* opt : app_->get_options()) {
      if (opt->count() == 0 || opt->get_name().empty()) continue;
      bool ok = false;
      for (const std::string& name : allowed) ok = ok || opt->check_name(name);
      if (!ok)
        throw_usage("--replay takes the seed, key, preset and every setting from the record; " + opt->get_name() +
                    " would be ignored: drop it, or degrade without --replay");
    }
  }
  // Flags a preset has no use for are refused, not silently ignored.
  const bool named = !cfg.named.name.empty();
  if (given_on_command_line("--frost-dir") && replay_.empty() && cfg.named.name != "frost")
    throw_usage("--frost-dir holds the pictures of -p frost, not of " + preset_);
  cfg.named.frost_dir = frost_dir_;
  if (cfg.named.name == "frost" && replay_.empty()) {
    // Up front, not once per image: the five pictures the reference draws from.
    if (frost_dir_.empty())
      throw_usage("-p frost needs ImageNet-C's frost pictures: --frost-dir DIR (or RASS_FROST_DIR), the frost/ "
                  "folder of the imagecorruptions package");
    for (int i = 0; i < kFrostPicturesDrawn; ++i) {
      const std::string f = path_join(frost_dir_, frost_file_name(i));
      if (::access(f.c_str(), R_OK) != 0)
        throw_usage((given_on_command_line("--frost-dir") ? "--frost-dir " : "RASS_FROST_DIR=") + frost_dir_ + ": " +
                    frost_file_name(i) + " is missing or unreadable (" + std::strerror(errno) + ")");
    }
    // Decoded now (they are cached): a bad picture stops the run before any
    // image is written, not at the items that happen to draw it.
    for (int i = 0; i < kFrostPicturesDrawn; ++i) frost_picture(path_join(frost_dir_, frost_file_name(i)));
  }
  if (!named && app_->count("--severity") > 0)
    throw_usage("--severity applies only to the single-degradation presets " + degrade::single_degradation_list() +
                " (not " + preset_ + ")");
  if (app_->count("--scale") > 0 && scale_ < 1)
    throw_usage("--scale must be a positive integer (got " + std::to_string(scale_) + ")");
  if (named) {
    std::vector<std::string> pipeline_flags = {"--scale", "--lq-size", "--upsample-mode", "--usm", "--kernel-sizes",
                                               "--resize-modes", "--stages"};
    for (const auto& kv : model_) pipeline_flags.push_back(kv.first);
    for (const std::string& f : pipeline_flags)
      if (app_->count(f) > 0)
        throw_usage(f + " does not apply to the single-degradation preset " + preset_ +
                    " (it sets the Real-ESRGAN pipeline of presets rass, realesrgan-x4, lqseg-*)");
  }
  for (const ModelFlag& f : model_flags())
    for (int order = 1; order <= 2; ++order) {
      const std::string flag = std::string(f.stem) + (order == 2 ? "2" : "");
      // Given (even as ""): parsed, so an empty value is refused, not ignored.
      if (app_->count(flag) > 0) f.set(order == 1 ? cfg.first : cfg.second, model_.at(flag), flag);
    }
  auto prob = [&](const char* flag, double& dst) {
    if (app_->count(flag) > 0) dst = parse_prob(model_.at(flag), flag);
  };
  prob("--blur-prob", cfg.first.blur_prob);
  prob("--second-blur-prob", cfg.second.blur_prob);
  prob("--final-sinc-prob", cfg.final_sinc_prob);
  if (app_->count("--kernel-sizes") > 0) {
    cfg.kernel_sizes.clear();
    for (double d : parse_doubles(kernel_sizes_, "--kernel-sizes")) {
      // Whole numbers only (1.5 was cut to 1), checked before the int cast
      // (1e20 became -2147483648).
      if (!(d >= 1 && d <= 1000) || d != double(int(d)))
        throw_usage("--kernel-sizes: " + kernel_sizes_ + ": expected odd whole numbers 1..21");
      cfg.kernel_sizes.push_back(int(d));
    }
  }
  if (app_->count("--resize-modes") > 0) {
    cfg.resize_modes.clear();
    std::stringstream ss(resize_modes_);
    std::string m;
    while (std::getline(ss, m, ',')) cfg.resize_modes.push_back(parse_resize_mode(m));
  }
  if (app_->count("--scale") > 0) {
    cfg.scale = scale_;
    cfg.scale_choices.clear();  // a scale given is the scale (glesam draws one per image)
  }
  if (app_->count("--lq-size") > 0) {
    if (lq_size_ != "native" && lq_size_ != "hq") throw_usage("--lq-size must be native or hq");
    cfg.lq_at_hq_size = lq_size_ == "hq";
  }
  if (app_->count("--upsample-mode") > 0) cfg.upsample_mode = parse_resize_mode(upsample_mode_);
  cfg.usm = usm_;
  if (!cfg.usm) cfg.disabled.insert("usm");
  if (!stages_.empty()) apply_stages(cfg, stages_);
  validate(cfg);

  job.seed = parse_seed(seed_);
  job.inputs = inputs_;
  job.manifest_in = manifest_;
  job.output = output_;
  job.key = key_;
  job.variants = variants_;
  job.format = format_.empty() ? ImageFormat::unknown : parse_format(format_);
  job.encode.png_compression = png_level_;
  job.encode.jpeg_quality = out_quality_;
  job.png_level_given = app_->count("--png-level") > 0;
  job.out_quality_given = app_->count("--out-quality") > 0;
  job.upsample_mode_given = app_->count("--upsample-mode") > 0;
  job.record_path = record_;
  job.replay_path = replay_;
  job.manifest_out = manifest_out_;
  job.resume = resume_;
  job.jobs = common.jobs;
  job.shard = common.shard.empty() ? shard_from_env() : parse_shard(common.shard);
  job.quiet = common.quiet;
  job.json = common.json;
  job.drop_alpha = drop_alpha_;
  job.accept_16bit = accept_16bit_;
  job.print_config = print_config_;
  return job;
}

}  // namespace rass::cli
