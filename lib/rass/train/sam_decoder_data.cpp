#include "rass/train/sam_decoder_data.hpp"

#include <algorithm>
#include <set>

#include "rass/core/error.hpp"
#include "rass/degrade/cv_resize.hpp"
#include "rass/degrade/pil_resize.hpp"
#include "rass/degrade/record.hpp"
#include "rass/io/image_io.hpp"
#include "rass/model/restore_size.hpp"
#include "rass/model/sam_prompts.hpp"
#include "rass/train/same_size_lq.hpp"

namespace rass::train {

Image object_mask(const Image& labels, int value) {
  Image m(labels.width, labels.height, 1, 8);
  const size_t n = size_t(labels.width) * size_t(labels.height);
  for (size_t i = 0; i < n; ++i) {
    const int v = labels.depth == 16 ? int(labels.u16()[i]) : int(labels.u8()[i]);
    m.u8()[i] = v == value ? 255 : 0;
  }
  return m;
}

void sam_decoder_prompts(const Image& mask, int points, bool want_points, bool want_box, Rng& rng,
                         SamDecoderSample& out) {
  const int w = mask.width, h = mask.height;
  const uint8_t* m = mask.u8();
  const size_t n = size_t(w) * size_t(h);
  const uint8_t top = n ? *std::max_element(m, m + n) : 0;
  out.points.clear();
  out.box.reset();
  if (top == 0) return;
  if (want_points) {
    std::vector<uint32_t> px;
    for (size_t i = 0; i < n; ++i)
      if (m[i] == top) px.push_back(uint32_t(i));
    for (const uint32_t i : model::sam_sample_pixels(px, points, rng))
      out.points.push_back({double(i % uint32_t(w)), double(i / uint32_t(w))});
  }
  if (want_box) {
    int x0 = w, y0 = h, x1 = -1, y1 = -1;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        if (m[size_t(y) * size_t(w) + size_t(x)] > 0) x0 = std::min(x0, x), y0 = std::min(y0, y), x1 = std::max(x1, x), y1 = std::max(y1, y);
    out.box = std::array<double, 4>{double(x0), double(y0), double(x1), double(y1)};
  }
}

SamDecoderData::SamDecoderData(const SamDecoderDataConfig& c, uint64_t seed) : c_(c), seed_(seed) {
  if (c_.masks != "labels" && c_.masks != "binary")
    throw_usage("sam-decoder.masks must be labels (one object per label value) or binary (one object's 0/255 mask per file), got '" +
                c_.masks + "'");
  if (c_.size < 16 || c_.size > 4096) throw_usage("sam-decoder.size must be 16..4096");
  if (c_.points < 1 || c_.points > 64) throw_usage("sam-decoder.points must be 1..64");
  if (c_.prompt != "points" && c_.prompt != "box" && c_.prompt != "box+points")
    throw_usage("sam-decoder.prompt must be points, box or box+points, got '" + c_.prompt + "'");
  if (c_.severity < 1 || c_.severity > 5) throw_usage("sam-decoder.severity must be 1..5");
  want_points_ = c_.prompt != "box";
  want_box_ = c_.prompt != "points";
  if (c_.preset.empty())  // it trained on clean images without a word
    throw_usage("sam-decoder.preset is empty: name a preset (glesam, the default), or none for clean images");
  if (c_.preset != "none")
    degrade_.push_back(same_size_lq_preset("sam-decoder", c_.preset, c_.severity, c_.size));
  items_ = list_image_pairs(c_, "image/mask pairs");
}

std::pair<Image, Image> SamDecoderData::load(size_t i) const {
  const ImagePair& p = items_.at(i);
  Image img = model::to_rgb8(read_image(p.image), p.image);
  // A binary mask is read as cv2.imread(GRAYSCALE) reads it: gray levels
  // (a 1-bit PNG as 0/255); a label map as its indices.
  Image map = c_.masks == "binary" ? drop_alpha(read_image(p.label)) : read_label_image(p.label);
  if (map.channels != 1)
    throw_bad_input(p.label, "has " + std::to_string(map.channels) +
                                 " channels; a mask or label map has one (palette PNGs read as indices)");
  if (map.width != img.width || map.height != img.height)
    throw_bad_input(p.label, "is " + std::to_string(map.width) + "x" + std::to_string(map.height) + " but its image " +
                                 p.image + " is " + std::to_string(img.width) + "x" + std::to_string(img.height));
  if (c_.masks == "binary" && map.depth != 8)
    throw_bad_input(p.label, "is a 16-bit map; a binary mask is 8-bit with the object 255");
  return {std::move(img), std::move(map)};
}

std::vector<int> SamDecoderData::objects(const Image& map, const std::string& name) const {
  const size_t n = size_t(map.width) * size_t(map.height);
  if (c_.masks == "binary") {
    if (std::find(map.u8(), map.u8() + n, uint8_t(255)) == map.u8() + n)
      throw_bad_input(name, "has no pixel of 255: a binary mask marks its object 255 (0/1 masks: use masks \"labels\" "
                            "with skip [0, 255])");
    return {-1};
  }
  std::set<int> present;
  for (size_t i = 0; i < n; ++i) {
    const int v = map.depth == 16 ? int(map.u16()[i]) : int(map.u8()[i]);
    if (std::find(c_.skip.begin(), c_.skip.end(), v) == c_.skip.end()) present.insert(v);
  }
  if (present.empty()) throw_bad_input(name, "holds no object: every value is in sam-decoder.skip");
  return std::vector<int>(present.begin(), present.end());
}

namespace {
bool any_pixel(const Image& m) {
  return std::any_of(m.data.begin(), m.data.end(), [](uint8_t v) { return v > 0; });
}
}  // namespace

std::string SamDecoderData::vanished() const {
  return "holds no object that stays visible at " + std::to_string(c_.size) + "x" + std::to_string(c_.size) +
         " (sam-decoder.size)";
}

Image SamDecoderData::resized_mask(const Image& map, int object) const {
  const Image m = object < 0 ? map : object_mask(map, object);
  if (m.width == c_.size && m.height == c_.size) return m;
  return cv_resize_linear(m, c_.size, c_.size);
}

std::string SamDecoderData::check() const {
  size_t binary_looking = 0;
  for (size_t i = 0; i < items_.size(); ++i) {
    const auto [img, map] = load(i);
    if (c_.masks == "labels" && map.depth == 8 &&
        std::all_of(map.data.begin(), map.data.end(), [](uint8_t v) { return v == 0 || v == 255; }))
      ++binary_looking;
    const std::vector<int> objs = objects(map, items_[i].label);
    if (std::none_of(objs.begin(), objs.end(), [&](int o) { return any_pixel(resized_mask(map, o)); }))
      throw_bad_input(items_[i].label, vanished());
  }
  const bool skips_255 = std::find(c_.skip.begin(), c_.skip.end(), 255) != c_.skip.end();
  const bool skips_0 = std::find(c_.skip.begin(), c_.skip.end(), 0) != c_.skip.end();
  if (binary_looking == items_.size() && skips_255 && !skips_0)
    return "every mask holds only 0 and 255, and with masks \"labels\" and skip [255] each one's object is its "
           "background 0: 0/255 object masks need masks \"binary\"";
  return "";
}

SamDecoderSample SamDecoderData::sample(size_t item, int64_t step, int64_t sample) const {
  auto [img, map] = load(item);
  const std::string draw_key = "step " + std::to_string(step) + " sample " + std::to_string(sample);
  Rng rng(seed_, draw_key, "sam-decoder");
  SamDecoderSample s;
  s.key = items_[item].key;
  // The object: the first of a random order whose mask survives the resize.
  std::vector<int> objs = objects(map, items_[item].label);
  bool found = false;
  for (size_t k = 0; k < objs.size() && !found; ++k) {
    std::swap(objs[k], objs[k + rng.below(objs.size() - k)]);
    s.target = resized_mask(map, objs[k]);
    found = any_pixel(s.target);
    s.object = objs[k];
  }
  if (!found) throw_bad_input(items_[item].label, vanished());
  sam_decoder_prompts(s.target, c_.points, want_points_, want_box_, rng, s);
  Image hq = img.width == c_.size && img.height == c_.size ? img : pil_resize(img, c_.size, c_.size, PilFilter::bicubic);
  if (degrade_.empty()) {
    s.lq = std::move(hq);
    return s;
  }
  // Preset glesam draws each sample's downsampling factor.
  s.lq = same_size_lq(degrade_[0], seed_, s.key + "@" + draw_key, hq, &s.scale);
  return s;
}

}  // namespace rass::train
