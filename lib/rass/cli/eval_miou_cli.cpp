#include "rass/cli/eval_miou_cli.hpp"

#include "rass/core/error.hpp"
#include "rass/metrics/confusion.hpp"

namespace rass::cli {

EvalMiouCli::EvalMiouCli()
    : ToolCli("eval-miou",
              "Streaming mIoU, aAcc, mAcc, Dice and F-score of label maps against ground truth, with "
              "mmsegmentation's or detectron2's conventions.") {
  CLI::App& a = *app_;
  a.add_option("inputs", inputs_, "PRED GT: two directories (label maps paired by relative path without extension; --match-stem: by file name) or two label maps")
      ->type_name("PATH");
  a.add_option("--manifest", manifest_,
               "pairs from a manifest: JSON lines with \"pred\" and \"gt\" (and \"key\"), or TSV pred<TAB>gt")
      ->type_name("FILE");
  a.add_option("-n,--num-classes", num_classes_,
               "number of classes C, labels 0..C-1 (default: the number of --classes names)")
      ->check(integer_range(1, metrics::kMaxClasses));
  a.add_option("--ignore-index", ignore_index_text_, "ground-truth value that is not evaluated")->default_str("255");
  a.add_flag("--reduce-zero-label", reduce_zero_label_,
             "ground truth 0 -> 255 and v -> v-1 (ADE20K raw annotations), as mmseg; predictions are unchanged");
  a.add_option("--label-map", label_map_,
               "remap ground-truth values (lines OLD NEW, or a JSON object), after --reduce-zero-label as mmseg")
      ->type_name("FILE");
  a.add_option("--pred-label-map", pred_label_map_, "remap predicted values (same format as --label-map)")
      ->type_name("FILE");
  a.add_option("--classes", classes_, "class names: ade20k, cityscapes, voc, or a file with one name per line")
      ->type_name("FILE");
  with_choices(a.add_option("--convention", convention_,
                            "mmseg (nanmean over classes with a non-empty union) or detectron2 (mean over classes "
                            "present in the ground truth)"),
               {"mmseg", "detectron2"})
      ->default_str("mmseg");
  a.add_flag("--match-stem", match_stem_,
             "directory mode: pair by file name alone, not by relative path (trees with different layouts)");
  a.add_option("--pred-suffix", pred_suffix_,
               "directory mode: take prediction files whose name ends so, and strip it for the key")
      ->type_name("SUFFIX");
  a.add_option("--gt-suffix", gt_suffix_,
               "directory mode: take ground-truth files whose name ends so (e.g. _gtFine_labelTrainIds.png)")
      ->type_name("SUFFIX");
  a.add_option("--csv", csv_, "write the per-class table as CSV, full precision (- for stdout)")->type_name("FILE");
  a.add_option("--confusion", confusion_, "write the C x C int64 confusion matrix (GT rows, predicted columns) as .npy")
      ->type_name("FILE");
  a.add_option("--per-image", per_image_, "write one JSON line per pair, in input order (- for stdout)")
      ->type_name("FILE");
  add_jobs_option();
}

metrics::MiouJob EvalMiouCli::job() const {
  metrics::MiouJob j;
  j.inputs = inputs_;
  j.manifest = manifest_;
  j.pred_suffix = pred_suffix_;
  j.match_stem = match_stem_;
  j.gt_suffix = gt_suffix_;
  j.num_classes = num_classes_;
  {
    // Parsed here: CLI11 clamps an out-of-range integer to INT64_MAX silently.
    const std::string& t = ignore_index_text_;
    size_t digits = t.size() > 0 && t[0] == '-' ? 1 : 0;
    bool ok = t.size() > digits && t.size() - digits <= 18;
    for (size_t k = digits; ok && k < t.size(); ++k) ok = t[k] >= '0' && t[k] <= '9';
    if (!ok) throw_usage("--ignore-index '" + t + "': expected an integer with at most 18 digits");
    j.ignore_index = std::stoll(t);
  }
  j.reduce_zero_label = reduce_zero_label_;
  j.label_map = label_map_;
  j.pred_label_map = pred_label_map_;
  j.classes = classes_;
  j.convention = metrics::parse_convention(convention_);
  j.jobs = common.jobs;
  j.quiet = common.quiet;
  j.json = common.json;
  j.csv = csv_;
  j.confusion = confusion_;
  j.per_image = per_image_;
  return j;
}

}  // namespace rass::cli
