#include "rass/train/scr_data.hpp"

#include <cstring>
#include <filesystem>

#include <torch/torch.h>

#include "rass/batch/inputs.hpp"
#include "rass/core/error.hpp"
#include "rass/core/folder_check.hpp"
#include "rass/core/rng.hpp"
#include "rass/degrade/record.hpp"
#include "rass/io/image_files.hpp"
#include "rass/io/image_io.hpp"
#include "rass/model/restore_size.hpp"
#include "rass/text/caption_pack.hpp"

namespace rass::train {

namespace fs = std::filesystem;

torch::Tensor rgb_to_signed(const Image& rgb) {
  torch::Tensor t = torch::from_blob(const_cast<uint8_t*>(rgb.u8()), {rgb.height, rgb.width, 3}, torch::kUInt8);
  return t.permute({2, 0, 1}).to(torch::kFloat).div(255).mul(2).sub(1).contiguous();
}

namespace {

Image crop_image(const Image& img, int x0, int y0, int w, int h, bool flip) {
  Image out(w, h, img.channels, img.depth);
  const size_t px = size_t(img.channels) * (img.depth / 8);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const int sx = flip ? x0 + w - 1 - x : x0 + x;
      std::memcpy(out.data.data() + (size_t(y) * w + x) * px, img.data.data() + (size_t(y0 + y) * img.width + sx) * px,
                  px);
    }
  return out;
}

}  // namespace

// An id past the tokenizer's vocabulary failed at the step as the text
// encoder's ("tokenizer and text encoder do not match"), naming no file.
void ScrData::check_token_ids(const text::CaptionPack& p, const std::string& path) const {
  for (const auto id : p.token_ids)
    if (id < 0 || int64_t(id) >= vocab_)
      throw_bad_input(path, "token id " + std::to_string(int64_t(id)) + " is outside the text encoder's vocabulary of " +
                                std::to_string(vocab_) + " (a pack made with another tokenizer, or damaged?)");
}

ScrData::ScrData(const ScrDataConfig& cfg, const text::ClipTokenizer& tokenizer, int64_t max_tokens, int64_t vocab)
    : cfg_(cfg) {
  if (cfg.crop < 8 || cfg.crop > 8192) throw_usage("crop_size " + std::to_string(cfg.crop) + ": expected 8..8192");
  degrade_ = degrade::make_preset(cfg.preset);
  const degrade::Record probe = degrade::sample_record(degrade_, cfg.seed, "probe", int(cfg.crop), int(cfg.crop), 3);
  if (probe.out_width != cfg.crop || probe.out_height != cfg.crop)
    throw_usage("preset '" + cfg.preset + "' makes the LQ at another size than the HQ (scale " +
                std::to_string(degrade_.scale) + "); SCR trains on LQ/HQ pairs of one size (use rass or lqseg-*)");
  if (cfg.crop < degrade::min_input_side(degrade_))
    throw_usage("crop_size " + std::to_string(cfg.crop) + " is below preset '" + cfg.preset + "''s smallest input side " +
                std::to_string(degrade::min_input_side(degrade_)));
  default_ids_.clear();
  for (int id : tokenizer.encode_padded(cfg.prompt, int(max_tokens))) default_ids_.push_back(id);
  vocab_ = vocab > 0 ? vocab : tokenizer.vocab_size();

  batch::InputSpec spec;
  spec.allow_stdin = false;
  spec.roles = {{"hq", {"hq", "gt", "image"}, true, ""}};
  if (!cfg.manifest.empty()) {
    if (!cfg.hq_dir.empty() || !cfg.pack_dir.empty())
      throw_usage("give either a manifest or hq_dir/pack_dir, not both");
    spec.manifest = cfg.manifest;
    spec.roles.push_back({"pack", {"pack"}, cfg.scl, ".h5"});
  } else {
    if (cfg.hq_dir.empty()) throw_usage("no training data: set hq_dir (and pack_dir) or manifest");
    require_folder(cfg.hq_dir, "hq_dir");
    spec.inputs = {cfg.hq_dir};
    if (!cfg.pack_dir.empty()) {
      require_folder(cfg.pack_dir, "pack_dir");
      // With SCL images and packs pair strictly (a missing or orphan pack is
      // an error); without, an image may go without one (it then uses
      // `prompt`): its pack is looked up below.
      if (cfg.scl) {
        spec.roles.push_back({"pack", {"pack"}, true, ".h5"});
        spec.inputs.push_back(cfg.pack_dir);
      }
    } else if (cfg.scl) {
      throw_usage("SCL needs caption-map packs: set pack_dir (or a manifest with \"pack\"), or turn scl off");
    }
  }
  size_t with_mask = 0;
  for (const batch::Item& it : batch::collect_items(spec)) {
    if (!it.error.empty()) throw Error(ExitCode::bad_input, "training data: " + it.error);
    ScrItem s;
    s.key = it.key;
    s.hq = it.paths[0];
    if (it.paths.size() > 1) {
      s.pack = it.paths[1];
    } else if (!cfg.pack_dir.empty()) {
      const std::string p = (fs::path(cfg.pack_dir) / (it.key + ".h5")).string();
      std::error_code ec;
      if (fs::is_regular_file(p, ec)) s.pack = p;
    }
    if (!s.pack.empty()) {
      const text::CaptionPack p = text::read_caption_pack(s.pack);
      if (int64_t(p.token_ids.size()) != max_tokens)
        throw_bad_input(s.pack, "token_ids hold " + std::to_string(p.token_ids.size()) + " ids; the text encoder takes " +
                                    std::to_string(max_tokens));
      check_token_ids(p, s.pack);
      if (p.width < cfg.crop || p.height < cfg.crop)
        throw_bad_input(s.pack, "the image is " + std::to_string(p.width) + "x" + std::to_string(p.height) +
                                    ", smaller than crop_size " + std::to_string(cfg.crop) + " (images are not padded)");
      s.pack_w = p.width;
      s.pack_h = p.height;
      for (size_t t = 0; t < p.term_count(); ++t)
        if (p.has_mask[t]) {
          bool any_token = false;
          for (int64_t i = 0; i < p.max_length; ++i) any_token |= p.token_mask[t * p.max_length + i] != 0;
          if (any_token) {
            ++with_mask;
            break;
          }
        }
    } else if (cfg.scl) {
      throw_bad_input(s.hq, "has no caption-map pack; SCL needs one per item (or turn scl off)");
    }
    items_.push_back(std::move(s));
  }
  if (items_.empty()) throw_bad_input(cfg.manifest.empty() ? cfg.hq_dir : cfg.manifest, "no training items");
  if (cfg.scl && with_mask == 0)
    throw Error(ExitCode::bad_input,
                "SCL is on but no pack of the " + std::to_string(items_.size()) +
                    " items has a term with a mask and tokens in the prompt (e.g. " + items_[0].pack +
                    "); make packs from label maps with rass-caption-map, or turn scl off");
}

