// The reports of rass-eval-miou (declared in eval_miou_tool.hpp).
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "rass/batch/report.hpp"
#include "rass/core/printable.hpp"
#include "rass/core/version.hpp"
#include "rass/metrics/eval_miou_tool.hpp"

using json = nlohmann::ordered_json;

namespace rass::metrics {

namespace {

constexpr char kProg[] = "rass-eval-miou";

std::string fmt_percent(double fraction) { return batch::format_fixed(round_percent(fraction), 2); }

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

std::string summary_reason(const std::string& key) {
  if (key == "aAcc" || key == "pACC") return "no labelled pixels were evaluated";
  return "no class has a defined value";
}

// Why a per-class value is undefined (0/0), for the JSON "reasons".
static std::string class_reason(const std::string& column, const ClassMetrics& x) {
  if (column == "IoU") return x.gt == 0 && x.pred == 0 ? "class absent from ground truth and prediction" : "class absent from the ground truth";
  if (column == "Acc" || column == "ACC" || column == "Recall") return "class absent from the ground truth";
  if (column == "Precision") return "class never predicted";
  if (column == "Dice") return "class absent from ground truth and prediction";
  return "precision and recall are both 0 or undefined";
}

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
  json summary = json::object();  // x100, full precision
  for (const auto& [key, v] : m.summary) batch::put_number(summary, key, v * 100, summary_reason(key));
  j["summary"] = summary;
  json per = json::array();
  const auto cols = metric_columns(m.convention);
  for (size_t i = 0; i < m.classes.size(); ++i) {
    const ClassMetrics& x = m.classes[i];
    json row = {{"class", i}, {"name", i < r.names.size() ? r.names[i] : std::to_string(i)}};
    for (const Column& col : cols) batch::put_number(row, col.name, x.*col.field * 100, class_reason(col.name, x));
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
  for (const std::string& n : r.names) name_w = std::max(name_w, printable_field(n).size());
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
    const std::string name = i < r.names.size() ? printable_field(r.names[i]) : std::to_string(i);
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
    out += std::to_string(i) + "," + batch::csv_field(i < r.names.size() ? r.names[i] : std::to_string(i));
    for (const Column& col : cols) out += "," + batch::format_number(x.*col.field * 100);
    out += "," + std::to_string(x.intersect) + "," + std::to_string(x.union_) + "," + std::to_string(x.pred) + "," +
           std::to_string(x.gt) + "\n";
  }
  return out;
}

}  // namespace rass::metrics
