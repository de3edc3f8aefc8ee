// The table of image-quality metrics rass-eval-iqa offers: each entry names
// one metric and its convention and computes it on decoded 8-bit images, so
// the driver dispatches through the table instead of comparing names per image.
#pragma once
#include <string>
#include <vector>

#include "rass/core/image.hpp"
#include "rass/metrics/niqe.hpp"

namespace rass::metrics {

struct IqaSettings {
  int crop_border = 0;
  bool y_channel = false;    // BasicSR metrics on limited-range Y
  const NiqeParams* niqe = nullptr;
};

struct IqaValue {
  double value = 0;
  std::string reason;  // why it is not finite (NaN, inf), for the reports
};

struct IqaMetric {
  const char* name;
  bool full_reference;
  const char* convention;  // written into --json
  IqaValue (*compute)(const Image& pred, const Image& gt, const IqaSettings& s);
};

const std::vector<IqaMetric>& iqa_metrics();
// The entry named `name`, or nullptr.
const IqaMetric* find_iqa_metric(const std::string& name);
std::string iqa_metric_list();  // "psnr, psnry, ..." for messages and help

}  // namespace rass::metrics
