// rass-eval-miou as a library call: pairs of label maps (two directories
// matched by item key, a manifest, or one pair) are decoded, counted into one
// confusion matrix per worker thread and dropped, so memory stays flat
// whatever the number of images; the matrices are merged at the end and the
// metrics of the chosen convention (confusion.hpp) are reported as a table,
// JSON, CSV, an .npy confusion matrix and per-image JSON lines.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "rass/batch/inputs.hpp"
#include "rass/metrics/confusion.hpp"

namespace rass::metrics {

struct MiouJob {
  std::vector<std::string> inputs;     // PRED GT: two directories or two files ("-" = stdin for one of them)
  std::string manifest;                // JSON lines with "pred" and "gt" (optional "key"), or TSV pred<TAB>gt
  std::string pred_suffix, gt_suffix;  // directory mode: file-name ends that are taken and stripped for the key
  bool match_stem = false;             // directory mode: pair by file name alone (trees with different layouts)
  int num_classes = 0;                 // 0: the number of class names
  int64_t ignore_index = 255;
  bool reduce_zero_label = false;
  std::string label_map, pred_label_map;  // files (read_label_map)
  std::string classes;                    // built-in set or file; empty: the class indices
  Convention convention = Convention::mmseg;
  int jobs = 0;  // 0 = all cores
  bool quiet = false;
  bool json = false;      // JSON on stdout instead of the table
  std::string csv;        // per-class table as CSV ("-" = stdout)
  std::string confusion;  // C x C int64 .npy ("-" = stdout)
  std::string per_image;  // JSON lines, one per pair in input order ("-" = stdout)
};

// One pair to evaluate: paths[0] the prediction, paths[1] the ground truth;
// `error` set when the pair is bad before it is read (a missing partner, a
// duplicate key, a bad manifest line).
using MiouPair = batch::Item;

// The pairs a job names, in order (directories: sorted by key), through the
// batch layer's key rule (relative path without extension or --*-suffix; file
// name alone with match_stem). Unreadable directories and empty inputs throw
// Error(bad_input); bad combinations of inputs Error(usage).
std::vector<MiouPair> collect_pairs(const MiouJob& job);

struct MiouResult {
  Confusion confusion;
  ClassCounts counts;
  Metrics metrics;
  std::vector<std::string> names;
  size_t pairs = 0, evaluated = 0, failed = 0;  // failed: bad pairs and runtime failures
  size_t runtime_failures = 0;
  size_t gt_oor_images = 0, pred_oor_images = 0;
  std::string gt_oor_first, pred_oor_first;  // "<file>: value V at (x, y)" of the first such pair in input order
  size_t jpeg_label_files = 0;  // label maps stored as JPEG (lossy: values change at edges)
  std::string jpeg_first;       // the first of them in input order
};

// Evaluates `pairs` with `jobs` threads (errors are printed and counted; the
// rest is evaluated), writing per-image JSON lines to job.per_image if set.
MiouResult evaluate_pairs(const MiouJob& job, const std::vector<MiouPair>& pairs, const LabelLuts& luts,
                          std::vector<std::string> names);

// Reports (miou_report.cpp; for run_eval_miou and the tests). NaN values are
// JSON null with a reason (batch/report.hpp).
nlohmann::ordered_json result_json(const MiouJob& job, const MiouResult& r);
std::string result_table(const MiouJob& job, const MiouResult& r);
std::string result_csv(const MiouResult& r);
// Why a summary value (mIoU, aAcc, ...) is NaN, for the JSON "reasons" (also of per-image lines).
std::string summary_reason(const std::string& key);

// Returns the exit code: 0; 3 when a pair was bad or a label value out of
// range (everything else is still evaluated and reported). Usage errors throw
// Error(usage).
int run_eval_miou(const MiouJob& job);

}  // namespace rass::metrics
