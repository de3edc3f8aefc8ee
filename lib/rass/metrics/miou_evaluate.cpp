#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>

#include "rass/batch/ordered_lines.hpp"
#include "rass/batch/report.hpp"
#include "rass/batch/run.hpp"
#include "rass/core/error.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/parallel.hpp"
#include "rass/io/image_io.hpp"
#include "rass/metrics/eval_miou_tool.hpp"

using json = nlohmann::ordered_json;

// Evaluation of rass-eval-miou: each worker decodes a pair, counts it into its
// own confusion matrix and drops it; the matrices are merged at the end.
namespace rass::metrics {

namespace {

constexpr char kProg[] = "rass-eval-miou";

void check_label_map(const Image& img, const std::string& name) {
  if (img.channels == 1) return;
  const char* what = img.channels == 2 ? "gray+alpha" : img.channels == 3 ? "RGB" : "RGBA";
  throw_bad_input(name, "has " + std::to_string(img.channels) + " channels (" + what +
                            "); a label map is a single-channel image of class indices (8- or 16-bit gray PNG, "
                            "or a palette PNG whose indices are the classes)");
}

// The first of some event in input order, whatever order the workers finish in.
class FirstInOrder {
 public:
  // `describe` (which may rescan an image) runs only when `index` can still be the first.
  void offer(size_t index, const std::function<std::string()>& describe) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (index >= index_) return;
    }
    std::string text = describe();
    std::lock_guard<std::mutex> lock(mu_);
    if (index < index_) index_ = index, text_ = std::move(text);
  }
  std::string text() {
    std::lock_guard<std::mutex> lock(mu_);
    return text_;
  }

 private:
  std::mutex mu_;
  size_t index_ = SIZE_MAX;
  std::string text_;
};

// "<file>: value V (M after the maps) at (x, y)"
std::string describe_value(const std::string& name, const FirstOutOfRange& f, int64_t mapped, const char* after) {
  return name + ": value " + std::to_string(f.raw) +
         (mapped != f.raw ? " (" + std::to_string(mapped) + " " + after + ")" : "") + " at (" + std::to_string(f.x) +
         ", " + std::to_string(f.y) + ")";
}

}  // namespace

MiouResult evaluate_pairs(const MiouJob& job, const std::vector<MiouPair>& pairs, const LabelLuts& luts,
                          std::vector<std::string> names) {
  const int c = luts.num_classes();
  MiouResult r;
  r.names = std::move(names);
  r.pairs = pairs.size();
  batch::OrderedLines lines(job.per_image);

  FirstInOrder gt_first, pred_first;
  std::atomic<size_t> gt_oor_images{0}, pred_oor_images{0}, jpeg_files{0};
  FirstInOrder jpeg_first;
  // A label map decoded, noting one stored as JPEG (lossy).
  auto read_labels = [&](size_t i, const std::string& path, const std::string& name) {
    const std::vector<uint8_t> bytes = read_image_bytes(path);
    if (!bytes.empty() && sniff_format(bytes.data(), bytes.size()) == ImageFormat::jpeg) {
      ++jpeg_files;
      jpeg_first.offer(i, [&] { return name; });
    }
    return decode_label_image(bytes.data(), bytes.size(), name);
  };
  batch::Reporter reporter(kProg);

  const int jobs = worker_count(job.jobs, pairs.size());
  // Per-worker state: one confusion matrix, counter and per-image counts each.
  std::vector<Confusion> totals(size_t(jobs), Confusion{c});
  std::vector<PairCounter> counters(static_cast<size_t>(jobs), PairCounter{luts});
  std::vector<ClassCounts> images(static_cast<size_t>(jobs));

  std::vector<json> lines_of(pairs.size());  // per-image rows, until the item ends
  const batch::Tally tally = batch::run_items(pairs, {job.jobs, job.quiet}, reporter, [&](size_t i, int w) {
    PairCounter& counter = counters[size_t(w)];
    ClassCounts& image = images[size_t(w)];
    Confusion& total = totals[size_t(w)];
    {
      const MiouPair& pair = pairs[i];
      const std::string& pred_path = pair.paths[0];
      const std::string& gt_path = pair.paths[1];
      json& line = lines_of[i];
        const std::string gt_name = gt_path == "-" ? "<stdin>" : gt_path;
        const Image gt = read_labels(i, gt_path, gt_name);
        check_label_map(gt, gt_name);
        const std::string pred_name = pred_path == "-" ? "<stdin>" : pred_path;
        const Image pred = read_labels(i, pred_path, pred_name);
        check_label_map(pred, pred_name);
        if (pred.width != gt.width || pred.height != gt.height)
          throw_bad_input(pred_name, "is " + std::to_string(pred.width) + "x" + std::to_string(pred.height) +
                                         " but its ground truth " + gt_name + " is " + std::to_string(gt.width) + "x" +
                                         std::to_string(gt.height));
        counter.count(pred, gt);
        counter.flush(total, &image);
        if (image.gt_out_of_range > 0) {
          ++gt_oor_images;
          gt_first.offer(i, [&] {
            const FirstOutOfRange f = first_gt_out_of_range(gt, luts);
            return describe_value(gt_name, f, luts.mapped_gt(f.raw), "after the maps");
          });
        }
        if (image.pred_out_of_range > 0) {
          ++pred_oor_images;
          pred_first.offer(i, [&] {
            const FirstOutOfRange f = first_pred_out_of_range(pred, gt, luts);
            return describe_value(pred_name, f, luts.mapped_pred(f.raw), "after the map");
          });
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
          for (const auto& [key, v] : m.summary) batch::put_number(line, key, v * 100, summary_reason(key));
        }
    }
  }, [&](size_t i, batch::Outcome o, const std::string& message) {
    if (!lines.enabled()) return;
    const MiouPair& pair = pairs[i];
    json row = {{"key", pair.key}, {"pred", pair.paths[0]}, {"gt", pair.paths[1]}};
    if (o != batch::Outcome::ok) row["error"] = message;
    else row.update(lines_of[i]);
    lines_of[i] = json();
    lines.put(i, json_text(row) + "\n");
  }, jobs);
  lines.finish();

  r.confusion = Confusion(c);
  for (const Confusion& t : totals) r.confusion.add(t);
  r.counts = class_counts(r.confusion);
  r.metrics = compute_metrics(r.counts, job.convention);
  r.gt_oor_first = gt_first.text();
  r.pred_oor_first = pred_first.text();
  r.evaluated = tally.ok;
  r.failed = tally.bad + tally.failed;
  r.runtime_failures = tally.failed;
  r.gt_oor_images = gt_oor_images;
  r.pred_oor_images = pred_oor_images;
  r.jpeg_label_files = jpeg_files;
  r.jpeg_first = jpeg_first.text();
  return r;
}

}  // namespace rass::metrics
