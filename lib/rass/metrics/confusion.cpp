#include "rass/metrics/confusion.hpp"

#include <cctype>
#include <cmath>
#include <limits>
#include <sstream>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/file.hpp"

namespace rass::metrics {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double ratio(double num, double den) { return den == 0 ? kNaN : num / den; }

// numpy.nanmean: the mean of the non-NaN values, NaN when there are none.
double nanmean(const std::vector<ClassMetrics>& cls, double ClassMetrics::*field) {
  double sum = 0;
  size_t n = 0;
  for (const ClassMetrics& c : cls)
    if (!std::isnan(c.*field)) sum += c.*field, ++n;
  return n == 0 ? kNaN : sum / double(n);
}

int parse_label_value(const std::string& text, const std::string& path, int line) {
  const std::string where = line > 0 ? "line " + std::to_string(line) + ": " : "";
  size_t used = 0;
  long v = -1;
  try {
    v = std::stol(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty())
    throw_bad_input(path, where + "'" + text + "' is not an integer label value");
  if (v < 0 || v > 65535) throw_bad_input(path, where + "label value " + text + " is outside 0..65535");
  return int(v);
}

}  // namespace

Convention parse_convention(const std::string& name) {
  if (name == "mmseg") return Convention::mmseg;
  if (name == "detectron2") return Convention::detectron2;
  throw_usage("unknown convention '" + name + "' (expected mmseg or detectron2)");
}

const char* convention_name(Convention c) { return c == Convention::mmseg ? "mmseg" : "detectron2"; }

// ---- label maps and lookup tables -------------------------------------------

std::map<int, int> read_label_map(const std::string& path) {
  const std::vector<uint8_t> bytes = read_text_file_bytes(path);
  // An editor's byte-order mark is not part of the first value.
  const std::string text(bytes.begin() + std::ptrdiff_t(utf8_bom_size(bytes.data(), bytes.size())), bytes.end());
  std::map<int, int> map;
  auto put = [&](int from, int to, int line) {
    if (!map.emplace(from, to).second)
      throw_bad_input(path, (line > 0 ? "line " + std::to_string(line) + ": " : std::string()) + "value " +
                                std::to_string(from) + " is mapped twice");
  };
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') {
    nlohmann::json j;
    try {
      j = parse_json_unique_keys<nlohmann::json>(text);
    } catch (const std::exception& e) {
      throw_bad_input(path, std::string("invalid JSON: ") + e.what());
    }
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (!it->is_number_integer()) throw_bad_input(path, "\"" + it.key() + "\": the new value must be an integer");
      put(parse_label_value(it.key(), path, 0), parse_label_value(std::to_string(it->get<long>()), path, 0), 0);
    }
    return map;
  }
  std::stringstream ss(text);
  std::string line;
  for (int n = 1; std::getline(ss, line); ++n) {
    const size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    for (char& ch : line)
      if (ch == ',' || ch == ':' || ch == '\t' || ch == '\r') ch = ' ';
    std::stringstream ls(line);
    std::vector<std::string> words;
    for (std::string w; ls >> w;) words.push_back(w);
    if (words.empty()) continue;
    if (words.size() != 2)
      throw_bad_input(path, "line " + std::to_string(n) + ": expected two label values 'OLD NEW', got '" + line + "'");
    put(parse_label_value(words[0], path, n), parse_label_value(words[1], path, n), n);
  }
  // An empty file (a failed redirect, say) mapped nothing without a word;
  // "{}" still says "no mapping" on purpose.
  if (map.empty()) throw_bad_input(path, "holds no 'OLD NEW' lines (leave the option out for no mapping, or write {})");
  return map;
}

int LabelLuts::mapped_gt(int raw) const {
  int v = raw;
  if (options.reduce_zero_label) v = (v == 0 || v == 255) ? 255 : v - 1;
  auto it = options.label_map.find(v);
  return it == options.label_map.end() ? v : it->second;
}

int LabelLuts::mapped_pred(int raw) const {
  auto it = options.pred_label_map.find(raw);
  return it == options.pred_label_map.end() ? raw : it->second;
}

