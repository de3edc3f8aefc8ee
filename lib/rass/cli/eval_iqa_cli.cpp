#include "rass/cli/eval_iqa_cli.hpp"

#include <cerrno>
#include <cstdlib>
#include <sstream>

#include "rass/core/error.hpp"

namespace rass::cli {

EvalIqaCli::EvalIqaCli()
    : ToolCli("eval-iqa", "Image quality metrics with the conventions papers use: PSNR and SSIM (pyiqa and BasicSR), "
                          "NIQE (MATLAB/BasicSR); LPIPS, DISTS, MUSIQ, MANIQA, CLIPIQA with user-supplied weights.") {
  CLI::App& a = *app_;
  a.add_option("inputs", inputs_, "PRED GT (directories matched by item key: relative path without extension; or two files); for no-reference metrics alone, images or directories (two directories are still PRED GT)")
      ->type_name("INPUT");
  a.add_option("-m,--metrics", metrics_,
               "comma-separated: psnr, psnry, ssim, ssimc (pyiqa), psnr@basicsr, ssim@basicsr, niqe; with the network "
               "layer also lpips, lpips-vgg, dists, musiq, maniqa, clipiqa (--weights)")
      ->default_str("psnr,ssim");
  a.add_option("--manifest", manifest_, "pairs from a manifest: JSON lines with pred/gt (or lq/hq, as rass-degrade writes) or TSV")
      ->type_name("FILE");
  a.add_flag("--match-stem", match_stem_, "pair directories by file name alone (trees with different layouts)");
  a.add_option("--crop-border", crop_border_, "pixels removed on each side before measuring")->default_str("0");
  a.add_flag("--y-channel", y_channel_, "BasicSR metrics on the limited-range Y channel (BT.601), as SR papers report");
  a.add_option("--niqe-params", niqe_params_, "NIQE pristine model (.npz with mu_pris_param, cov_pris_param, gaussian_window)")
      ->envname("RASS_NIQE_PARAMS")
      ->type_name("FILE");
  a.add_option("--weights", weights_,
               "folder of the deep metrics' weight files (lpips_alex.safetensors, ...; written by scripts/convert_iqa_*.py)")
      ->envname("RASS_IQA_WEIGHTS")
      ->type_name("DIR");
  add_device_option(device_, "deep metrics: ");
  add_threads_option(threads_, "deep metrics: ");
  a.add_option("--batch", batch_, "deep metrics: images per network call (same-size images among N consecutive items)")
      ->default_str("1")
      ->check(positive_integer(4096));
  a.add_option("--seed", seed_, "deep metrics: seed of keyed random crops (MANIQA), drawn per (seed, item key)")
      ->default_str("0");
  a.add_option("--csv", csv_, "write per-image values and the mean as CSV (- for stdout)")->type_name("FILE");
  a.add_flag("--no-table", no_table_, "do not print the table on stdout");
  add_jobs_option();
}

metrics::IqaJob EvalIqaCli::job() const {
  metrics::IqaJob j;
  std::stringstream ss(metrics_);
  std::string m;
  while (std::getline(ss, m, ','))
    if (!m.empty()) j.metrics.push_back(m);
  j.inputs = inputs_;
  j.manifest = manifest_;
  j.match_stem = match_stem_;
  if (crop_border_ < 0) throw_usage("--crop-border must be >= 0");
  j.crop_border = crop_border_;
  j.y_channel = y_channel_;
  j.niqe_params = niqe_params_;
  j.weights_dir = weights_;
  j.device = device_;
  j.threads = threads_;
  j.batch = batch_;
  j.seed = parse_seed(seed_);
  for (const char* f : {"--weights", "--device", "--threads", "--batch", "--seed"})
    if (given_on_command_line(f)) j.deep_flags_given.push_back(f);
  j.niqe_params_given = given_on_command_line("--niqe-params");
  j.jobs = common.jobs;
  j.quiet = common.quiet;
  j.json = common.json;
  j.csv = csv_;
  j.no_table = no_table_;
  return j;
}

}  // namespace rass::cli
