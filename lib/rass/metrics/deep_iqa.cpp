#include "rass/metrics/deep_iqa.hpp"

namespace rass::metrics {

namespace {
std::vector<DeepIqaMetric>& registry() {
  static std::vector<DeepIqaMetric> r;
  return r;
}
}  // namespace

void register_deep_iqa_metric(DeepIqaMetric metric) {
  for (DeepIqaMetric& m : registry())
    if (m.name == metric.name) {
      m = std::move(metric);
      return;
    }
  registry().push_back(std::move(metric));
}

const std::vector<DeepIqaMetric>& deep_iqa_metrics() { return registry(); }

const DeepIqaMetric* find_deep_iqa_metric(const std::string& name) {
  for (const DeepIqaMetric& m : registry())
    if (m.name == name) return &m;
  return nullptr;
}

}  // namespace rass::metrics
