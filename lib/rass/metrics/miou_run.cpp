#include "rass/metrics/miou_run.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/parallel.hpp"
#include "rass/core/progress.hpp"
#include "rass/core/version.hpp"
#include "rass/io/image_files.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/manifest.hpp"
#include "rass/io/npy.hpp"
#include "rass/metrics/class_names.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace rass::metrics {

namespace {

constexpr char kProg[] = "rass-eval-miou";

// ---- pairing ---------------------------------------------------------------

bool is_label_map_name(const std::string& name, const std::string& suffix) {
  if (!suffix.empty())
    return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  const std::string ext = path_extension_lower(name);
  return ext == ".png" || ext == ".pgm" || ext == ".pnm";
}

std::string key_of(const std::string& path, const std::string& suffix) {
  if (suffix.empty()) return path_stem(path);
  const std::string name = fs::path(path).filename().string();
  return name.substr(0, name.size() - suffix.size());
}

// key -> path of every label map under `dir` (recursively).
std::map<std::string, std::string> list_label_maps(const std::string& dir, const std::string& suffix) {
  std::map<std::string, std::string> found;
  const auto keep = [&](const std::string& p) { return is_label_map_name(fs::path(p).filename().string(), suffix); };
  for (const std::string& p : list_files(dir, keep)) {
    const std::string key = key_of(p, suffix);
    auto [pos, fresh] = found.emplace(key, p);
    if (!fresh)
      throw_bad_input(p, "has the same key '" + key + "' as " + pos->second +
                             " (pairs are matched by file stem): rename one of them or use --pred-suffix/--gt-suffix");
  }
  return found;
}

// ---- per-image output in input order ----------------------------------------

// Lines arrive from the workers in any order and are written in index order as
// soon as every earlier one is there; the file is written under a temporary
// name and renamed at the end, so a killed run leaves no partial file.
class OrderedLines {
 public:
  explicit OrderedLines(const std::string& path) : path_(path) {
    if (path.empty()) return;
    if (path == "-") {
      f_ = stdout;
      return;
    }
    tmp_ = path + ".tmp." + std::to_string(::getpid());
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (!f_) throw_runtime(path + ": cannot create: " + std::strerror(errno));
  }
  ~OrderedLines() {
    if (f_ && f_ != stdout) {
      std::fclose(f_);
      std::remove(tmp_.c_str());
    }
  }
  bool enabled() const { return f_ != nullptr; }
  void put(size_t index, std::string line) {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.emplace(index, std::move(line));
    for (auto it = pending_.begin(); it != pending_.end() && it->first == next_; it = pending_.erase(it), ++next_)
      if (std::fwrite(it->second.data(), 1, it->second.size(), f_) != it->second.size()) failed_ = true;
  }
  void finish() {
    if (!f_) return;
    if (!pending_.empty()) throw_runtime(path_ + ": internal error: per-image lines missing");
    if (f_ == stdout) {
      if (std::fflush(stdout) != 0 || failed_) throw_runtime("<stdout>: write error");
      f_ = nullptr;
      return;
    }
    const bool ok = !failed_ && std::fclose(f_) == 0;
    f_ = nullptr;
    if (!ok || std::rename(tmp_.c_str(), path_.c_str()) != 0) {
      const std::string e = std::strerror(errno);
      std::remove(tmp_.c_str());
      throw_runtime(path_ + ": write failed: " + e);
    }
  }

