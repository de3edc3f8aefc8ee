// rass-eval-miou's counting and metrics: small label maps whose numbers are
// worked out by hand in the comments, the two conventions where they differ,
// reduce_zero_label, label maps, out-of-range values, and a brute-force
// oracle written from the reference algorithms (mmseg's masked histograms,
// detectron2's bincount) on random maps.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "rass/core/error.hpp"
#include "rass/core/rng.hpp"
#include "rass/metrics/class_names.hpp"
#include "rass/metrics/confusion.hpp"
#include "label_maps.hpp"

using namespace rass;
using namespace rass::metrics;
using rass::test::label_map;

namespace {


LabelLuts luts_for(int c, bool rzl = false, std::map<int, int> map = {}, int64_t ignore = 255) {
  LabelOptions o;
  o.num_classes = c;
  o.reduce_zero_label = rzl;
  o.label_map = std::move(map);
  o.ignore_index = ignore;
  return make_luts(o);
}

ClassCounts count_one(const LabelLuts& luts, const Image& pred, const Image& gt, Confusion* total = nullptr) {
  PairCounter counter(luts);
  Confusion local(luts.num_classes());
  ClassCounts image;
  counter.count(pred, gt);
  counter.flush(total ? *total : local, &image);
  return image;
}

// Compares a fraction with a value given in percent to 1e-9.
void check_pct(double fraction, double percent) {
  if (std::isnan(percent)) {
    CHECK(std::isnan(fraction));
  } else {
    CHECK(fraction * 100 == doctest::Approx(percent).epsilon(1e-12));
  }
}

constexpr double NaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

TEST_CASE("hand-made 2x4 pair: every metric of both conventions") {
  // gt   = 0 0 1   1      pred = 0 1 1 1
  //        2 2 255 1             2 0 2 1
  // The 255 pixel is ignored (its prediction 2 too): 7 pixels, pairs (gt,pred):
  // (0,0) (0,1) (1,1) (1,1) (2,2) (2,0) (1,1).
  // I = [1, 3, 1]; L (gt) = [2, 3, 2]; P (pred) = [2, 4, 1]; U = P+L-I = [3, 4, 2].
  // IoU = [1/3, 3/4, 1/2] -> mIoU = 19/36 = 52.777...%
  // Acc = [1/2, 1, 1/2] -> mAcc = 2/3; aAcc = 5/7.
  // Dice = 2I/(P+L) = [1/2, 6/7, 2/3] -> mDice = 0.674603...
  // Precision = I/P = [1/2, 3/4, 1]; Recall = Acc; F1 = [1/2, 6/7, 2/3] (= Dice).
  // detectron2: all three classes in GT, nothing out of range: the same IoU and
  // ACC; fwIoU = (1/3*2 + 3/4*3 + 1/2*2) / 7 = 47/84; pACC = 5/7.
  const Image gt = label_map(4, 2, {0, 0, 1, 1, 2, 2, 255, 1});
  const Image pred = label_map(4, 2, {0, 1, 1, 1, 2, 0, 2, 1});
  const LabelLuts luts = luts_for(3);
  const ClassCounts k = count_one(luts, pred, gt);
  CHECK(k.intersect == std::vector<int64_t>{1, 3, 1});
  CHECK(k.gt == std::vector<int64_t>{2, 3, 2});
  CHECK(k.pred == std::vector<int64_t>{2, 4, 1});
  CHECK(k.pixels == 7);
  CHECK(k.ignored == 1);

  const Metrics mm = compute_metrics(k, Convention::mmseg);
  check_pct(mm.classes[0].iou, 100.0 / 3);
  check_pct(mm.classes[1].iou, 75);
  check_pct(mm.classes[2].iou, 50);
  CHECK(mm.classes[1].union_ == 4);
  check_pct(mm.get("mIoU"), 100.0 * 19 / 36);
  check_pct(mm.get("mAcc"), 100.0 * 2 / 3);
  check_pct(mm.get("aAcc"), 100.0 * 5 / 7);
  check_pct(mm.get("mDice"), 100.0 * (0.5 + 6.0 / 7 + 2.0 / 3) / 3);
  check_pct(mm.get("mFscore"), 100.0 * (0.5 + 6.0 / 7 + 2.0 / 3) / 3);
  check_pct(mm.get("mPrecision"), 100.0 * (0.5 + 0.75 + 1) / 3);
  check_pct(mm.get("mRecall"), 100.0 * 2 / 3);
  CHECK(round_percent(mm.get("mIoU")) == 52.78);
  CHECK(round_percent(mm.get("aAcc")) == 71.43);
  CHECK(round_percent(mm.get("mDice")) == 67.46);

  const Metrics d2 = compute_metrics(k, Convention::detectron2);
  check_pct(d2.get("mIoU"), 100.0 * 19 / 36);
  check_pct(d2.get("mACC"), 100.0 * 2 / 3);
  check_pct(d2.get("pACC"), 100.0 * 5 / 7);
  check_pct(d2.get("fwIoU"), 100.0 * 47 / 84);
  CHECK(std::isnan(d2.classes[0].dice));  // not part of detectron2
}

TEST_CASE("mmseg and detectron2 differ: a class predicted but absent from GT, a class absent from both") {
  // C = 4. gt = 0 0 1 1, pred = 0 2 1 1. Class 2 is predicted once but never in
  // the GT; class 3 appears nowhere.
  // I = [1, 2, 0, 0]; L = [2, 2, 0, 0]; P = [1, 2, 1, 0]; U = [2, 2, 1, 0].
  // mmseg: IoU = [1/2, 1, 0, NaN] -> mIoU = 1.5/3 = 50% (class 2 counts as 0,
  //   class 3 is skipped); Acc = [1/2, 1, NaN, NaN] -> mAcc = 75%; aAcc = 3/4.
  //   Dice = [2/3, 1, 0, NaN] -> mDice = (5/3)/3 = 55.56%.
  //   Precision = [1, 1, 0, NaN], Recall = [1/2, 1, NaN, NaN], F1 = [2/3, 1, NaN, NaN]
  //   (recall of class 2 is 0/0) -> mFscore = (5/3)/2 = 83.33%: F-score is not Dice here.
  // detectron2: only classes present in the GT (0 and 1) are averaged:
  //   IoU = [1/2, 1, NaN, NaN] -> mIoU = 75%; mACC = 75%; pACC = 3/4;
  //   fwIoU = (1/2*2 + 1*2)/4 = 75%.
  const Image gt = label_map(4, 1, {0, 0, 1, 1});
  const Image pred = label_map(4, 1, {0, 2, 1, 1});
  const ClassCounts k = count_one(luts_for(4), pred, gt);
  const Metrics mm = compute_metrics(k, Convention::mmseg);
  check_pct(mm.classes[2].iou, 0);
  check_pct(mm.classes[3].iou, NaN);
  check_pct(mm.get("mIoU"), 50);
  check_pct(mm.get("mAcc"), 75);
  check_pct(mm.get("aAcc"), 75);
  check_pct(mm.get("mDice"), 100.0 * 5 / 9);
  check_pct(mm.classes[2].fscore, NaN);
  check_pct(mm.get("mFscore"), 100.0 * 5 / 6);
  const Metrics d2 = compute_metrics(k, Convention::detectron2);
  check_pct(d2.classes[2].iou, NaN);
  check_pct(d2.classes[3].iou, NaN);
  check_pct(d2.get("mIoU"), 75);
  check_pct(d2.get("mACC"), 75);
  check_pct(d2.get("pACC"), 75);
  check_pct(d2.get("fwIoU"), 75);
  CHECK(d2.classes[2].pred == 1);
  CHECK(d2.classes[2].union_ == 1);
}

TEST_CASE("mmseg F-score is NaN for a class in GT that is never hit (I = 0), Dice is 0") {
  // gt = 0 1, pred = 1 0: I = [0, 0], P = L = [1, 1]. Precision = Recall = 0, F = 0/0.
  const ClassCounts k = count_one(luts_for(2), label_map(2, 1, {1, 0}), label_map(2, 1, {0, 1}));
  const Metrics mm = compute_metrics(k, Convention::mmseg);
  check_pct(mm.classes[0].dice, 0);
  check_pct(mm.classes[0].fscore, NaN);
  check_pct(mm.get("mFscore"), NaN);
  check_pct(mm.get("mIoU"), 0);
}

TEST_CASE("reduce_zero_label maps GT 0 -> 255 and v -> v-1; predictions are unchanged") {
  // C = 3, raw ADE-style GT 0..3: gt raw = 0 1 2 3 / 3 255 1 2
  //   reduced = 255 0 1 2 / 2 255 0 1 (0 -> ignored, 255 stays ignored)
  // pred (already 0-based) = 0 0 1 2 / 2 0 0 0
  // Evaluated pixels 1,2,3,4,6,7: (0,0) (1,1) (2,2) (2,2) (0,0) (1,0).
  // I = [2, 1, 2]; L = [2, 2, 2]; P = [3, 1, 2]; U = [3, 2, 2].
  // IoU = [2/3, 1/2, 1] -> mIoU = 13/18 = 72.22%; aAcc = 5/6; Acc = [1, 1/2, 1].
  // Had the prediction been reduced too, its 0s would have become ignored labels.
  const Image gt = label_map(4, 2, {0, 1, 2, 3, 3, 255, 1, 2});
  const Image pred = label_map(4, 2, {0, 0, 1, 2, 2, 0, 0, 0});
  const ClassCounts k = count_one(luts_for(3, true), pred, gt);
  CHECK(k.intersect == std::vector<int64_t>{2, 1, 2});
  CHECK(k.pred == std::vector<int64_t>{3, 1, 2});
  CHECK(k.ignored == 2);
  const Metrics mm = compute_metrics(k, Convention::mmseg);
  check_pct(mm.get("mIoU"), 100.0 * 13 / 18);
  check_pct(mm.get("aAcc"), 100.0 * 5 / 6);
  CHECK(round_percent(mm.get("mIoU")) == 72.22);
  CHECK(k.gt_out_of_range == 0);
}

TEST_CASE("label map: applied to GT at once, after reduce_zero_label") {
  // Map 1 -> 2, 2 -> 1, 3 -> 255 applied at once (a swap, as mmseg's copy-based
  // loop does): gt raw 0 1 2 3 -> 0 2 1 255; pred 0 2 1 0 matches everywhere
  // that is evaluated, so mIoU = 100%. Applied one after the other, 1 -> 2 -> 1
  // would give gt 0 1 1 255 and IoU of class 2 = 0.
  const Image gt = label_map(4, 1, {0, 1, 2, 3});
  const Image pred = label_map(4, 1, {0, 2, 1, 0});
  const ClassCounts k = count_one(luts_for(3, false, {{1, 2}, {2, 1}, {3, 255}}), pred, gt);
  const Metrics mm = compute_metrics(k, Convention::mmseg);
  check_pct(mm.get("mIoU"), 100);
  CHECK(k.ignored == 1);

  // With reduce_zero_label the map sees reduced values: raw 1 2 3 -> 0 1 2, then
  // {0: 1, 1: 0} gives 1 0 2; raw 0 -> 255 stays ignored.
  const Image gt2 = label_map(4, 1, {0, 1, 2, 3});
  const Image pred2 = label_map(4, 1, {2, 1, 0, 2});
  const ClassCounts k2 = count_one(luts_for(3, true, {{0, 1}, {1, 0}}), pred2, gt2);
  check_pct(compute_metrics(k2, Convention::mmseg).get("mIoU"), 100);
  CHECK(k2.ignored == 1);
}

TEST_CASE("out-of-range values: counted, and treated as each convention does") {
  // C = 2. gt = 0 1 5 255, pred = 0 7 1 1.
  // Pixel 3 is ignored. Pixel 1: GT 1, prediction 7 (out of range). Pixel 2: GT 5
  // (out of range, not ignored), prediction 1.
  // mmseg histograms: I = [1, 0]; L = [1, 1] (the GT-1 pixel counts although its
  // prediction is out of range); P = [1, 1] (the prediction 1 on the GT-5 pixel
  // counts); U = [1, 2]. IoU = [1, 0] -> mIoU = 50%; aAcc = 1/2.
  // detectron2 mode drops both pixels: pos_gt = [1, 0], IoU = [1, NaN] -> 100%.
  const Image gt = label_map(4, 1, {0, 1, 5, 255});
  const Image pred = label_map(4, 1, {0, 7, 1, 1});
  const LabelLuts luts = luts_for(2);
  const ClassCounts k = count_one(luts, pred, gt);
  CHECK(k.gt_out_of_range == 1);
  CHECK(k.pred_out_of_range == 1);
  CHECK(k.ignored == 1);
  const Metrics mm = compute_metrics(k, Convention::mmseg);
  check_pct(mm.get("mIoU"), 50);
  check_pct(mm.get("aAcc"), 50);
  const Metrics d2 = compute_metrics(k, Convention::detectron2);
  check_pct(d2.get("mIoU"), 100);
  check_pct(d2.get("pACC"), 100);
  const FirstOutOfRange g = first_gt_out_of_range(gt, luts);
  CHECK(g.found);
  CHECK(g.x == 2);
  CHECK(g.raw == 5);
  const FirstOutOfRange p = first_pred_out_of_range(pred, gt, luts);
  CHECK(p.found);
  CHECK(p.x == 1);
  CHECK(p.raw == 7);
  // An out-of-range prediction on an ignored pixel does not count.
  const ClassCounts k2 = count_one(luts, label_map(2, 1, {0, 9}), label_map(2, 1, {0, 255}));
  CHECK(k2.pred_out_of_range == 0);
}

TEST_CASE("16-bit label maps and a non-default ignore index") {
  // C = 300, ignore 0: gt = 0 299 299 1000, pred (8-bit) = 5 44 255 0.
  // Pixel 0 ignored; pixel 3 GT out of range. I = 0 everywhere.
  // P: class 44 and 255 once each (pixels 1, 2), class 0 once (pixel 3, GT out of range).
  const Image gt = label_map(4, 1, {0, 299, 299, 1000}, 16);
  const Image pred = label_map(4, 1, {5, 44, 255, 0});
  const ClassCounts k = count_one(luts_for(300, false, {}, 0), pred, gt);
  CHECK(k.ignored == 1);
  CHECK(k.gt_out_of_range == 1);
  CHECK(k.gt[299] == 2);
  CHECK(k.pred[44] == 1);
  CHECK(k.pred[255] == 1);
  CHECK(k.pred[0] == 1);
  CHECK(k.pred_gt_oor[0] == 1);
  const Metrics mm = compute_metrics(k, Convention::mmseg);
  // Classes with U > 0: 0, 44, 255, 299, all with IoU 0.
  check_pct(mm.get("mIoU"), 0);
  const Metrics d2 = compute_metrics(k, Convention::detectron2);
  CHECK(d2.classes[0].pred == 0);  // its only prediction was on an out-of-range GT pixel
}

TEST_CASE("counts accumulate over images and the C x C matrix has GT rows") {
  const LabelLuts luts = luts_for(3);
  Confusion total(3);
  count_one(luts, label_map(3, 1, {0, 1, 2}), label_map(3, 1, {0, 2, 2}), &total);
  count_one(luts, label_map(3, 1, {1, 1, 1}), label_map(3, 1, {0, 1, 255}), &total);
  // cells (gt, pred): (0,0) (2,1) (2,2) | (0,1) (1,1); one ignored.
  CHECK(total.at(0, 0) == 1);
  CHECK(total.at(2, 1) == 1);
  CHECK(total.at(0, 1) == 1);
  CHECK(total.ignored() == 1);
  const NpyArray a = total.to_npy();
  REQUIRE(a.shape == std::vector<int64_t>{3, 3});
  CHECK(a.dtype == DType::i64);
  CHECK(a.as<int64_t>()[2 * 3 + 1] == 1);  // row gt 2, column pred 1
  CHECK(a.as<int64_t>()[1 * 3 + 2] == 0);
  const ClassCounts k = class_counts(total);
  CHECK(k.gt == std::vector<int64_t>{2, 1, 2});
  CHECK(k.pred == std::vector<int64_t>{1, 3, 1});
}

// ---- an oracle written from the reference algorithms ------------------------

namespace {

struct Oracle {
  std::vector<double> I, P, L;             // mmseg's histograms
  std::vector<std::vector<int64_t>> conf;  // detectron2's (C+1)^2 matrix, [pred][gt]
};

// mmseg: the GT goes through reduce_zero_label and the label map; mask = gt !=
// ignore; histograms over [0, C-1] of pred[pred == gt], pred, gt on the mask.
// detectron2: gt[gt == ignore] = C; out-of-range pixels are dropped (detectron2
// itself would fail on them); conf[pred][gt] += 1.
Oracle oracle(const std::vector<std::vector<int>>& preds, const std::vector<std::vector<int>>& gts, int c, bool rzl,
              const std::map<int, int>& map, int ignore) {
  Oracle o;
  o.I.assign(c, 0), o.P.assign(c, 0), o.L.assign(c, 0);
  o.conf.assign(c + 1, std::vector<int64_t>(c + 1, 0));
  for (size_t n = 0; n < preds.size(); ++n) {
    std::vector<int> gt = gts[n];
    if (rzl)
      for (int& v : gt) {
        if (v == 0) v = 255;
        v = v - 1;
        if (v == 254) v = 255;
      }
    const std::vector<int> copy = gt;
    for (auto [from, to] : map)
      for (size_t i = 0; i < gt.size(); ++i)
        if (copy[i] == from) gt[i] = to;
    for (size_t i = 0; i < gt.size(); ++i) {
      const int g = gt[i], p = preds[n][i];
      if (g == ignore) continue;
      if (p == g && p >= 0 && p < c) o.I[p] += 1;
      if (p >= 0 && p < c) o.P[p] += 1;
      if (g >= 0 && g < c) o.L[g] += 1;
    }
    for (size_t i = 0; i < gt.size(); ++i) {
      int g = gt[i];
      const int p = preds[n][i];
      if (g == ignore)
        g = c;
      else if (g < 0 || g >= c)
        continue;
      if (p < 0 || p >= c) continue;
      o.conf[p][g] += 1;
    }
  }
  return o;
}

double nanmean(const std::vector<double>& v) {
  double s = 0;
  int n = 0;
  for (double x : v)
    if (!std::isnan(x)) s += x, ++n;
  return n ? s / n : NaN;
}

}  // namespace

TEST_CASE("random label maps: counting and both conventions equal the reference algorithms") {
  for (int trial = 0; trial < 6; ++trial) {
    Rng rng(100 + trial);
    const int c = trial % 2 ? 7 : 40;
    const bool rzl = trial >= 2;
    const bool wide = trial >= 4;  // 16-bit GT
    std::map<int, int> map;
    if (trial == 3 || trial == 5) map = {{0, 3}, {3, 0}, {5, 255}, {6, 1}};
    std::vector<std::vector<int>> preds, gts;
    const LabelLuts luts = luts_for(c, rzl, map);
    PairCounter counter(luts);
    Confusion total(c);
    for (int img = 0; img < 5; ++img) {
      const int w = 17 + 13 * img, h = 9;
      std::vector<int> p(w * h), g(w * h);
      for (int i = 0; i < w * h; ++i) {
        // Runs of equal values (as in label maps; long ones in trials 0 and 3,
        // crossing the 16-byte blocks of the SIMD run search) mixed with single
        // pixels, some out-of-range and ignored values.
        if (i > 0 && rng.uniform() < (trial % 3 == 0 ? 0.97 : 0.5)) {
          p[i] = p[i - 1], g[i] = g[i - 1];
          continue;
        }
        g[i] = rng.uniform() < 0.1    ? 255
               : rng.uniform() < 0.05 ? c + 3 + int(rng.below(wide ? 900 : 100))
                                      : int(rng.below(c + 1));
        p[i] = rng.uniform() < 0.6    ? std::min(g[i], c - 1)
               : rng.uniform() < 0.05 ? 200 + int(rng.below(50))
                                      : int(rng.below(c));
      }
      preds.push_back(p), gts.push_back(g);
      // Depths: 8/8 (trials 0-3), 8/16 (trial 4), 16/16 (trial 5).
      counter.count(label_map(w, h, p, trial == 5 ? 16 : 8), label_map(w, h, g, wide ? 16 : 8));
      counter.flush(total);
    }
    const Oracle o = oracle(preds, gts, c, rzl, map, 255);
    const ClassCounts k = class_counts(total);
    INFO("trial ", trial);
    for (int i = 0; i < c; ++i) {
      CHECK(double(k.intersect[i]) == o.I[i]);
      CHECK(double(k.pred[i]) == o.P[i]);
      CHECK(double(k.gt[i]) == o.L[i]);
    }
    // mmseg's total_area_to_metrics and the nanmean summary.
    std::vector<double> iou(c), acc(c), dice(c), f(c), prec(c);
    for (int i = 0; i < c; ++i) {
      const double U = o.P[i] + o.L[i] - o.I[i];
      iou[i] = U ? o.I[i] / U : NaN;
      acc[i] = o.L[i] ? o.I[i] / o.L[i] : NaN;
      dice[i] = (o.P[i] + o.L[i]) ? 2 * o.I[i] / (o.P[i] + o.L[i]) : NaN;
      prec[i] = o.P[i] ? o.I[i] / o.P[i] : NaN;
      f[i] = (prec[i] + acc[i]) != 0 ? 2 * prec[i] * acc[i] / (prec[i] + acc[i]) : NaN;
    }
    double si = 0, sl = 0;
    for (int i = 0; i < c; ++i) si += o.I[i], sl += o.L[i];
    const Metrics mm = compute_metrics(k, Convention::mmseg);
    CHECK(mm.get("aAcc") == doctest::Approx(si / sl).epsilon(1e-12));
    CHECK(mm.get("mIoU") == doctest::Approx(nanmean(iou)).epsilon(1e-12));
    CHECK(mm.get("mAcc") == doctest::Approx(nanmean(acc)).epsilon(1e-12));
    CHECK(mm.get("mDice") == doctest::Approx(nanmean(dice)).epsilon(1e-12));
    CHECK(mm.get("mFscore") == doctest::Approx(nanmean(f)).epsilon(1e-12));
    CHECK(mm.get("mPrecision") == doctest::Approx(nanmean(prec)).epsilon(1e-12));
    // detectron2's evaluate() on its (C+1)^2 matrix [pred][gt].
    std::vector<double> tp(c), pos_gt(c, 0), pos_pred(c, 0);
    for (int i = 0; i < c; ++i) {
      tp[i] = double(o.conf[i][i]);
      for (int j = 0; j < c; ++j) pos_gt[i] += double(o.conf[j][i]), pos_pred[i] += double(o.conf[i][j]);
    }
    double sum_gt = 0, sum_tp = 0, miou = 0, macc = 0, fw = 0;
    int valid = 0;
    for (int i = 0; i < c; ++i) sum_gt += pos_gt[i], sum_tp += tp[i];
    for (int i = 0; i < c; ++i)
      if (pos_gt[i] > 0) {
        const double u = pos_gt[i] + pos_pred[i] - tp[i];
        ++valid;
        miou += tp[i] / u;
        macc += tp[i] / pos_gt[i];
        fw += tp[i] / u * pos_gt[i] / sum_gt;
      }
    const Metrics d2 = compute_metrics(k, Convention::detectron2);
    CHECK(d2.get("mIoU") == doctest::Approx(miou / valid).epsilon(1e-12));
    CHECK(d2.get("mACC") == doctest::Approx(macc / valid).epsilon(1e-12));
    CHECK(d2.get("fwIoU") == doctest::Approx(fw).epsilon(1e-12));
    CHECK(d2.get("pACC") == doctest::Approx(sum_tp / sum_gt).epsilon(1e-12));
  }
}

TEST_CASE("round_percent is numpy's round(x * 100, 2)") {
  CHECK(round_percent(2.0 / 3) == 66.67);
  CHECK(round_percent(0.5) == 50.0);
  CHECK(round_percent(19.0 / 36) == 52.78);
  CHECK(std::isnan(round_percent(NaN)));
}

TEST_CASE("label-map files: lines and JSON") {
  const std::string dir = "/tmp/rass-test-miou-labelmap";
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir + "/a.txt") << "# old new\n1 2\n2:1\n3,255  # drop\n\n";
    std::ofstream(dir + "/b.json") << "{\"0\": 255, \"7\": 3}";
    std::ofstream(dir + "/dup.txt") << "1 2\n1 3\n";
    std::ofstream(dir + "/bad.txt") << "1 x\n";
    std::ofstream(dir + "/big.txt") << "1 70000\n";
  }
  CHECK(read_label_map(dir + "/a.txt") == std::map<int, int>{{1, 2}, {2, 1}, {3, 255}});
  CHECK(read_label_map(dir + "/b.json") == std::map<int, int>{{0, 255}, {7, 3}});
  for (const char* bad : {"/dup.txt", "/bad.txt", "/big.txt", "/missing.txt"}) {
    INFO(bad);
    try {
      read_label_map(dir + bad);
      FAIL("no error");
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::bad_input);
      CHECK(std::string(e.what()).find(dir + bad) == 0);
    }
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("class names: mmseg's ADE20K list, Cityscapes, VOC, files") {
  const auto& ade = *builtin_class_names("ade20k");
  REQUIRE(ade.size() == 150);
  CHECK(ade[0] == "wall");
  CHECK(ade[7] == "bed ");  // mmseg's trailing space, kept
  CHECK(ade[6] == "road");
  CHECK(ade[48] == "skyscraper");
  CHECK(ade[44] == "chest of drawers");
  CHECK(ade[149] == "flag");
  const auto& city = *builtin_class_names("cityscapes");
  REQUIRE(city.size() == 19);
  CHECK(city[0] == "road");
  CHECK(city[18] == "bicycle");
  CHECK(builtin_class_names("voc")->size() == 21);
  CHECK(builtin_class_names("coco") == nullptr);

  const std::string dir = "/tmp/rass-test-miou-names";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/n.txt") << "sky\r\nbed \r\nchest of drawers\n\n";
  std::ofstream(dir + "/gap.txt") << "a\n\nb\n";
  const auto names = load_class_names(dir + "/n.txt");
  CHECK(names == std::vector<std::string>{"sky", "bed ", "chest of drawers"});
  CHECK_THROWS_AS(load_class_names(dir + "/gap.txt"), Error);
  CHECK_THROWS_AS(load_class_names(dir + "/none.txt"), Error);
  // A blank name inside the list, and a name given twice, are refused.
  std::ofstream(dir + "/blank.txt") << "a\n  \t\nb\n";
  CHECK_THROWS_WITH_AS(load_class_names(dir + "/blank.txt"), doctest::Contains("line 2: empty class name"), Error);
  std::ofstream(dir + "/twice.txt") << "sky\nroad\nsky\n";
  CHECK_THROWS_WITH_AS(load_class_names(dir + "/twice.txt"),
                       doctest::Contains("line 3: class name 'sky' is line 1's too"), Error);
  CHECK(load_class_names(dir + "/n.txt").size() == 3);  // trailing blank lines end the list
  // The built-in sets' names differ, as a file's must.
  for (const char* set : {"ade20k", "cityscapes", "voc"}) {
    const auto* b = builtin_class_names(set);
    CHECK(std::set<std::string>(b->begin(), b->end()).size() == b->size());
  }
  std::filesystem::remove_all(dir);
}
