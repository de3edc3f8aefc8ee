// Confusion counts of label maps and the mIoU family of metrics in the two
// conventions papers use (REFERENCE.md 5), both derived from one int64
// confusion matrix:
//
// - mmseg (mmsegmentation's IoUMetric): per class, I = pixels with
//   pred == gt == c, P = pixels predicted c, L = pixels labelled c, counted on
//   the pixels whose GT is not the ignore index; values outside [0, C-1] fall
//   out of the histogram they are in (a GT value out of range still counts in
//   P for its prediction, a prediction out of range still counts in L).
//   U = P + L - I; IoU = I/U, Acc = Recall = I/L, Dice = 2I/(P+L),
//   Precision = I/P, F-score = 2 Precision Recall / (Precision + Recall), NaN
//   where a denominator is 0 (so F-score is NaN for a class with I = 0, as in
//   mmseg); aAcc = sum I / sum L; the means are nanmean over classes.
// - detectron2 (SemSegEvaluator): pixels with an out-of-range GT or prediction
//   are dropped (detectron2 itself assumes there are none); per class
//   tp, pos_gt, pos_pred; IoU and ACC only for classes present in the GT
//   (pos_gt > 0), mIoU and mACC the means over those, fwIoU weighted by pos_gt,
//   pACC = sum tp / sum pos_gt.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "rass/core/image.hpp"
#include "rass/io/npy.hpp"

namespace rass::metrics {

enum class Convention { mmseg, detectron2 };
// "mmseg" or "detectron2"; throws Error(usage) otherwise.
Convention parse_convention(const std::string& name);
const char* convention_name(Convention c);

// Every worker holds two (C+2) x (C+1) matrices (12 bytes a cell), so C is bounded.
constexpr int kMaxClasses = 4096;

// How raw label values (0..65535: 8- or 16-bit label maps) are read.
struct LabelOptions {
  int num_classes = 0;                // C: classes 0..C-1
  int64_t ignore_index = 255;         // GT pixels with this value (after the maps below) are not evaluated
  bool reduce_zero_label = false;     // GT only, as mmseg: 0 -> 255, 255 stays 255, v -> v-1
  std::map<int, int> label_map;       // GT only, after reduce_zero_label, all at once (mmseg's order)
  std::map<int, int> pred_label_map;  // predictions (not in mmseg: for outputs saved in another id space)
};

// A label-map file: a JSON object {"OLD": NEW, ...}, or lines "OLD NEW"
// (separated by spaces, tabs, ',' or ':'; '#' starts a comment). Values are
// 0..65535. Throws Error(bad_input) naming the file (and line).
std::map<int, int> read_label_map(const std::string& path);

// Raw value -> matrix index. GT: 0..C-1 a class, C out of range (neither a
// class nor ignored), C+1 ignored. Prediction: 0..C-1 a class, C out of range.
struct LabelLuts {
  LabelOptions options;
  std::vector<uint16_t> gt, pred;  // 65536 entries each
  int num_classes() const { return options.num_classes; }
  // The GT value after reduce_zero_label and the label map (for messages).
  int mapped_gt(int raw) const;
  int mapped_pred(int raw) const;
};
// Throws Error(usage) when num_classes is not 1..kMaxClasses.
LabelLuts make_luts(const LabelOptions& options);

// Pixel counts of (GT, prediction) pairs. Rows: GT classes 0..C-1, row C (GT
// out of range), row C+1 (ignored). Columns: predicted classes 0..C-1, column
// C (prediction out of range).
class Confusion {
 public:
  Confusion() = default;
  explicit Confusion(int num_classes);
  int num_classes() const { return c_; }
  int rows() const { return c_ + 2; }
  int cols() const { return c_ + 1; }
  int64_t at(int gt, int pred) const { return cells_[size_t(gt) * (c_ + 1) + pred]; }
  int64_t& at(int gt, int pred) { return cells_[size_t(gt) * (c_ + 1) + pred]; }
  void add(const Confusion& other);
  int64_t ignored() const;            // GT pixels equal to the ignore index
  int64_t gt_out_of_range() const;    // GT pixels neither a class nor ignored
  int64_t pred_out_of_range() const;  // not-ignored pixels predicted outside [0, C-1]
  int64_t total() const;              // every pixel counted
  // The C x C int64 matrix, GT rows and predicted columns (out-of-range and
  // ignored pixels are not in it), for numpy.load.
  NpyArray to_npy() const;

 private:
  int c_ = 0;
  std::vector<int64_t> cells_;
};

// The per-class sums both conventions are computed from.
struct ClassCounts {
  std::vector<int64_t> intersect;    // GT == prediction == c
  std::vector<int64_t> gt;           // GT == c, any prediction (mmseg's area_label)
  std::vector<int64_t> pred;         // prediction == c, GT not ignored (mmseg's area_pred_label)
  std::vector<int64_t> gt_pred_oor;  // GT == c, prediction out of range
  std::vector<int64_t> pred_gt_oor;  // prediction == c, GT out of range
  int64_t ignored = 0, gt_out_of_range = 0, pred_out_of_range = 0, pixels = 0;
  void reset(int num_classes);
  int num_classes() const { return int(intersect.size()); }
};
ClassCounts class_counts(const Confusion& m);

// Counts image pairs into a per-image scratch matrix (uint32; only the rows an
// image touched are visited when it is flushed), so per-image numbers cost
// nothing extra and the running total is updated once per image.
class PairCounter {
 public:
  explicit PairCounter(const LabelLuts& luts);
  // One-channel 8- or 16-bit label maps of the same size (the caller checks).
  void count(const Image& pred, const Image& gt);
  // Adds what was counted since the last flush into `total` and, when given,
  // sets `image` to those counts alone; then starts over.
  void flush(Confusion& total, ClassCounts* image = nullptr);

 private:
  const LabelLuts& luts_;
  int c_;
  std::vector<uint32_t> cells_;   // (C+2) x (C+1)
  std::vector<uint8_t> touched_;  // rows with counts
};

// The first pixel (row-major) whose GT is out of range, or whose prediction is
// out of range on a pixel that is not ignored; for messages.
struct FirstOutOfRange {
  bool found = false;
  int x = 0, y = 0, raw = 0;
};
FirstOutOfRange first_gt_out_of_range(const Image& gt, const LabelLuts& luts);
FirstOutOfRange first_pred_out_of_range(const Image& pred, const Image& gt, const LabelLuts& luts);

struct ClassMetrics {
  // Counts as the convention defines them (detectron2: tp, pos_gt, pos_pred).
  int64_t intersect = 0, union_ = 0, pred = 0, gt = 0;
  // Fractions (not x100); NaN where undefined. detectron2 has only IoU and Acc;
  // the others are NaN there.
  double iou, acc, dice, fscore, precision, recall;
};

struct Metrics {
  Convention convention = Convention::mmseg;
  std::vector<ClassMetrics> classes;
  // Fractions, in report order: mmseg aAcc mIoU mAcc mDice mFscore mPrecision
  // mRecall; detectron2 mIoU fwIoU mACC pACC.
  std::vector<std::pair<std::string, double>> summary;
  double get(const std::string& key) const;  // NaN when absent
};
Metrics compute_metrics(const ClassCounts& counts, Convention convention);

// mmseg's report rounding: np.round(x * 100, 2) (round half to even on the
// scaled binary value). NaN stays NaN.
double round_percent(double fraction);

}  // namespace rass::metrics
