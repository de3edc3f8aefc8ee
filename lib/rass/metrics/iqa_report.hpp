// The reports of rass-eval-iqa (JSON, CSV, the text table) built from the
// per-image results, and the means they share.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rass/batch/inputs.hpp"
#include "rass/metrics/iqa_metrics.hpp"
#include "rass/metrics/eval_iqa_tool.hpp"

namespace rass::metrics {

struct IqaImageResult {
  std::vector<IqaValue> values;  // per metric, in the job's order
  std::string error;             // set: the item failed (its message)
};

// A column of the reports: a classical metric (iqa_metrics.hpp) or a deep one
// (deep_iqa.hpp), as the reports see both.
struct IqaColumn {
  std::string name;
  std::string convention;
};

struct IqaSummary {
  std::vector<IqaColumn> metrics;
  std::vector<double> mean;        // NaN values left out; NaN when no value is left
  std::vector<size_t> nan_count;   // images whose value is NaN, per metric
  size_t measured = 0, failed = 0;
};

// Means over the measured images: NaN values (NIQE of flat images) are left
// out and counted; an infinite value makes the mean infinite.
IqaSummary summarize(const std::vector<IqaColumn>& metrics, const std::vector<IqaImageResult>& results);

nlohmann::ordered_json iqa_json(const IqaJob& job, const IqaSummary& s, const std::vector<batch::Item>& items,
                                const std::vector<IqaImageResult>& results, bool full_reference);
std::string iqa_csv(const IqaSummary& s, const std::vector<batch::Item>& items,
                    const std::vector<IqaImageResult>& results);
std::string iqa_table(const IqaSummary& s, const std::vector<batch::Item>& items,
                      const std::vector<IqaImageResult>& results);

}  // namespace rass::metrics
