#include "rass/metrics/eval_miou_tool.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "rass/batch/output_guard.hpp"
#include "rass/batch/report.hpp"
#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/io/npy.hpp"
#include "rass/metrics/class_names.hpp"

using json = nlohmann::ordered_json;

namespace rass::metrics {

namespace {
constexpr char kProg[] = "rass-eval-miou";
}  // namespace

std::vector<MiouPair> collect_pairs(const MiouJob& job) {
  // The suffixes with two files: one pair as it is, and the option did
  // nothing (--match-stem: collect_items).
  std::error_code ec;
  const bool any_dir = std::any_of(job.inputs.begin(), job.inputs.end(),
                                   [&](const std::string& p) { return std::filesystem::is_directory(p, ec); });
  if (job.manifest.empty() && !job.inputs.empty() && !any_dir)
    for (const auto& [given, flag] : {std::pair<bool, const char*>{!job.pred_suffix.empty(), "--pred-suffix"},
                                      {!job.gt_suffix.empty(), "--gt-suffix"}})
      if (given) throw_usage(std::string(flag) + " pairs the files of two directories; two files are one pair as they are");
  batch::InputSpec spec;
  spec.roles = {{"prediction", {"pred"}, true, job.pred_suffix}, {"ground truth", {"gt"}, true, job.gt_suffix}};
  spec.inputs = job.inputs;
  spec.manifest = job.manifest;
  spec.match_stem = job.match_stem;
  spec.keep = [](const std::string& p) {
    const std::string ext = path_extension_lower(p);
    return ext == ".png" || ext == ".pgm" || ext == ".pnm";
  };
  return batch::collect_items(spec);
}

int run_eval_miou(const MiouJob& job) {
  batch::claim_stdout({{"--json", job.json},
                       {"--csv -", job.csv == "-"},
                       {"--confusion -", job.confusion == "-"},
                       {"--per-image -", job.per_image == "-"}});
  batch::claim_stdin(job.inputs, {{"--manifest -", job.manifest == "-"},
                                   {"--label-map -", job.label_map == "-"},
                                   {"--pred-label-map -", job.pred_label_map == "-"},
                                   {"--classes -", job.classes == "-"}});
  const bool stdout_used = job.json || job.csv == "-" || job.confusion == "-" || job.per_image == "-";
  if (job.jobs < 0) throw_usage("--jobs must be >= 0");

  std::vector<std::string> names;
  LabelOptions opt;
  opt.num_classes = job.num_classes;
  if (!job.classes.empty()) {
    names = load_class_names(job.classes);
    if (opt.num_classes == 0) opt.num_classes = int(names.size());
    if (int(names.size()) != opt.num_classes)
      throw_usage("--classes " + job.classes + " has " + std::to_string(names.size()) + " names but --num-classes is " +
                  std::to_string(opt.num_classes));
  } else {
    if (opt.num_classes == 0) throw_usage("give --num-classes N or --classes (ade20k, cityscapes, voc or a file)");
    if (opt.num_classes > 0 && opt.num_classes <= kMaxClasses)
      for (int i = 0; i < opt.num_classes; ++i) names.push_back(std::to_string(i));
  }
  opt.ignore_index = job.ignore_index;
  opt.reduce_zero_label = job.reduce_zero_label;
  if (!job.label_map.empty()) opt.label_map = read_label_map(job.label_map);
  if (!job.pred_label_map.empty()) opt.pred_label_map = read_label_map(job.pred_label_map);
  const LabelLuts luts = make_luts(opt);

  const std::vector<MiouPair> pairs = collect_pairs(job);
  batch::OutputGuard guard;  // no report may replace a label map, a map file or a class list
  for (const std::string& in : job.inputs) guard.add_input(in);
  for (const std::string& in : {job.manifest, job.label_map, job.pred_label_map, job.classes}) guard.add_input(in);
  for (const MiouPair& p : pairs)
    for (const std::string& path : p.paths) guard.add_input(path);
  guard.check_output_file(job.csv, "--csv");
  guard.check_output_file(job.confusion, "--confusion");
  guard.check_output_file(job.per_image, "--per-image");
  batch::OutputGuard::check_distinct({{"--csv", job.csv}, {"--confusion", job.confusion}, {"--per-image", job.per_image}});
  const MiouResult r = evaluate_pairs(job, pairs, luts, names);
  const int c = opt.num_classes;

  if (r.counts.gt_out_of_range > 0)
    std::fprintf(stderr,
                 "%s: warning: %lld ground-truth pixel(s) in %zu image(s) are outside [0, %d] and not the ignore index "
                 "%lld; first: %s. mmseg leaves them out of the GT histogram (their predictions still count), "
                 "detectron2 mode drops them. Is --num-classes right, or is --reduce-zero-label missing?\n",
                 kProg, (long long)r.counts.gt_out_of_range, r.gt_oor_images, c - 1, (long long)job.ignore_index,
                 printable_message(r.gt_oor_first).c_str());
  if (r.counts.pred_out_of_range > 0)
    std::fprintf(
        stderr,
        "%s: warning: %lld predicted pixel(s) in %zu image(s) are outside [0, %d]; first: %s. mmseg counts them "
        "as misses of their GT class, detectron2 mode drops them.\n",
        kProg, (long long)r.counts.pred_out_of_range, r.pred_oor_images, c - 1, printable_message(r.pred_oor_first).c_str());

  if (r.jpeg_label_files > 0)
    std::fprintf(stderr,
                 "%s: warning: %zu label map(s) are JPEG files (first: %s): JPEG is lossy and changes class values "
                 "along edges, even at quality 100; store label maps as PNG\n",
                 kProg, r.jpeg_label_files, printable_message(r.jpeg_first).c_str());

  if (!job.confusion.empty()) write_npy(job.confusion, r.confusion.to_npy());
  if (!job.csv.empty()) batch::write_report(job.csv, result_csv(r));
  if (job.json) batch::write_report("-", json_text(result_json(job, r), 2) + "\n");
  else if (!stdout_used) batch::write_report("-", result_table(job, r));
  if (!job.quiet)
    std::fprintf(stderr, "%s: %zu pairs evaluated, %zu failed (%s convention, %d classes)\n", kProg, r.evaluated,
                 r.failed, convention_name(job.convention), c);
  if (r.runtime_failures > 0) return int(ExitCode::runtime);
  if (r.failed > 0 || r.counts.gt_out_of_range > 0 || r.counts.pred_out_of_range > 0) return int(ExitCode::bad_input);
  return 0;
}

}  // namespace rass::metrics