LabelLuts make_luts(const LabelOptions& options) {
  const int c = options.num_classes;
  if (c < 1 || c > kMaxClasses)
    throw_usage("the number of classes must be 1.." + std::to_string(kMaxClasses) + " (got " + std::to_string(c) + ")");
  LabelLuts luts;
  luts.options = options;
  luts.gt.resize(65536);
  luts.pred.resize(65536);
  for (int raw = 0; raw < 65536; ++raw) {
    const int g = luts.mapped_gt(raw);
    luts.gt[raw] = uint16_t(g == options.ignore_index ? c + 1 : (g >= 0 && g < c) ? g : c);
    const int p = luts.mapped_pred(raw);
    luts.pred[raw] = uint16_t(p >= 0 && p < c ? p : c);
  }
  return luts;
}

// ---- the confusion matrix --------------------------------------------------

Confusion::Confusion(int num_classes) : c_(num_classes), cells_(size_t(num_classes + 2) * (num_classes + 1), 0) {}

void Confusion::add(const Confusion& other) {
  if (other.c_ != c_) throw_runtime("cannot add confusion matrices of different class counts");
  for (size_t i = 0; i < cells_.size(); ++i) cells_[i] += other.cells_[i];
}

int64_t Confusion::ignored() const {
  int64_t n = 0;
  for (int p = 0; p <= c_; ++p) n += at(c_ + 1, p);
  return n;
}

int64_t Confusion::gt_out_of_range() const {
  int64_t n = 0;
  for (int p = 0; p <= c_; ++p) n += at(c_, p);
  return n;
}

int64_t Confusion::pred_out_of_range() const {
  int64_t n = 0;
  for (int g = 0; g <= c_; ++g) n += at(g, c_);
  return n;
}

int64_t Confusion::total() const {
  int64_t n = 0;
  for (int64_t v : cells_) n += v;
  return n;
}

NpyArray Confusion::to_npy() const {
  NpyArray a;
  a.dtype = DType::i64;
  a.shape = {c_, c_};
  a.data.resize(size_t(c_) * c_ * sizeof(int64_t));
  int64_t* out = a.as<int64_t>();
  for (int g = 0; g < c_; ++g)
    for (int p = 0; p < c_; ++p) out[size_t(g) * c_ + p] = at(g, p);
  return a;
}

void ClassCounts::reset(int num_classes) {
  for (auto* v : {&intersect, &gt, &pred, &gt_pred_oor, &pred_gt_oor}) v->assign(size_t(num_classes), 0);
  ignored = gt_out_of_range = pred_out_of_range = pixels = 0;
}

ClassCounts class_counts(const Confusion& m) {
  const int c = m.num_classes();
  ClassCounts k;
  k.reset(c);
  for (int g = 0; g <= c; ++g)
    for (int p = 0; p <= c; ++p) {
      const int64_t n = m.at(g, p);
      if (n == 0) continue;
      if (g < c) k.gt[g] += n;
      if (p < c) k.pred[p] += n;
      if (g < c && p == g) k.intersect[g] += n;
      if (g < c && p == c) k.gt_pred_oor[g] += n;
      if (g == c && p < c) k.pred_gt_oor[p] += n;
    }
  k.ignored = m.ignored();
  k.gt_out_of_range = m.gt_out_of_range();
  k.pred_out_of_range = m.pred_out_of_range();
  k.pixels = m.total() - k.ignored;
  return k;
}

// ---- counting --------------------------------------------------------------

PairCounter::PairCounter(const LabelLuts& luts)
    : luts_(luts), c_(luts.num_classes()), cells_(size_t(c_ + 2) * (c_ + 1), 0), touched_(size_t(c_ + 2), 0) {}

namespace {

// The end of the run of (pv, gv) pairs that starts before `j`: the first index
// >= j where the prediction or the GT differs. SSE2 compares 16 bytes (8 16-bit
// labels) at a time when both maps have the same depth.
template <class P, class G>
size_t run_end(const P* pred, const G* gt, size_t j, size_t n, P pv, G gv) {
#if defined(__SSE2__)
  if constexpr (sizeof(P) == sizeof(G)) {
    constexpr size_t lanes = 16 / sizeof(P);
    const __m128i vp = sizeof(P) == 1 ? _mm_set1_epi8(char(pv)) : _mm_set1_epi16(short(pv));
    const __m128i vg = sizeof(G) == 1 ? _mm_set1_epi8(char(gv)) : _mm_set1_epi16(short(gv));
    for (; j + lanes <= n; j += lanes) {
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(pred + j));
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(gt + j));
      const __m128i eq = sizeof(P) == 1 ? _mm_and_si128(_mm_cmpeq_epi8(a, vp), _mm_cmpeq_epi8(b, vg))
                                        : _mm_and_si128(_mm_cmpeq_epi16(a, vp), _mm_cmpeq_epi16(b, vg));
      const unsigned mask = unsigned(_mm_movemask_epi8(eq));
      if (mask != 0xFFFFu) return j + unsigned(__builtin_ctz(~mask)) / sizeof(P);
    }
  }