 private:
  std::string path_, tmp_;
  FILE* f_ = nullptr;
  std::mutex mu_;
  std::map<size_t, std::string> pending_;
  size_t next_ = 0;
  bool failed_ = false;
};

// ---- helpers ---------------------------------------------------------------

void check_label_map(const Image& img, const std::string& name) {
  if (img.channels == 1) return;
  const char* what = img.channels == 2 ? "gray+alpha" : img.channels == 3 ? "RGB" : "RGBA";
  throw_bad_input(name, "has " + std::to_string(img.channels) + " channels (" + what +
                            "); a label map is a single-channel image of class indices (8- or 16-bit gray PNG; "
                            "a palette PNG is decoded to colours, so save the indices as gray)");
}

json number(double v) { return std::isnan(v) ? json(nullptr) : json(v); }

// Summary values x100, full precision (NaN -> null).
json summary_json(const Metrics& m) {
  json s = json::object();
  for (const auto& [key, v] : m.summary) s[key] = number(v * 100);
  return s;
}

std::string fmt_percent(double fraction) {
  const double v = round_percent(fraction);
  if (std::isnan(v)) return "nan";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

// Shortest text that reads back as the same double.
std::string fmt_full(double v) { return std::isnan(v) ? "nan" : json(v).dump(); }

std::string csv_quote(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

// Columns of the per-class reports: mmseg and detectron2 name them as they do.
struct Column {
  const char* name;
  double ClassMetrics::*field;
};
std::vector<Column> metric_columns(Convention c) {
  if (c == Convention::detectron2) return {{"IoU", &ClassMetrics::iou}, {"ACC", &ClassMetrics::acc}};
  return {{"IoU", &ClassMetrics::iou},
          {"Acc", &ClassMetrics::acc},
          {"Dice", &ClassMetrics::dice},
          {"Fscore", &ClassMetrics::fscore},
          {"Precision", &ClassMetrics::precision},
          {"Recall", &ClassMetrics::recall}};
}

}  // namespace

// ---- pairs -------------------------------------------------------------------

std::vector<MiouPair> collect_pairs(const MiouJob& job) {
  std::vector<MiouPair> pairs;
  if (!job.manifest.empty()) {
    if (!job.inputs.empty()) throw_usage("give PRED GT or --manifest, not both");
    for (const ManifestRow& row : read_manifest(job.manifest)) {
      MiouPair p;
      if (row.fields.count("pred") || row.fields.count("gt")) {
        if (row.fields.count("pred")) p.pred = row.fields.at("pred");
        if (row.fields.count("gt")) p.gt = row.fields.at("gt");
        if (row.fields.count("key")) p.key = row.fields.at("key");
      } else if (row.columns.size() >= 2) {
        p.pred = row.columns[0];
        p.gt = row.columns[1];
      }
      const std::string where = job.manifest + ": line " + std::to_string(row.line);
      if (p.pred.empty() || p.gt.empty()) {
        p.error = where + ": needs a \"pred\" and a \"gt\" path (JSON) or two tab-separated columns pred, gt";
      } else {
        p.pred = resolve_manifest_path(job.manifest, p.pred);
        p.gt = resolve_manifest_path(job.manifest, p.gt);
      }
      if (p.key.empty()) p.key = p.gt.empty() ? "line" + std::to_string(row.line) : path_stem(p.gt);
      pairs.push_back(std::move(p));
    }
    if (pairs.empty()) throw_bad_input(job.manifest, "no pairs in the manifest");
    return pairs;
  }
  if (job.inputs.size() != 2)
    throw_usage("give PRED GT (two directories matched by file stem, or two label maps), or --manifest FILE");
  const std::string& pred = job.inputs[0];
  const std::string& gt = job.inputs[1];
  if (pred == "-" && gt == "-") throw_usage("only one of PRED and GT can be '-' (stdin)");
  std::error_code ec;
  const bool pred_dir = pred != "-" && fs::is_directory(pred, ec);
  const bool gt_dir = gt != "-" && fs::is_directory(gt, ec);
  if (pred_dir != gt_dir)
    throw_usage(std::string(pred_dir ? pred : gt) + " is a directory but " + (pred_dir ? gt : pred) +
                " is not: give two directories or two label maps");
  if (!pred_dir) {
    pairs.push_back({pred, gt, gt == "-" ? (pred == "-" ? "stdin" : path_stem(pred)) : path_stem(gt), ""});
    return pairs;
  }
  const auto preds = list_label_maps(pred, job.pred_suffix);
  const auto gts = list_label_maps(gt, job.gt_suffix);
  if (preds.empty() && gts.empty())
    throw_bad_input(gt, "no label maps found here or in " + pred +
                            (job.gt_suffix.empty() && job.pred_suffix.empty() ? " (.png, .pgm, .pnm)"
                                                                              : " with the given suffixes"));
  // Keys in sorted order, both sides; a key on one side only is a bad pair.
  auto ip = preds.begin();
  auto ig = gts.begin();
  while (ip != preds.end() || ig != gts.end()) {
    if (ig == gts.end() || (ip != preds.end() && ip->first < ig->first)) {
      pairs.push_back(
          {ip->second, "", ip->first, ip->second + ": no ground truth with key '" + ip->first + "' in " + gt});
      ++ip;
    } else if (ip == preds.end() || ig->first < ip->first) {
      pairs.push_back(
          {"", ig->second, ig->first, ig->second + ": no prediction with key '" + ig->first + "' in " + pred});
      ++ig;
    } else {
      pairs.push_back({ip->second, ig->second, ig->first, ""});
      ++ip, ++ig;
    }
  }
  return pairs;
}

// ---- evaluation --------------------------------------------------------------

MiouResult evaluate_pairs(const MiouJob& job, const std::vector<MiouPair>& pairs, const LabelLuts& luts,
                          std::vector<std::string> names) {
  const int c = luts.num_classes();
  MiouResult r;
  r.names = std::move(names);
  r.pairs = pairs.size();
  OrderedLines lines(job.per_image);

  std::mutex mu;  // stderr and the out-of-range bookkeeping
  size_t gt_first_index = SIZE_MAX, pred_first_index = SIZE_MAX;
  std::atomic<size_t> evaluated{0}, failed{0}, gt_oor_images{0}, pred_oor_images{0};
  Progress progress(pairs.size(), kProg, job.quiet);

  const int jobs = worker_count(job.jobs, pairs.size());
  // Per-worker state: one confusion matrix, counter and per-image counts each.
  std::vector<Confusion> totals(size_t(jobs), Confusion{c});
  std::vector<PairCounter> counters(static_cast<size_t>(jobs), PairCounter{luts});
  std::vector<ClassCounts> images(static_cast<size_t>(jobs));

  parallel_for(pairs.size(), jobs, [&](size_t i, int w) {
    PairCounter& counter = counters[size_t(w)];
    ClassCounts& image = images[size_t(w)];
    Confusion& total = totals[size_t(w)];
    {
      const MiouPair& pair = pairs[i];
      json line = {{"key", pair.key}, {"pred", pair.pred}, {"gt", pair.gt}};
      try {
        if (!pair.error.empty()) throw Error(ExitCode::bad_input, pair.error);
        const Image gt = read_image(pair.gt);
        const std::string gt_name = pair.gt == "-" ? "<stdin>" : pair.gt;
        check_label_map(gt, gt_name);
        const Image pred = read_image(pair.pred);
        const std::string pred_name = pair.pred == "-" ? "<stdin>" : pair.pred;
        check_label_map(pred, pred_name);
        if (pred.width != gt.width || pred.height != gt.height)
          throw_bad_input(pred_name, "is " + std::to_string(pred.width) + "x" + std::to_string(pred.height) +
                                         " but its ground truth " + gt_name + " is " + std::to_string(gt.width) + "x" +
                                         std::to_string(gt.height));
        counter.count(pred, gt);
        counter.flush(total, &image);
        ++evaluated;
        if (image.gt_out_of_range > 0) {
          ++gt_oor_images;
          bool first;
          {
            std::lock_guard<std::mutex> lock(mu);
            first = i < gt_first_index;
          }
          if (first) {
            const FirstOutOfRange f = first_gt_out_of_range(gt, luts);
            std::lock_guard<std::mutex> lock(mu);
            if (i < gt_first_index) {
              gt_first_index = i;
              r.gt_oor_first =
                  gt_name + ": value " + std::to_string(f.raw) +
                  (luts.mapped_gt(f.raw) != f.raw ? " (" + std::to_string(luts.mapped_gt(f.raw)) + " after the maps)"
                                                  : "") +
                  " at (" + std::to_string(f.x) + ", " + std::to_string(f.y) + ")";
            }
          }
        }
        if (image.pred_out_of_range > 0) {
          ++pred_oor_images;
          bool first;
          {
            std::lock_guard<std::mutex> lock(mu);
            first = i < pred_first_index;
          }
          if (first) {
            const FirstOutOfRange f = first_pred_out_of_range(pred, gt, luts);
            std::lock_guard<std::mutex> lock(mu);
            if (i < pred_first_index) {
              pred_first_index = i;
              r.pred_oor_first =
                  pred_name + ": value " + std::to_string(f.raw) +
                  (luts.mapped_pred(f.raw) != f.raw ? " (" + std::to_string(luts.mapped_pred(f.raw)) + " after the map)"
                                                    : "") +
                  " at (" + std::to_string(f.x) + ", " + std::to_string(f.y) + ")";
            }
          }
        }
        if (lines.enabled()) {
          const Metrics m = compute_metrics(image, job.convention);
          line["width"] = gt.width;
          line["height"] = gt.height;
          line["pixels"] = image.pixels;
          line["ignored"] = image.ignored;
          line["out_of_range_gt"] = image.gt_out_of_range;
          line["out_of_range_pred"] = image.pred_out_of_range;
          int present = 0;
          for (int k = 0; k < c; ++k) present += image.gt[k] > 0;
          line["gt_classes"] = present;
          for (const auto& [key, v] : m.summary) line[key] = number(v * 100);
        }
      } catch (const Error& e) {
        ++failed;
        {
          std::lock_guard<std::mutex> lock(mu);
          std::fprintf(stderr, "%s: %s\n", kProg, e.what());
        }
        line["error"] = e.what();
      }
      if (lines.enabled()) lines.put(i, line.dump() + "\n");
      progress.tick();
    }
  });
  progress.finish();
  lines.finish();

  r.confusion = Confusion(c);
  for (const Confusion& t : totals) r.confusion.add(t);
  r.counts = class_counts(r.confusion);
  r.metrics = compute_metrics(r.counts, job.convention);
  r.evaluated = evaluated;
  r.failed = failed;
  r.gt_oor_images = gt_oor_images;
  r.pred_oor_images = pred_oor_images;
  return r;
}

// ---- reports -----------------------------------------------------------------

json result_json(const MiouJob& job, const MiouResult& r) {
  const Metrics& m = r.metrics;
  json j;
  j["tool"] = kProg;
  j["version"] = version();
  j["convention"] = convention_name(m.convention);
  j["num_classes"] = r.confusion.num_classes();
  j["ignore_index"] = job.ignore_index;
  j["reduce_zero_label"] = job.reduce_zero_label;
  j["pairs"] = r.pairs;
  j["evaluated"] = r.evaluated;
  j["failed"] = r.failed;
  j["pixels"] = {{"evaluated", r.counts.pixels},
                 {"ignored", r.counts.ignored},
                 {"out_of_range_gt", r.counts.gt_out_of_range},
                 {"out_of_range_pred", r.counts.pred_out_of_range}};
  j["summary"] = summary_json(m);
  json per = json::array();
  const auto cols = metric_columns(m.convention);
  for (size_t i = 0; i < m.classes.size(); ++i) {
    const ClassMetrics& x = m.classes[i];
    json row = {{"class", i}, {"name", i < r.names.size() ? r.names[i] : std::to_string(i)}};
    for (const Column& col : cols) row[col.name] = number(x.*col.field * 100);
    row["intersect"] = x.intersect;
    row["union"] = x.union_;
    row["pred_pixels"] = x.pred;
    row["gt_pixels"] = x.gt;
    per.push_back(row);
  }
  j["per_class"] = per;
  return j;
}

std::string result_table(const MiouJob& job, const MiouResult& r) {
  const Metrics& m = r.metrics;
  const auto cols = metric_columns(m.convention);
  size_t name_w = 5;
  for (const std::string& n : r.names) name_w = std::max(name_w, n.size());
  std::vector<std::string> headers;
  for (const Column& col : cols) headers.push_back(col.name);
  headers.push_back("gt_pixels");
  headers.push_back("pred_pixels");
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < m.classes.size(); ++i) {
    const ClassMetrics& x = m.classes[i];
    std::vector<std::string> row;
    for (const Column& col : cols) row.push_back(fmt_percent(x.*col.field));
    row.push_back(std::to_string(x.gt));
    row.push_back(std::to_string(x.pred));
    rows.push_back(row);
  }
  std::vector<size_t> w(headers.size());
  for (size_t k = 0; k < headers.size(); ++k) {
    w[k] = headers[k].size();
    for (const auto& row : rows) w[k] = std::max(w[k], row[k].size());
  }
  std::string out;
  char buf[64];
  auto cell = [&](const std::string& s, size_t width) {
    std::snprintf(buf, sizeof buf, "  %*s", int(width), s.c_str());
    out += buf;
  };
  out += "per-class results (" + std::string(convention_name(m.convention)) + " convention, " +
         std::to_string(r.evaluated) + " of " + std::to_string(r.pairs) + " pairs, ignore index " +
         std::to_string(job.ignore_index) + (job.reduce_zero_label ? ", reduce_zero_label" : "") + "):\n";
  out += "Class" + std::string(name_w - 5, ' ');
  for (size_t k = 0; k < headers.size(); ++k) cell(headers[k], w[k]);
  out += "\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::string name = i < r.names.size() ? r.names[i] : std::to_string(i);
    out += name + std::string(name_w - name.size(), ' ');
    for (size_t k = 0; k < rows[i].size(); ++k) cell(rows[i][k], w[k]);
    out += "\n";
  }
  out += "\nsummary:\n";
  std::string head, vals;
  for (const auto& [key, v] : m.summary) {
    const std::string s = fmt_percent(v);
    const size_t width = std::max(key.size(), s.size());
    std::snprintf(buf, sizeof buf, "%s%*s", head.empty() ? "" : "  ", int(width), key.c_str());
    head += buf;
    std::snprintf(buf, sizeof buf, "%s%*s", vals.empty() ? "" : "  ", int(width), s.c_str());
    vals += buf;
  }
  out += head + "\n" + vals + "\n";
  return out;
}

