#include "rass/train/sinsr_data.hpp"

#include <cstring>

#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/rng.hpp"
#include "rass/degrade/record.hpp"
#include "rass/io/image_io.hpp"
#include "rass/model/restore_size.hpp"
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
  p.stage = c.stage;
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

nlohmann::ordered_json sinsr_data_defaults() {
  return nlohmann::ordered_json{{"images", ""},      {"manifest", ""},  {"lq_images", ""},
                                {"match_stem", false}, {"crop_size", 256}, {"flip", true},
                                {"preset", "realesrgan-x4"}, {"check_data", true}};
}

SinsrDataConfig parse_sinsr_data(const StageSettings& j) {
  SinsrDataConfig d;
  d.stage = j.stage;
  d.images = j.str("images");
  d.manifest = j.str("manifest");
  d.lq_images = j.str("lq_images");
  d.match_stem = j.flag("match_stem");
  d.crop = j.integer("crop_size", 16, 4096);
  d.flip = j.flag("flip");
  d.preset = j.str("preset");
  d.check_data = j.flag("check_data");
  return d;
}

nlohmann::ordered_json resshift_family_loop_defaults() {
  // Their adjust_lr runs after each step (the first at the full lr; here
  // step 0 has lr 0); SinSR's milestone halving comes at its last iteration.
  return nlohmann::ordered_json{{"optimizer", "adamw"},  {"lr", 5e-5},           {"weight_decay", 0.0},
                                {"schedule", "constant"}, {"warmup_steps", 5000}, {"warmup_factor", 0.0},
                                {"clip_grad_norm", 0.0},  {"batch", 64},          {"ema_rate", 0.999}};
}

SinsrData::SinsrData(const SinsrDataConfig& c) : c_(c) {
  if (c_.crop % 4 != 0) throw_usage(c_.stage + ".crop_size " + std::to_string(c_.crop) + " must be a multiple of 4");
  if (c_.preset == "none") {
    if (c_.lq_images.empty() == c_.manifest.empty())
      throw_usage(c_.stage + ".preset none reads LQ/HQ pairs: give " + c_.stage + ".images with " + c_.stage +
                  ".lq_images, or a " + c_.stage + ".manifest with \"hq\" and \"lq\" fields");
    ImagePairSource s;
    s.images = c_.images;
    s.labels = c_.lq_images;
    s.manifest = c_.manifest;
    s.match_stem = c_.match_stem;
    s.image_fields = {"hq", "image"};
    s.label_fields = {"lq"};
    s.image_role = "HQ image";
    s.label_role = "LQ image";
    s.stage = c_.stage;
    s.labels_key = "lq_images";
    pairs_ = list_image_pairs(s, "HQ/LQ pairs");
    return;
  }
  if (c_.match_stem)
    throw_usage(c_.stage + ".match_stem pairs " + c_.stage + ".lq_images with " + c_.stage +
                ".images: paired data only (" + c_.stage + ".preset=none)");
  if (!c_.lq_images.empty())
    throw_usage(c_.stage + ".lq_images gives paired LQ images, which preset '" + c_.preset +
                "' would make again: set " + c_.stage + ".preset=none for paired data");
  try {
    degrade_ = degrade::make_preset(c_.preset);
  } catch (const std::exception& e) {
    throw_usage(c_.stage + ".preset: " + e.what() + ", or none (paired data)");
  }
  // GleSAM's preset draws its factor per image and resizes back to the HQ size.
  const bool keeps_size = !degrade_.scale_choices.empty() || degrade_.glesam_final;
  if (degrade_.scale != 4 || keeps_size)
    throw_usage(c_.stage + ".preset '" + c_.preset + "' " +
                (keeps_size ? std::string("gives LQ images of the HQ size")
                            : "has scale " + std::to_string(degrade_.scale)) +
                ": the ResShift family is x4 (realesrgan-x4 is the released training degradation)");
  degrade::validate(degrade_);
  if (c_.crop < degrade::min_input_side(degrade_))
    throw_usage(c_.stage + ".crop_size " + std::to_string(c_.crop) + " is smaller than preset '" + c_.preset + "' accepts (" +
                std::to_string(degrade::min_input_side(degrade_)) + ")");
  try {
    pretrain_ = std::make_unique<PretrainData>(pretrain_config(c_));
  } catch (const Error& e) {
    // A manifest of pairs ("hq", "lq") read as clean images names no "image".
    const std::string what = e.what();
    if (!c_.manifest.empty() && what.find("no \"image\" path") != std::string::npos)
      throw Error(e.code(), what + " (a manifest of LQ/HQ pairs with \"hq\" and \"lq\" needs " + c_.stage +
                                ".preset=none)");
    throw;
  }
}