#endif
  while (j < n && pred[j] == pv && gt[j] == gv) ++j;
  return j;
}

// Label maps have long runs of equal (GT, prediction) pairs: counting a run at
// once avoids incrementing the same cell back to back (a store-to-load chain)
// and skips most of the per-pixel work.
template <class P, class G>
void count_runs(const P* pred, const G* gt, size_t n, const uint16_t* plut, const uint16_t* glut, int cols,
                uint32_t* cells, uint8_t* touched) {
  size_t i = 0;
  while (i < n) {
    const P pv = pred[i];
    const G gv = gt[i];
    size_t j = i + 1;
    if (j < n && pred[j] == pv && gt[j] == gv) j = run_end(pred, gt, j + 1, n, pv, gv);
    const unsigned row = glut[gv];
    cells[size_t(row) * cols + plut[pv]] += uint32_t(j - i);
    touched[row] = 1;
    i = j;
  }
}

}  // namespace

void PairCounter::count(const Image& pred, const Image& gt) {
  const size_t n = size_t(gt.width) * gt.height;
  if (pred.channels != 1 || gt.channels != 1 || size_t(pred.width) * pred.height != n)
    throw_runtime("PairCounter::count needs one-channel label maps of the same size");
  const uint16_t* pl = luts_.pred.data();
  const uint16_t* gl = luts_.gt.data();
  const int cols = c_ + 1;
  if (pred.depth == 8 && gt.depth == 8)
    count_runs(pred.u8(), gt.u8(), n, pl, gl, cols, cells_.data(), touched_.data());
  else if (pred.depth == 8)
    count_runs(pred.u8(), gt.u16(), n, pl, gl, cols, cells_.data(), touched_.data());
  else if (gt.depth == 8)
    count_runs(pred.u16(), gt.u8(), n, pl, gl, cols, cells_.data(), touched_.data());
  else
    count_runs(pred.u16(), gt.u16(), n, pl, gl, cols, cells_.data(), touched_.data());
}

void PairCounter::flush(Confusion& total, ClassCounts* image) {
  const int c = c_;
  if (image) image->reset(c);
  for (int g = 0; g < c + 2; ++g) {
    if (!touched_[g]) continue;
    touched_[g] = 0;
    uint32_t* row = cells_.data() + size_t(g) * (c + 1);
    for (int p = 0; p <= c; ++p) {
      const uint32_t n = row[p];
      if (n == 0) continue;
      row[p] = 0;
      total.at(g, p) += n;
      if (!image) continue;
      if (g == c + 1) {
        image->ignored += n;
        continue;
      }
      image->pixels += n;
      if (g < c) image->gt[g] += n;
      if (p < c) image->pred[p] += n;
      if (g < c && p == g) image->intersect[g] += n;
      if (g < c && p == c) image->gt_pred_oor[g] += n;
      if (g == c && p < c) image->pred_gt_oor[p] += n;
      if (g == c) image->gt_out_of_range += n;
      if (p == c) image->pred_out_of_range += n;
    }
  }
}

namespace {
int sample(const Image& img, size_t i) { return img.depth == 16 ? img.u16()[i] : img.u8()[i]; }
}  // namespace

FirstOutOfRange first_gt_out_of_range(const Image& gt, const LabelLuts& luts) {
  const size_t n = size_t(gt.width) * gt.height;
  const int c = luts.num_classes();
  for (size_t i = 0; i < n; ++i) {
    const int raw = sample(gt, i);
    if (luts.gt[raw] == c) return {true, int(i % gt.width), int(i / gt.width), raw};
  }
  return {};
}

