// The online LQ of the SAM stages (rass-train sam-enhancer, sam-decoder):
// a rass-degrade preset whose LQ image keeps the HQ image's size (glesam,
// lqseg-1/2/3, rass, a single degradation), checked once, and applied per
// sample with its draws keyed by the sample. Torch-free.
#pragma once
#include <string>

#include "rass/core/image.hpp"
#include "rass/degrade/config.hpp"

namespace rass::train {

// The preset `preset` (severity for the single degradations) for images of
// size x size. Error(usage) naming "<stage>.preset" for an unknown preset,
// one whose LQ is smaller than its HQ, or a size below what it accepts.
degrade::PipelineConfig same_size_lq_preset(const std::string& stage, const std::string& preset, int severity, int size);

// The LQ image of `hq` under `p`, every draw keyed by (seed, `key`);
// `scale` receives the downsampling factor drawn (glesam's 1..4).
Image same_size_lq(const degrade::PipelineConfig& p, uint64_t seed, const std::string& key, const Image& hq, int* scale);

}  // namespace rass::train