void SinsrData::check() const {
  // The size a file declares; a 16-bit image (decode_image keeps 16 bits,
  // the model takes 8) is named now, as to_rgb8 would at its step.
  auto size_of = [](const std::string& path) {
    const std::vector<uint8_t> bytes = read_image_bytes(path);
    if (image_header_depth(bytes.data(), bytes.size()) == 16)
      throw_bad_input(path, "is a 16-bit image; the model takes 8-bit images (as the reference's PIL loading): "
                            "convert it to 8-bit first");
    const std::pair<int, int> wh = image_header_size(bytes.data(), bytes.size());
    if (wh.first > 0 && wh.second > 0) return wh;
    const Image img = decode_image(bytes, path);  // names what is wrong with the file
    return std::pair<int, int>{img.width, img.height};
  };
  const int64_t c4 = c_.crop / 4;
  if (!paired()) {
    for (const PretrainItem& it : pretrain_->items()) {
      const auto [w, h] = size_of(it.image);
      if (w < c_.crop || h < c_.crop)
        throw_bad_input(it.image, "is " + std::to_string(w) + "x" + std::to_string(h) + ", smaller than crop_size " +
                                      std::to_string(c_.crop) + " (images are not padded)");
    }
    return;
  }
  for (const ImagePair& p : pairs_) {
    const auto [hw, hh] = size_of(p.image);
    const auto [lw, lh] = size_of(p.label);
    if (int64_t(lw) * 4 != hw || int64_t(lh) * 4 != hh)
      throw_bad_input(p.label, "is " + std::to_string(lw) + "x" + std::to_string(lh) + ", not a quarter of its HQ image " +
                                   p.image + " (" + std::to_string(hw) + "x" + std::to_string(hh) + ")");
    if (lw < c4 || lh < c4)
      throw_bad_input(p.label, "is " + std::to_string(lw) + "x" + std::to_string(lh) + ", smaller than crop_size / 4 (" +
                                   std::to_string(c4) + "; images are not padded)");
  }
}

SinsrSample SinsrData::paired_sample(size_t item, int64_t step, int64_t global_index) const {
  const ImagePair& p = pairs_.at(item);
  SinsrSample s;
  s.key = p.key;
  s.draw = sample_draw_key(step, global_index);
  const Image hq = model::to_rgb8(read_image(p.image), p.image);
  const Image lq = model::to_rgb8(read_image(p.label), p.label);
  if (int64_t(lq.width) * 4 != hq.width || int64_t(lq.height) * 4 != hq.height)
    throw_bad_input(p.label, "is " + std::to_string(lq.width) + "x" + std::to_string(lq.height) + ", not a quarter of its HQ image " +
                                 p.image + " (" + std::to_string(hq.width) + "x" + std::to_string(hq.height) + ")");
  const int64_t c4 = c_.crop / 4;
  if (lq.width < c4 || lq.height < c4)
    throw_bad_input(p.label, "is " + std::to_string(lq.width) + "x" + std::to_string(lq.height) + ", smaller than crop_size / 4 (" +
                                 std::to_string(c4) + "; images are not padded)");
  Rng crop_rng(c_.seed, s.draw, "crop"), flip_rng(c_.seed, s.draw, "flip");
  const int64_t x0 = int64_t(crop_rng.below(uint64_t(lq.width - c4 + 1)));
  const int64_t y0 = int64_t(crop_rng.below(uint64_t(lq.height - c4 + 1)));
  const bool flip = c_.flip && flip_rng.uniform() < 0.5;
  using torch::indexing::Slice;
  torch::Tensor h = rgb_to_signed(hq).index({Slice(), Slice(4 * y0, 4 * (y0 + c4)), Slice(4 * x0, 4 * (x0 + c4))});
  torch::Tensor l = rgb_to_signed(lq).index({Slice(), Slice(y0, y0 + c4), Slice(x0, x0 + c4)});
  if (flip) h = h.flip({2}), l = l.flip({2});
  s.hq = h.contiguous();
  s.lq = l.contiguous();
  return s;
}

SinsrSample SinsrData::sample(size_t item, int64_t step, int64_t global_index) const {
  if (paired()) return paired_sample(item, step, global_index);
  PretrainSample p = pretrain_->sample(item, step, global_index);
  SinsrSample s;
  s.key = p.key;
  s.draw = p.draw;
  s.hq = p.image;
  const Image hq = signed_to_rgb(p.image);
  const std::string key = s.key + "@" + s.draw;
  const degrade::Record rec = degrade::sample_record(degrade_, c_.seed, key, hq.width, hq.height, 3);
  const Image lq = degrade::apply_record(hq, rec, key);
  if (lq.width * 4 != hq.width || lq.height * 4 != hq.height)
    throw_runtime(c_.stage + ": preset '" + c_.preset + "' made a " + std::to_string(lq.width) + "x" +
                  std::to_string(lq.height) + " LQ image from a " + std::to_string(hq.width) + " square");
  s.lq = rgb_to_signed(lq);
  return s;
}

SinsrBatch load_sinsr_batch(const SinsrData& data, const DataOrder& order, const StepContext& ctx,
                            torch::Device device) {
  SinsrBatch b;
  b.samples.resize(static_cast<size_t>(ctx.local_batch));
  at::parallel_for(0, ctx.local_batch, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t k = b0; k < b1; ++k) {
      const int64_t g = ctx.sample_offset + k;
      b.samples[size_t(k)] = data.sample(order.item(ctx.step, ctx.global_batch, g), ctx.step, g);
    }
  });
  std::vector<torch::Tensor> hq, lq;
  for (const SinsrSample& s : b.samples) {
    hq.push_back(s.hq);
    lq.push_back(s.lq);
  }
  b.gt = torch::stack(hq).to(device);
  b.lq = torch::stack(lq).to(device);
  return b;
}

void check_crop_multiple(const std::string& stage, int64_t crop, int64_t multiple, const std::string& whose) {
  if ((crop / 4) % multiple != 0)
    throw_usage(stage + ".crop_size " + std::to_string(crop) + ": its LQ side " + std::to_string(crop / 4) +
                " must be a multiple of " + whose + " " + std::to_string(multiple) + " (crop_size a multiple of " +
                std::to_string(4 * multiple) + ")");
}

}  // namespace rass::train