FirstOutOfRange first_pred_out_of_range(const Image& pred, const Image& gt, const LabelLuts& luts) {
  const size_t n = size_t(gt.width) * gt.height;
  const int c = luts.num_classes();
  for (size_t i = 0; i < n; ++i) {
    const int raw = sample(pred, i);
    if (luts.pred[raw] == c && luts.gt[sample(gt, i)] != c + 1)
      return {true, int(i % gt.width), int(i / gt.width), raw};
  }
  return {};
}

// ---- metrics ---------------------------------------------------------------

double Metrics::get(const std::string& key) const {
  for (const auto& kv : summary)
    if (kv.first == key) return kv.second;
  return kNaN;
}

Metrics compute_metrics(const ClassCounts& k, Convention convention) {
  const int c = k.num_classes();
  Metrics m;
  m.convention = convention;
  m.classes.resize(size_t(c));
  if (convention == Convention::mmseg) {
    double sum_i = 0, sum_l = 0;
    for (int i = 0; i < c; ++i) {
      ClassMetrics& x = m.classes[i];
      x.intersect = k.intersect[i];
      x.gt = k.gt[i];
      x.pred = k.pred[i];
      x.union_ = x.pred + x.gt - x.intersect;
      const double I = double(x.intersect), L = double(x.gt), P = double(x.pred);
      x.iou = ratio(I, double(x.union_));
      x.acc = ratio(I, L);
      x.dice = ratio(2 * I, P + L);
      x.precision = ratio(I, P);
      x.recall = x.acc;
      // mmseg's f_score: (1 + b^2) p r / (b^2 p + r) with b = 1; 0/0 (I = 0) is NaN.
      x.fscore = ratio(2 * (x.precision * x.recall), x.precision + x.recall);
      if (std::isnan(x.precision) || std::isnan(x.recall)) x.fscore = kNaN;
      sum_i += I;
      sum_l += L;
    }
    m.summary = {{"aAcc", ratio(sum_i, sum_l)},
                 {"mIoU", nanmean(m.classes, &ClassMetrics::iou)},
                 {"mAcc", nanmean(m.classes, &ClassMetrics::acc)},
                 {"mDice", nanmean(m.classes, &ClassMetrics::dice)},
                 {"mFscore", nanmean(m.classes, &ClassMetrics::fscore)},
                 {"mPrecision", nanmean(m.classes, &ClassMetrics::precision)},
                 {"mRecall", nanmean(m.classes, &ClassMetrics::recall)}};
    return m;
  }
  // detectron2: drop pixels with an out-of-range GT or prediction.
  double sum_tp = 0, sum_pos_gt = 0;
  for (int i = 0; i < c; ++i) {
    ClassMetrics& x = m.classes[i];
    x.intersect = k.intersect[i];
    x.gt = k.gt[i] - k.gt_pred_oor[i];
    x.pred = k.pred[i] - k.pred_gt_oor[i];
    x.union_ = x.gt + x.pred - x.intersect;
    const bool valid = x.gt > 0;  // acc_valid; iou_valid = acc_valid and union > 0, the same thing
    x.iou = valid ? double(x.intersect) / double(x.union_) : kNaN;
    x.acc = valid ? double(x.intersect) / double(x.gt) : kNaN;
    x.dice = x.fscore = x.precision = x.recall = kNaN;
    sum_tp += double(x.intersect);
    sum_pos_gt += double(x.gt);
  }
  double sum_iou = 0, sum_acc = 0, fw = 0;
  int valid = 0;
  for (const ClassMetrics& x : m.classes) {
    if (x.gt == 0) continue;
    ++valid;
    sum_iou += x.iou;
    sum_acc += x.acc;
    fw += x.iou * (double(x.gt) / sum_pos_gt);
  }
  // With no class present, detectron2's means are 0/0 = NaN and its fwIoU an empty sum, 0.
  m.summary = {{"mIoU", ratio(sum_iou, valid)},
               {"fwIoU", fw},
               {"mACC", ratio(sum_acc, valid)},
               {"pACC", ratio(sum_tp, sum_pos_gt)}};
  return m;
}

double round_percent(double fraction) {
  if (std::isnan(fraction)) return fraction;
  return std::nearbyint(fraction * 100.0 * 100.0) / 100.0;
}

}  // namespace rass::metrics
