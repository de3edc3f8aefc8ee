#include "rass/train/sinsr_data.hpp"

#include <cstring>

#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/degrade/record.hpp"
#include "rass/train/scr_data.hpp"

namespace rass::train {

namespace {

PretrainDataConfig pretrain_config(const SinsrDataConfig& c) {
  PretrainDataConfig p;
  p.images = c.images;
  p.manifest = c.manifest;
  p.crop = c.crop;
  p.flip = c.flip;
  p.seed = c.seed;
  return p;
}

// [3, h, w] in [-1, 1] made from 8-bit values -> the 8-bit image again (exact).
Image signed_to_rgb(const torch::Tensor& t) {
  const torch::Tensor u8 =
      t.add(1).mul(127.5).round().clamp(0, 255).to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  Image img(int(t.size(2)), int(t.size(1)), 3, 8);
  std::memcpy(img.u8(), u8.data_ptr<uint8_t>(), size_t(u8.numel()));
  return img;
}

}  // namespace

SinsrData::SinsrData(const SinsrDataConfig& c) : c_(c), pretrain_(pretrain_config(c)) {
  try {
    degrade_ = degrade::make_preset(c_.preset);
  } catch (const std::exception& e) {
    throw_usage(std::string("sinsr.preset: ") + e.what());
  }
  if (degrade_.scale != 4)
    throw_usage("sinsr.preset '" + c_.preset + "' has scale " + std::to_string(degrade_.scale) +
                ": the ResShift family is x4 (realesrgan-x4 is the released training degradation)");
  degrade::validate(degrade_);
  if (c_.crop % 4 != 0) throw_usage("sinsr.crop_size " + std::to_string(c_.crop) + " must be a multiple of 4");
  if (c_.crop < degrade::min_input_side(degrade_))
    throw_usage("sinsr.crop_size " + std::to_string(c_.crop) + " is smaller than preset '" + c_.preset + "' accepts (" +
                std::to_string(degrade::min_input_side(degrade_)) + ")");
}

SinsrSample SinsrData::sample(size_t item, int64_t step, int64_t global_index) const {
  PretrainSample p = pretrain_.sample(item, step, global_index);
  SinsrSample s;
  s.key = p.key;
  s.draw = p.draw;
  s.hq = p.image;
  const Image hq = signed_to_rgb(p.image);
  const std::string key = s.key + "@" + s.draw;
  const degrade::Record rec = degrade::sample_record(degrade_, c_.seed, key, hq.width, hq.height, 3);
  const Image lq = degrade::apply_record(hq, rec, key);
  if (lq.width * 4 != hq.width || lq.height * 4 != hq.height)
    throw_runtime("sinsr: preset '" + c_.preset + "' made a " + std::to_string(lq.width) + "x" +
                  std::to_string(lq.height) + " LQ image from a " + std::to_string(hq.width) + " square");
  s.lq = rgb_to_signed(lq);
  return s;
}

}  // namespace rass::train
