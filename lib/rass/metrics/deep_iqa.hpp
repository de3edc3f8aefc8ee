// The deep (network) image-quality metrics as rass-eval-iqa sees them:
// torch-free, so the classical layer and the tool's driver never include
// LibTorch. The networks live in lib/rass/model/iqa_*.cpp (rass_nn) and
// register themselves here when the tool is built with LibTorch
// (rass::model::register_deep_iqa_metrics(), called from cmd/eval-iqa/main.cpp).
//
// A metric is loaded once per run (DeepIqaMetric::load) and its scorer is then
// called from several worker threads at once on batches of same-size images,
// so score() must not mutate shared state (networks run under InferenceMode).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "rass/core/image.hpp"
#include "rass/metrics/iqa_metrics.hpp"

namespace rass::metrics {

struct DeepIqaOptions {
  std::string weights_dir;  // --weights DIR or $RASS_IQA_WEIGHTS
  std::string device = "cpu";
  int threads = 0;          // 0 = the tool's default
  uint64_t seed = 0;        // keyed randomness (e.g. MANIQA's test-time crops)
};

class DeepIqaScorer {
 public:
  virtual ~DeepIqaScorer() = default;
  // One value per image. `pred` holds 8-bit RGB images, all the same size;
  // `gt` is empty for no-reference metrics, else the same length and size.
  // `keys` are the items' keys (for keyed randomness). Throws rass::Error on
  // bad input (e.g. an image too small for the network).
  virtual std::vector<IqaValue> score(const std::vector<const Image*>& pred, const std::vector<const Image*>& gt,
                                      const std::vector<std::string>& keys) const = 0;
};

struct DeepIqaMetric {
  std::string name;          // as given to -m, e.g. "lpips", "lpips-vgg"
  bool full_reference = false;
  std::string convention;    // written into --json: whose numbers these match
  std::string weights_file;  // file name expected under the weights dir
  bool lower_is_better = false;
  // Loads the network from options.weights_dir/weights_file; throws
  // rass::Error(bad_input) naming the missing or wrong file.
  std::unique_ptr<DeepIqaScorer> (*load)(const DeepIqaOptions& options) = nullptr;
};

// Registry, filled before the tool runs; empty in builds without LibTorch.
void register_deep_iqa_metric(DeepIqaMetric metric);
const std::vector<DeepIqaMetric>& deep_iqa_metrics();
const DeepIqaMetric* find_deep_iqa_metric(const std::string& name);

}  // namespace rass::metrics
