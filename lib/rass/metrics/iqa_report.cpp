#include "rass/metrics/iqa_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "rass/batch/report.hpp"
#include "rass/core/printable.hpp"

using json = nlohmann::ordered_json;

namespace rass::metrics {

IqaSummary summarize(const std::vector<IqaColumn>& metrics, const std::vector<IqaImageResult>& results) {
  IqaSummary s;
  s.metrics = metrics;
  const size_t nm = metrics.size();
  std::vector<double> sum(nm, 0);
  std::vector<size_t> count(nm, 0);
  s.nan_count.assign(nm, 0);
  for (const IqaImageResult& r : results) {
    if (!r.error.empty()) {
      ++s.failed;
      continue;
    }
    ++s.measured;
    for (size_t m = 0; m < nm; ++m) {
      if (std::isnan(r.values[m].value)) ++s.nan_count[m];
      else sum[m] += r.values[m].value, ++count[m];
    }
  }
  s.mean.resize(nm);
  for (size_t m = 0; m < nm; ++m) s.mean[m] = count[m] ? sum[m] / double(count[m]) : std::nan("");
  return s;
}

json iqa_json(const IqaJob& job, const IqaSummary& s, const std::vector<batch::Item>& items,
              const std::vector<IqaImageResult>& results, bool fr) {
  json out;
  out["tool"] = "rass-eval-iqa";
  out["metrics"] = job.metrics;
  json conv = json::object();
  for (const IqaColumn& m : s.metrics) conv[m.name] = m.convention;
  out["conventions"] = conv;
  out["crop_border"] = job.crop_border;
  out["y_channel"] = job.y_channel;
  out["images"] = json::array();
  for (size_t i = 0; i < items.size(); ++i) {
    json row;
    row["name"] = items[i].key;
    row["pred"] = items[i].paths[0];
    if (fr) row["gt"] = items[i].paths[1];
    if (!results[i].error.empty()) {
      row["error"] = results[i].error;
    } else {
      for (size_t m = 0; m < s.metrics.size(); ++m)
        batch::put_number(row, s.metrics[m].name, results[i].values[m].value, results[i].values[m].reason);
    }
    out["images"].push_back(row);
  }
  json mj = json::object();
  for (size_t m = 0; m < s.metrics.size(); ++m)
    batch::put_number(mj, s.metrics[m].name, s.mean[m],
                      std::isnan(s.mean[m]) ? "no image has a value" : "an image has an infinite value");
  out["mean"] = mj;
  out["count"] = s.measured;
  out["failed"] = s.failed;
  return out;
}

std::string iqa_csv(const IqaSummary& s, const std::vector<batch::Item>& items,
                    const std::vector<IqaImageResult>& results) {
  std::vector<std::string> head = {"name"};
  for (const IqaColumn& m : s.metrics) head.push_back(m.name);
  std::string out = batch::csv_row(head);
  for (size_t i = 0; i < items.size(); ++i) {
    if (!results[i].error.empty()) continue;
    std::vector<std::string> row = {items[i].key};
    for (const IqaValue& v : results[i].values) row.push_back(batch::format_fixed(v.value, 10));
    out += batch::csv_row(row);
  }
  std::vector<std::string> mean = {"mean"};
  for (double v : s.mean) mean.push_back(batch::format_fixed(v, 10));
  return out + batch::csv_row(mean);
}

std::string iqa_table(const IqaSummary& s, const std::vector<batch::Item>& items,
                      const std::vector<IqaImageResult>& results) {
  size_t w = 4;
  for (size_t i = 0; i < items.size(); ++i)
    if (results[i].error.empty()) w = std::max(w, printable_field(items[i].key).size());
  std::string out;
  char buf[64];
  auto line = [&](const std::string& name, const std::vector<std::string>& cells) {
    out += name + std::string(w - std::min(w, name.size()), ' ');
    for (const std::string& c : cells) {
      std::snprintf(buf, sizeof buf, "  %12s", c.c_str());
      out += buf;
    }
    out += "\n";
  };
  std::vector<std::string> head;
  for (const IqaColumn& m : s.metrics) head.push_back(m.name);
  line("name", head);
  for (size_t i = 0; i < items.size(); ++i) {
    if (!results[i].error.empty()) continue;
    std::vector<std::string> cells;
    for (const IqaValue& v : results[i].values) cells.push_back(batch::format_fixed(v.value, 4));
    line(printable_field(items[i].key), cells);
  }
  std::vector<std::string> mean;
  for (double v : s.mean) mean.push_back(batch::format_fixed(v, 4));
  line("mean", mean);
  return out;
}

}  // namespace rass::metrics
