#include "rass/train/sam_enhancer_data.hpp"

#include <cmath>
#include <filesystem>

#include "rass/batch/inputs.hpp"
#include "rass/core/error.hpp"
#include "rass/degrade/pil_resize.hpp"
#include "rass/io/image_io.hpp"
#include "rass/model/restore_size.hpp"
#include "rass/train/image_pairs.hpp"
#include "rass/train/pretrain_data.hpp"
#include "rass/train/same_size_lq.hpp"

namespace fs = std::filesystem;

namespace rass::train {

namespace {

Image load_rgb(const std::string& path) { return model::to_rgb8(read_image(path), path); }

// The image as the stage uses it: 8-bit RGB at size x size (Pillow bicubic).
Image square(const Image& img, int size) {
  if (img.width == size && img.height == size) return img;
  return pil_resize(img, size, size, PilFilter::bicubic);
}

// An LQ partner may be smaller (an x4 LQ, sizes rounded down) but shows the
// same scene: an aspect ratio more than 2% off its HQ image's is a pairing
// mistake (another image under the same key), not a degradation.
void check_pair(const Image& hq, const Image& lq, const SamEnhancerItem& it) {
  const double a = double(hq.width) / hq.height, b = double(lq.width) / lq.height;
  if (std::abs(a - b) > 0.02 * a)
    throw_bad_input(it.lq, "is " + std::to_string(lq.width) + "x" + std::to_string(lq.height) + ", another shape than its HQ image " +
                               it.hq + " (" + std::to_string(hq.width) + "x" + std::to_string(hq.height) +
                               "): an LQ image shows its HQ image's scene");
}

}  // namespace

SamEnhancerData::SamEnhancerData(const SamEnhancerDataConfig& c, uint64_t seed) : c_(c), seed_(seed) {
  if (c_.size < 16 || c_.size > 4096) throw_usage("sam-enhancer.size must be 16..4096");
  if (c_.severity < 1 || c_.severity > 5) throw_usage("sam-enhancer.severity must be 1..5");
  const bool given_lq = c_.preset == "none";
  if (!given_lq) {
    if (!c_.lq.empty())
      throw_usage("sam-enhancer.lq gives LQ images, but sam-enhancer.preset '" + c_.preset +
                  "' makes them online: set preset none to train on the given ones");
    degrade_.push_back(same_size_lq_preset("sam-enhancer", c_.preset, c_.severity, c_.size));
  }
  if (c_.images.empty() == c_.manifest.empty())
    throw_usage(c_.images.empty() ? "no training data: set sam-enhancer.images (a folder of HQ images) or sam-enhancer.manifest"
                                  : "set sam-enhancer.images or sam-enhancer.manifest, not both");
  if (!c_.manifest.empty() && !c_.lq.empty())
    throw_usage("sam-enhancer.lq pairs with sam-enhancer.images; a manifest gives each row's \"lq\"");
  if (given_lq && c_.manifest.empty() && c_.lq.empty())
    throw_usage("sam-enhancer.preset none: the LQ images are given, but sam-enhancer.lq (their folder) is not set");
  std::error_code ec;
  for (const std::string* d : {&c_.images, &c_.lq})
    if (!d->empty() && !fs::is_directory(*d, ec))
      throw_bad_input(*d, "is not a folder (sam-enhancer." + std::string(d == &c_.images ? "images" : "lq") + ")");

  if (!c_.lq.empty()) {
    // Two folders paired by key, named as the stage's settings name them.
    ImagePairSource src;
    src.images = c_.images;
    src.labels = c_.lq;
    src.match_stem = c_.match_stem;
    src.image_role = "HQ image";
    src.label_role = "LQ image";
    src.stage = "sam-enhancer";
    src.labels_key = "lq";
    for (const ImagePair& p : list_image_pairs(src, "HQ/LQ pairs")) items_.push_back({p.key, p.image, p.label});
    return;
  }
  batch::InputSpec spec;
  spec.allow_stdin = false;
  spec.roles = {{"HQ image", {"hq", "image"}, true, ""}};
  if (!c_.manifest.empty()) {
    spec.roles.push_back({"LQ image", {"lq"}, false, ""});
    spec.manifest = c_.manifest;
  } else {
    spec.inputs = {c_.images};
  }
  for (const batch::Item& b : batch::collect_items(spec)) {
    if (!b.error.empty()) throw Error(ExitCode::bad_input, "training data: " + b.error);
    SamEnhancerItem it{b.key, b.paths[0], b.paths.size() > 1 ? b.paths[1] : ""};
    if (given_lq && it.lq.empty())
      throw_bad_input(c_.manifest, "the row of " + it.hq + " has no \"lq\" image, and sam-enhancer.preset none needs one");
    if (!given_lq && !it.lq.empty())
      throw_bad_input(c_.manifest, "the row of " + it.hq + " gives an \"lq\" image, but sam-enhancer.preset '" + c_.preset +
                                       "' makes the LQ online: set preset none to train on the given ones");
    items_.push_back(std::move(it));
  }
  if (items_.empty()) throw_bad_input(c_.manifest.empty() ? c_.images : c_.manifest, "no training items");
}

void SamEnhancerData::check() const {
  for (const SamEnhancerItem& it : items_) {
    const Image hq = load_rgb(it.hq);
    if (!it.lq.empty()) check_pair(hq, load_rgb(it.lq), it);
  }
}

SamEnhancerSample SamEnhancerData::sample(size_t item, int64_t step, int64_t global_index) const {
  const SamEnhancerItem& it = items_.at(item);
  SamEnhancerSample s;
  s.key = it.key;
  const Image hq = load_rgb(it.hq);
  s.hq = square(hq, c_.size);
  if (degrade_.empty()) {
    const Image lq = load_rgb(it.lq);
    check_pair(hq, lq, it);
    s.lq = square(lq, c_.size);
    return s;
  }
  s.lq = same_size_lq(degrade_[0], seed_, it.key + "@" + sample_draw_key(step, global_index), s.hq, &s.scale);
  return s;
}

}  // namespace rass::train
