#include "rass/metrics/eval_iqa_tool.hpp"

#include <cstdio>

#include "rass/batch/inputs.hpp"
#include "rass/batch/output_guard.hpp"
#include "rass/batch/report.hpp"
#include "rass/batch/run.hpp"
#include "rass/core/error.hpp"
#include "rass/io/image_io.hpp"
#include "rass/metrics/iqa_metrics.hpp"
#include "rass/metrics/iqa_report.hpp"

namespace rass::metrics {

namespace {

constexpr char kProg[] = "rass-eval-iqa";

Image load(const std::string& path) {
  Image img = read_image(path);
  if (img.depth != 8)
    throw_bad_input(path == "-" ? "<stdin>" : path,
                    "is a 16-bit image; the PSNR/SSIM/NIQE conventions are defined on 8-bit data: convert it first");
  return drop_alpha(std::move(img));  // as PIL's convert('RGB') in pyiqa
}

std::vector<const IqaMetric*> resolve_metrics(const std::vector<std::string>& names) {
  if (names.empty()) throw_usage("--metrics is empty");
  std::vector<const IqaMetric*> out;
  for (const std::string& n : names) {
    const IqaMetric* m = find_iqa_metric(n);
    if (!m) throw_usage("unknown metric '" + n + "' (known: " + iqa_metric_list() + ")");
    for (const IqaMetric* seen : out)
      if (seen == m) throw_usage("metric '" + n + "' is named twice in --metrics");
    out.push_back(m);
  }
  return out;
}

batch::InputSpec input_spec(const IqaJob& job, bool fr) {
  batch::InputSpec spec;
  spec.roles = {{"prediction", {"pred", "lq"}, true, ""}};
  if (fr || !job.manifest.empty()) spec.roles.push_back({"ground truth", {"gt", "hq"}, fr, ""});
  spec.inputs = job.inputs;
  spec.manifest = job.manifest;
  spec.match_stem = job.match_stem;
  if (!fr && job.manifest.empty() && job.inputs.empty()) throw_usage("no input images");
  if (!fr && !job.manifest.empty() && !job.inputs.empty()) throw_usage("give images or --manifest, not both");
  return spec;
}

}  // namespace

int run_eval_iqa(const IqaJob& job) {
  const std::vector<const IqaMetric*> metrics = resolve_metrics(job.metrics);
  bool fr = false, want_niqe = false;
  for (const IqaMetric* m : metrics) fr = fr || m->full_reference, want_niqe = want_niqe || !m->full_reference;
  if (fr && job.manifest.empty() && job.inputs.size() != 2)
    throw_usage("full-reference metrics need PRED and GT (two directories or two files), or --manifest");
  batch::claim_stdout({{"--json", job.json}, {"--csv -", job.csv == "-"}});
  if (job.jobs < 0) throw_usage("--jobs must be >= 0");
  IqaSettings settings{job.crop_border, job.y_channel, nullptr};
  NiqeParams params;
  if (want_niqe) {
    if (job.niqe_params.empty())
      throw_usage("niqe needs the pristine model: --niqe-params FILE.npz (or RASS_NIQE_PARAMS); see the README");
    params = load_niqe_params(job.niqe_params);
    settings.niqe = &params;
  }

  const std::vector<batch::Item> items = batch::collect_items(input_spec(job, fr));
  batch::OutputGuard guard;
  for (const std::string& in : job.inputs) guard.add_input(in);
  guard.add_input(job.manifest);
  guard.add_input(job.niqe_params);
  for (const batch::Item& it : items)
    for (const std::string& p : it.paths) guard.add_input(p);
  guard.check_output_file(job.csv, "--csv");

  std::vector<IqaImageResult> results(items.size());
  batch::Reporter reporter(kProg);
  const batch::Tally tally = batch::run_items(
      items, {job.jobs, job.quiet}, reporter,
      [&](size_t i, int) {
        const batch::Item& it = items[i];
        const Image pred = load(it.paths[0]);
        const Image gt = fr ? load(it.paths[1]) : Image();
        std::vector<IqaValue> values;
        for (const IqaMetric* m : metrics) values.push_back(m->compute(pred, gt, settings));
        results[i].values = std::move(values);
      },
      [&](size_t i, batch::Outcome o, const std::string& msg) {
        if (o != batch::Outcome::ok) results[i].error = msg;
      });

  const IqaSummary s = summarize(metrics, results);
  if (!job.csv.empty()) batch::write_report(job.csv, iqa_csv(s, items, results));
  if (job.json) batch::write_report("-", iqa_json(job, s, items, results, fr).dump(2) + "\n");
  else if (job.csv != "-" && !job.no_table) batch::write_report("-", iqa_table(s, items, results));
  if (!job.quiet) {
    for (size_t m = 0; m < metrics.size(); ++m)
      if (s.nan_count[m])
        std::fprintf(stderr, "%s: %s is NaN for %zu image(s), left out of the mean (see the --json reasons)\n", kProg,
                     metrics[m]->name, s.nan_count[m]);
    if (s.failed) std::fprintf(stderr, "%s: %zu of %zu input(s) failed\n", kProg, s.failed, items.size());
  }
  return tally.exit_code();
}

}  // namespace rass::metrics