ScrSample ScrData::sample(size_t index, int64_t step, int64_t global_index) const {
  const ScrItem& item = items_.at(index);
  const std::string draw = "step " + std::to_string(step) + " sample " + std::to_string(global_index);
  Image hq = model::to_rgb8(read_image(item.hq), item.hq);
  const int64_t C = cfg_.crop;
  if (hq.width < C || hq.height < C)
    throw_bad_input(item.hq, "is " + std::to_string(hq.width) + "x" + std::to_string(hq.height) + ", smaller than crop_size " +
                                 std::to_string(C) + " (images are not padded)");
  Rng crop_rng(cfg_.seed, draw, "crop"), flip_rng(cfg_.seed, draw, "flip");
  const int x0 = int(crop_rng.below(uint64_t(hq.width - C + 1))), y0 = int(crop_rng.below(uint64_t(hq.height - C + 1)));
  const bool flip = cfg_.flip && flip_rng.uniform() < 0.5;
  const Image hq_crop = crop_image(hq, x0, y0, int(C), int(C), flip);
  const degrade::Record rec = degrade::sample_record(degrade_, cfg_.seed, item.key + "@" + std::to_string(step) + "." +
                                                                               std::to_string(global_index),
                                                     int(C), int(C), 3);
  const Image lq = degrade::apply_record(hq_crop, rec, item.hq);

  ScrSample s;
  s.key = item.key;
  s.draw = draw;
  s.hq = rgb_to_signed(hq_crop);
  s.lq = rgb_to_signed(lq);
  if (item.pack.empty()) {
    s.ids = default_ids_;
    return s;
  }
  const text::CaptionPack p = text::read_caption_pack(item.pack);
  if (p.width != hq.width || p.height != hq.height)
    throw_bad_input(item.pack, "is for a " + std::to_string(p.width) + "x" + std::to_string(p.height) + " image but " +
                                   item.hq + " is " + std::to_string(hq.width) + "x" + std::to_string(hq.height));
  check_token_ids(p, item.pack);  // (the file may have changed since the run began)
  s.ids.assign(p.token_ids.begin(), p.token_ids.end());
  if (!cfg_.scl) return s;
  using torch::indexing::Slice;
  const torch::Tensor all = torch::from_blob(const_cast<uint8_t*>(p.masks.data()),
                                             {int64_t(p.term_count()), p.height, p.width}, torch::kUInt8);
  for (size_t t = 0; t < p.term_count(); ++t) {
    if (!p.has_mask[t]) continue;
    SclTarget tg;
    for (int64_t i = 0; i < p.max_length; ++i)
      if (p.token_mask[t * p.max_length + i]) tg.positions.push_back(i);
    if (tg.positions.empty()) continue;  // cut by truncation at max_length
    torch::Tensor m = all[int64_t(t)].index({Slice(y0, y0 + C), Slice(x0, x0 + C)});
    if (flip) m = m.flip({1});
    if (!m.any().item<bool>()) continue;  // the term's region is outside this crop
    tg.mask = m.to(torch::kFloat).contiguous();
    s.targets.push_back(std::move(tg));
  }
  return s;
}

}  // namespace rass::train
