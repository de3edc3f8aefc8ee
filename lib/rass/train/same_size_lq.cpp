#include "rass/train/same_size_lq.hpp"

#include "rass/core/error.hpp"
#include "rass/degrade/record.hpp"

namespace rass::train {

degrade::PipelineConfig same_size_lq_preset(const std::string& stage, const std::string& preset, int severity, int size) {
  degrade::PipelineConfig p;
  try {
    p = degrade::make_preset(preset, severity);
  } catch (const Error& e) {
    throw_usage(stage + ".preset: " + e.what() + ", or none");
  }
  if (p.scale != 1 && !p.lq_at_hq_size)
    throw_usage(stage + ".preset '" + preset + "' has scale " + std::to_string(p.scale) + " and LQ at 1/" +
                std::to_string(p.scale) +
                " size: the LQ image must keep the HQ size (glesam, lqseg-1/2/3, rass or a single degradation)");
  degrade::validate(p);
  if (size < degrade::min_input_side(p))
    throw_usage(stage + ".size " + std::to_string(size) + " is smaller than preset '" + preset + "' accepts (" +
                std::to_string(degrade::min_input_side(p)) + ")");
  return p;
}

Image same_size_lq(const degrade::PipelineConfig& p, uint64_t seed, const std::string& key, const Image& hq, int* scale) {
  const degrade::Record rec = degrade::sample_record(p, seed, key, hq.width, hq.height, 3);
  if (scale) *scale = rec.scale;
  Image lq = degrade::apply_record(hq, rec, key);
  if (lq.width != hq.width || lq.height != hq.height)
    throw_runtime("the degradation made a " + std::to_string(lq.width) + "x" + std::to_string(lq.height) +
                  " LQ image from a " + std::to_string(hq.width) + "x" + std::to_string(hq.height) + " one");
  return lq;
}

}  // namespace rass::train