std::string result_csv(const MiouResult& r) {
  const Metrics& m = r.metrics;
  const auto cols = metric_columns(m.convention);
  std::string out = "class,name";
  for (const Column& col : cols) out += std::string(",") + col.name;
  out += ",intersect,union,pred_pixels,gt_pixels\n";
  for (size_t i = 0; i < m.classes.size(); ++i) {
    const ClassMetrics& x = m.classes[i];
    out += std::to_string(i) + "," + csv_quote(i < r.names.size() ? r.names[i] : std::to_string(i));
    for (const Column& col : cols) out += "," + fmt_full(x.*col.field * 100);
    out += "," + std::to_string(x.intersect) + "," + std::to_string(x.union_) + "," + std::to_string(x.pred) + "," +
           std::to_string(x.gt) + "\n";
  }
  return out;
}

// ---- the tool ----------------------------------------------------------------

int run_eval_miou(const MiouJob& job) {
  const int stdout_users = int(job.json) + int(job.csv == "-") + int(job.confusion == "-") + int(job.per_image == "-");
  if (stdout_users > 1) throw_usage("only one of --json, --csv -, --confusion - and --per-image - can use stdout");
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
  const MiouResult r = evaluate_pairs(job, pairs, luts, names);
  const int c = opt.num_classes;

  if (r.counts.gt_out_of_range > 0)
    std::fprintf(stderr,
                 "%s: warning: %lld ground-truth pixel(s) in %zu image(s) are outside [0, %d] and not the ignore index "
                 "%lld; first: %s. mmseg leaves them out of the GT histogram (their predictions still count), "
                 "detectron2 mode drops them. Is --num-classes right, or is --reduce-zero-label missing?\n",
                 kProg, (long long)r.counts.gt_out_of_range, r.gt_oor_images, c - 1, (long long)job.ignore_index,
                 r.gt_oor_first.c_str());
  if (r.counts.pred_out_of_range > 0)
    std::fprintf(
        stderr,
        "%s: warning: %lld predicted pixel(s) in %zu image(s) are outside [0, %d]; first: %s. mmseg counts them "
        "as misses of their GT class, detectron2 mode drops them.\n",
        kProg, (long long)r.counts.pred_out_of_range, r.pred_oor_images, c - 1, r.pred_oor_first.c_str());

  if (!job.confusion.empty()) write_npy(job.confusion, r.confusion.to_npy());
  if (!job.csv.empty()) write_file_atomic(job.csv, result_csv(r));
  if (job.json) {
    const std::string text = result_json(job, r).dump(2) + "\n";
    write_file_atomic("-", text);
  } else if (stdout_users == 0) {
    write_file_atomic("-", result_table(job, r));
  }
  if (!job.quiet)
    std::fprintf(stderr, "%s: %zu pairs evaluated, %zu failed (%s convention, %d classes)\n", kProg, r.evaluated,
                 r.failed, convention_name(job.convention), c);
  if (r.failed > 0 || r.counts.gt_out_of_range > 0 || r.counts.pred_out_of_range > 0) return int(ExitCode::bad_input);
  return 0;
}

}  // namespace rass::metrics
