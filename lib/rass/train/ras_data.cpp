#include "rass/train/ras_data.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include "rass/core/error.hpp"
#include "rass/degrade/pil_resize.hpp"
#include "rass/degrade/record.hpp"
#include "rass/io/image_io.hpp"
#include "rass/model/restore_size.hpp"

namespace rass::train {

std::vector<int> released_min_sizes(int crop_size) {
  // The config's eval: [int(x * 0.1 * 512) for x in range(5, 21)], in doubles as Python computes it.
  std::vector<int> v;
  for (int x = 5; x <= 20; ++x) v.push_back(int(double(x) * 0.1 * double(crop_size)));
  return v;
}

std::pair<int, int> shortest_edge_shape(int h, int w, int short_edge, int max_size) {
  const double size = short_edge;
  const double scale = size / std::min(h, w);
  double nh, nw;
  if (h < w) nh = size, nw = scale * w;
  else nh = scale * h, nw = size;
  if (std::max(nh, nw) > max_size) {
    const double s = double(max_size) / std::max(nh, nw);
    nh *= s;
    nw *= s;
  }
  return {int(nh + 0.5), int(nw + 0.5)};
}

LabelMap resize_label_nearest(const LabelMap& in, int out_w, int out_h) {
  // ATen's nearest index: floor(dst * scale) with scale = float(in) / out,
  // clamped to in - 1 (UpSample.h nearest_idx; its fast paths for equal and
  // doubled sizes give the same indices).
  auto index = [](int in_size, int out_size) {
    std::vector<int> idx(static_cast<size_t>(out_size));
    const float scale = float(in_size) / float(out_size);
    for (int d = 0; d < out_size; ++d) idx[size_t(d)] = std::min(int(std::floor(float(d) * scale)), in_size - 1);
    return idx;
  };
  const std::vector<int> xs = index(in.width, out_w), ys = index(in.height, out_h);
  LabelMap out;
  out.width = out_w;
  out.height = out_h;
  out.v.resize(size_t(out_w) * size_t(out_h));
  for (int y = 0; y < out_h; ++y)
    for (int x = 0; x < out_w; ++x) out.v[size_t(y) * size_t(out_w) + size_t(x)] = in.at(xs[size_t(x)], ys[size_t(y)]);
  return out;
}

namespace {

// Crop (x0, y0, cw, ch), mirrored horizontally when `flip`.
void crop_flip(const Image& img, const LabelMap& lab, int x0, int y0, int cw, int ch, bool flip, Image& io, LabelMap& lo) {
  io = Image(cw, ch, 3, 8);
  lo.width = cw;
  lo.height = ch;
  lo.v.assign(size_t(cw) * size_t(ch), 0);
  for (int y = 0; y < ch; ++y)
    for (int x = 0; x < cw; ++x) {
      const int sx = x0 + (flip ? cw - 1 - x : x), sy = y0 + y;
      std::memcpy(io.u8() + (size_t(y) * size_t(cw) + size_t(x)) * 3, img.u8() + (size_t(sy) * size_t(img.width) + size_t(sx)) * 3, 3);
      lo.v[size_t(y) * size_t(cw) + size_t(x)] = lab.at(sx, sy);
    }
}

// Bottom/right padding to size x size: 128 in the image, `ignore` in the label.
void pad_to(const Image& img, const LabelMap& lab, int size, int ignore, Image& io, LabelMap& lo) {
  io = Image(size, size, 3, 8);
  std::fill(io.data.begin(), io.data.end(), uint8_t(128));
  lo.width = lo.height = size;
  lo.v.assign(size_t(size) * size_t(size), ignore);
  for (int y = 0; y < img.height; ++y) {
    std::memcpy(io.u8() + size_t(y) * size_t(size) * 3, img.u8() + size_t(y) * size_t(img.width) * 3, size_t(img.width) * 3);
    std::copy(lab.v.begin() + ptrdiff_t(y) * lab.width, lab.v.begin() + ptrdiff_t(y + 1) * lab.width,
              lo.v.begin() + ptrdiff_t(y) * size);
  }
}

}  // namespace

void crop_flip_pad(const Image& img, const LabelMap& lab, int x0, int y0, int cw, int ch, bool flip, int crop_size,
                   int ignore, Image& img_out, LabelMap& lab_out) {
  Image ci;
  LabelMap cl;
  crop_flip(img, lab, x0, y0, cw, ch, flip, ci, cl);
  pad_to(ci, cl, crop_size, ignore, img_out, lab_out);
}

RasData::RasData(const RasDataConfig& c, uint64_t seed) : c_(c), seed_(seed) {
  if (c_.num_classes < 1) throw_usage("ras data: num_classes must be positive");
  if (c_.crop_size < 1 || c_.crop_size > 8192) throw_usage("ras.crop_size must be 1..8192");
  if (c_.max_size < 1) throw_usage("ras.max_size must be positive");
  if (c_.min_sizes.empty()) c_.min_sizes = released_min_sizes(c_.crop_size);
  for (int s : c_.min_sizes)
    if (s < 1 || s > 65535) throw_usage("ras.min_sizes must hold integers 1..65535");
  if (c_.ignore < 0) throw_usage("ras data: the ignore label must be >= 0");
  // An empty name is no preset: it trained on clean crops without a word
  // (the other stages refuse it too).
  if (c_.preset.empty()) throw_usage("ras.preset is empty: name a preset (rass, the default), or none for clean crops");
  degrade_on_ = c_.preset != "none";
  if (degrade_on_) {
    degrade_ = degrade::make_preset(c_.preset);
    if (degrade_.scale != 1)
      throw_usage("ras.preset '" + c_.preset + "' has scale " + std::to_string(degrade_.scale) +
                  ": the LQ crop must keep the label's size (use a scale-1 preset such as rass)");
    degrade::validate(degrade_);
    if (c_.crop_size < degrade::min_input_side(degrade_))
      throw_usage("ras.crop_size " + std::to_string(c_.crop_size) + " is smaller than preset '" + c_.preset +
                  "' accepts (" + std::to_string(degrade::min_input_side(degrade_)) + ")");
  }
  items_ = list_image_pairs(c_, "image/label pairs");
}

std::pair<Image, LabelMap> RasData::load(size_t i) const {
  const ImagePair& p = items_.at(i);
  Image img = model::to_rgb8(read_image(p.image), p.image);
  const Image raw = read_label_image(p.label);
  if (raw.channels != 1)
    throw_bad_input(p.label, "is a colour image; a label map has one channel of class indices (palette PNGs read as indices)");
  if (raw.width != img.width || raw.height != img.height)
    throw_bad_input(p.label, "is " + std::to_string(raw.width) + "x" + std::to_string(raw.height) + " but its image " +
                                 p.image + " is " + std::to_string(img.width) + "x" + std::to_string(img.height));
  LabelMap lab;
  lab.width = raw.width;
  lab.height = raw.height;
  lab.v.resize(raw.samples());
  for (size_t k = 0; k < raw.samples(); ++k) {
    const int r = raw.depth == 16 ? int(raw.u16()[k]) : int(raw.u8()[k]);
    int v = r;
    if (c_.reduce_zero_label) v = r == 0 ? c_.ignore : r == 255 ? 255 : r - 1;  // mmseg: 0 -> 255, 255 stays
    if (v != c_.ignore && v >= c_.num_classes)
      throw_bad_input(p.label, "label " + std::to_string(v) + (v != r ? " (raw " + std::to_string(r) + ")" : "") +
                                   " at x=" + std::to_string(k % size_t(raw.width)) + ", y=" + std::to_string(k / size_t(raw.width)) +
                                   " is not a class of the model's " + std::to_string(c_.num_classes) + " (0.." +
                                   std::to_string(c_.num_classes - 1) + ", or " + std::to_string(c_.ignore) + " = ignore)" +
                                   (c_.reduce_zero_label ? "" : "; ADE20K's raw annotations need reduce_zero_label"));
    lab.v[k] = v;
  }
  return {std::move(img), std::move(lab)};
}

void RasData::check_labels() const {
  for (size_t i = 0; i < items_.size(); ++i) (void)load(i);
}

RasSample RasData::sample(size_t item, int64_t step, int64_t sample) const {
  auto [img, lab] = load(item);
  const std::string draw_key = "step " + std::to_string(step) + " sample " + std::to_string(sample);
  Rng rng(seed_, draw_key, "ras-augment");
  // ResizeShortestEdge ("choice"), PIL bilinear for the image, nearest for the label.
  const int edge = c_.min_sizes[size_t(rng.below(c_.min_sizes.size()))];
  const auto [nh, nw] = shortest_edge_shape(img.height, img.width, edge, c_.max_size);
  if (nh != img.height || nw != img.width) {
    img = pil_resize(img, nw, nh, PilFilter::bilinear);
    lab = resize_label_nearest(lab, nw, nh);
  }
  // RandomCrop "absolute": (min(h, crop), min(w, crop)) at a uniform offset.
  const int ch = std::min(nh, c_.crop_size), cw = std::min(nw, c_.crop_size);
  const int y0 = int(rng.below(uint64_t(nh - ch + 1)));
  const int x0 = int(rng.below(uint64_t(nw - cw + 1)));
  const degrade::ColorAugDraws color = degrade::draw_color_aug(degrade::ColorAugSsd{}, rng);
  const bool flip = c_.flip && rng.below(2) == 1;
  Image ci;
  LabelMap cl;
  crop_flip(img, lab, x0, y0, cw, ch, flip, ci, cl);
  // Colour before the padding: the mapper pads after every augmentation.
  if (c_.color_aug) ci = degrade::apply_color_aug(ci, color);
  RasSample s;
  s.key = items_[item].key;
  pad_to(ci, cl, c_.crop_size, c_.ignore, s.hq, s.label);
  std::set<int> present;
  for (int32_t v : s.label.v)
    if (v != c_.ignore) present.insert(v);
  s.classes.assign(present.begin(), present.end());
  if (degrade_on_) {
    const std::string key = s.key + "@" + draw_key;
    const degrade::Record rec = degrade::sample_record(degrade_, seed_, key, s.hq.width, s.hq.height, 3);
    s.lq = degrade::apply_record(s.hq, rec, key);
  } else {
    s.lq = s.hq;
  }
  return s;
}

}  // namespace rass::train
