// The training data of rass-train sinsr (SinSR's and SAMSR's distillation),
// HQ crops with their x4 low-resolution inputs, either
//   online (preset a rass-degrade preset of scale 4, "realesrgan-x4" by
//   default, Real-ESRGAN's second-order model as ResShift's training
//   configures it): clean images cut into random crops (pretrain_data.hpp: a
//   folder or a rass-scenes manifest, keyed crop and flip), each degraded
//   whole (the released trainers degrade a 300-pixel crop on the GPU and
//   then crop 256 / 64; here the 256 crop is degraded, its border filtered
//   with reflection instead of the larger crop's neighbours); or
//   paired (preset "none"): LQ images whose every side is exactly a quarter
//   of their HQ image's, from `lq_images` paired with `images` by item key
//   (as rass-eval-miou pairs folders), or a JSON-lines manifest with "hq"
//   (or "image") and "lq"; the same window cut from both (the HQ crop at 4x
//   the LQ offset), both flipped alike (SAMSR's Algorithm 1 samples pairs).
//
// Every draw of a sample is keyed by (seed, step, global sample index)
// (stage.hpp's determinism contract): crop and flip by rass::Rng streams
// "crop" and "flip" of "step S sample G", the degradation by streams under
// "<key>@step S sample G".
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "rass/degrade/config.hpp"
#include "rass/train/data_order.hpp"
#include "rass/train/image_pairs.hpp"
#include "rass/train/pretrain_data.hpp"
#include "rass/train/stage.hpp"

namespace rass::train {

struct SinsrDataConfig {
  std::string images, manifest;      // HQ images: a folder or a manifest (one of the two)
  std::string lq_images;             // preset none: the LQ folder paired with `images`
  bool match_stem = false;           // pair the two folders by file name, not relative path
  int64_t crop = 256;                // HQ crop; the LQ is crop / 4
  bool flip = true;
  std::string preset = "realesrgan-x4";  // a rass-degrade preset of scale 4, or none (paired data)
  uint64_t seed = 0;
  std::string stage = "sinsr";       // the stage whose settings messages name (sinsr, resshift)
  bool check_data = true;            // read every image's header before the first step (check())
};

// The data settings of the ResShift family's stages (sinsr, resshift) with
// their defaults, in --print-config's order.
nlohmann::ordered_json sinsr_data_defaults();
// Reads them from a stage's settings (errors name "<stage>.<key>").
SinsrDataConfig parse_sinsr_data(const StageSettings& j);
// The loop defaults of the family's released trainers (ResShift's, SinSR's,
// SAMSR's): AdamW lr 5e-5, weight decay 0, the lr rising linearly from 0
// over 5000 steps (lr * iters / 5000), then constant; no clipping; batch
// 64; EMA 0.999.
nlohmann::ordered_json resshift_family_loop_defaults();

struct SinsrSample {
  std::string key, draw;
  torch::Tensor hq;  // [3, crop, crop] in [-1, 1]
  torch::Tensor lq;  // [3, crop / 4, crop / 4] in [-1, 1]
};

class SinsrData {
 public:
  // Error(usage) for a preset that is not x4, a crop it cannot take, or
  // settings that do not go together; Error(bad_input) for unreadable or
  // empty inputs and pairs that do not pair (named).
  explicit SinsrData(const SinsrDataConfig& c);
  size_t size() const { return paired() ? pairs_.size() : pretrain_->size(); }
  bool paired() const { return !pretrain_; }
  SinsrSample sample(size_t item, int64_t step, int64_t global_index) const;
  // Reads every image's header once (not its pixels): a 16-bit image, an HQ
  // image smaller than the crop, or a pair whose LQ is not a quarter of its
  // HQ image or is smaller than crop / 4, is Error(bad_input) naming the
  // file, before the first step rather than at the step that draws it.
  void check() const;

 private:
  SinsrSample paired_sample(size_t item, int64_t step, int64_t global_index) const;
  SinsrDataConfig c_;
  std::unique_ptr<PretrainData> pretrain_;  // online degradation
  degrade::PipelineConfig degrade_;
  std::vector<ImagePair> pairs_;            // paired data: image = HQ, label = LQ
};

// One process's samples of a step (stage.hpp's StepContext), read in
// parallel, and their images stacked on `device`: gt [B, 3, crop, crop],
// lq [B, 3, crop / 4, crop / 4].
struct SinsrBatch {
  std::vector<SinsrSample> samples;
  torch::Tensor gt, lq;
};
SinsrBatch load_sinsr_batch(const SinsrData& data, const DataOrder& order, const StepContext& ctx,
                            torch::Device device);

// Error(usage) "<stage>.crop_size ..." unless crop / 4 is a multiple of a
// network's spatial multiple (`whose`: "the network's", "the student's").
void check_crop_multiple(const std::string& stage, int64_t crop, int64_t multiple, const std::string& whose);

}  // namespace rass::train
