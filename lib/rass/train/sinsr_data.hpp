// The training data of rass-train sinsr (SinSR's and SAMSR's distillation):
// clean images cut into random crops (pretrain_data.hpp: a folder or a
// rass-scenes manifest, keyed crop and flip), each degraded online into its
// x4 low-resolution input by a rass-degrade preset of scale 4
// ("realesrgan-x4", Real-ESRGAN's second-order model as ResShift's training
// configures it). The released trainers degrade a 300-pixel crop on the GPU
// and then crop 256 / 64; here the 256 crop is degraded whole (the same
// degradation model, the crop's border pixels filtered with reflection
// instead of the larger crop's neighbours).
//
// Every draw of a sample is keyed by (seed, step, global sample index)
// (stage.hpp's determinism contract): the crop and flip by PretrainData, the
// degradation by rass::Rng streams under "<key>@step S sample G".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "rass/degrade/config.hpp"
#include "rass/train/pretrain_data.hpp"

namespace rass::train {

struct SinsrDataConfig {
  std::string images, manifest;      // one of the two
  int64_t crop = 256;                // HQ crop; the LQ is crop / 4
  bool flip = true;
  std::string preset = "realesrgan-x4";
  uint64_t seed = 0;
};

struct SinsrSample {
  std::string key, draw;
  torch::Tensor hq;  // [3, crop, crop] in [-1, 1]
  torch::Tensor lq;  // [3, crop / 4, crop / 4] in [-1, 1]
};

class SinsrData {
 public:
  // Error(usage) for a preset that is not x4 or a crop it cannot take;
  // Error(bad_input) for unreadable or empty inputs (PretrainData's).
  explicit SinsrData(const SinsrDataConfig& c);
  size_t size() const { return pretrain_.size(); }
  SinsrSample sample(size_t item, int64_t step, int64_t global_index) const;

 private:
  SinsrDataConfig c_;
  PretrainData pretrain_;
  degrade::PipelineConfig degrade_;
};

}  // namespace rass::train
