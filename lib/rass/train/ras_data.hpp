// The training data of rass-train ras (RASS stage 2, REFERENCE.md section 4
// "Data"): image + label-map pairs, augmented as Mask2Former's semantic
// dataset mapper does under the released config (ResizeShortestEdge with a
// "choice" from a list, max 2048; RandomCrop "absolute"; ColorAugSSD;
// horizontal flip; pad to the crop with 128 / ignore), then the LQ crop made
// online by the degradation library (preset "rass": Real-ESRGAN second order
// at scale 1, as RASS's GPU pipeline does after padding).
//
// Torch-free: samples are 8-bit images and int32 label maps; the stage turns
// them into tensors. Every random draw of a sample comes from rass::Rng keyed
// by (seed, step, global sample index) (stage.hpp's determinism contract), so
// a sample is a pure function of its arguments.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rass/core/image.hpp"
#include "rass/core/rng.hpp"
#include "rass/degrade/color_aug.hpp"
#include "rass/degrade/config.hpp"
#include "rass/train/image_pairs.hpp"

namespace rass::train {

// The pairs (image_pairs.hpp): two directories paired by item key or a
// JSON-lines manifest with "image" and "label" fields (also "hq" / "gt").
struct RasDataConfig : ImagePairSource {
  RasDataConfig() { stage = "ras"; }
  bool reduce_zero_label = false;  // ADE20K raw annotations: 0 -> 255, v -> v - 1
  int num_classes = 0;             // labels must be < num_classes or `ignore`
  int ignore = 255;
  int crop_size = 512;
  std::vector<int> min_sizes;  // shortest-edge choices; empty: released_min_sizes(crop_size)
  int max_size = 2048;
  bool color_aug = true, flip = true;
  std::string preset = "rass";  // degradation preset; "none": LQ = the HQ crop
};

// The released list int(x * 0.1 * 512) for x in 5..20 (256, 307, ..., 1024)
// with 512 replaced by the crop size.
std::vector<int> released_min_sizes(int crop_size);

// detectron2 ResizeShortestEdge.get_output_shape: (new_h, new_w).
std::pair<int, int> shortest_edge_shape(int h, int w, int short_edge, int max_size);

struct LabelMap {
  int width = 0, height = 0;
  std::vector<int32_t> v;  // row-major
  int32_t at(int x, int y) const { return v[size_t(y) * size_t(width) + size_t(x)]; }
};

// Nearest resize as detectron2 resizes a float label map (torch's
// F.interpolate mode "nearest": src = min(floor(dst * (in / out)), in - 1),
// the scale in float32).
LabelMap resize_label_nearest(const LabelMap& in, int out_w, int out_h);

// The geometric part for given draws: crop (x0, y0, cw, ch) of image and
// label, horizontal flip of both when `flip`, then pad bottom/right to
// crop_size x crop_size with 128 (image) and `ignore` (label), as the dataset
// mapper's F.pad does.
void crop_flip_pad(const Image& img, const LabelMap& lab, int x0, int y0, int cw, int ch, bool flip, int crop_size,
                   int ignore, Image& img_out, LabelMap& lab_out);

struct RasSample {
  std::string key;  // the item's key
  Image hq;         // crop_size^2 RGB, 8-bit (what the label describes)
  Image lq;         // its degraded version, same size (the backbone's input)
  LabelMap label;   // crop_size^2, `ignore` where unlabelled or padded
  std::vector<int> classes;  // classes present in `label` (ascending, no ignore)
};

class RasData {
 public:
  // Lists the pairs. Throws Error(usage) for a bad setting, Error(bad_input)
  // for unreadable inputs or a bad pair (named).
  RasData(const RasDataConfig& c, uint64_t seed);
  size_t size() const { return items_.size(); }
  const std::string& key(size_t i) const { return items_[i].key; }
  // Reads every label map once: a value >= num_classes other than `ignore`
  // (after reduce_zero_label), a colour label map, or a label whose size
  // differs from its image's is Error(bad_input) naming the file. Run before
  // the first step so bad data stops a run before any training.
  void check_labels() const;
  // Sample `sample` (global index) of step `step`, from item `item`.
  RasSample sample(size_t item, int64_t step, int64_t sample) const;
  // The image and label of item i as read (RGB 8-bit; label mapped), checked.
  std::pair<Image, LabelMap> load(size_t i) const;
  const RasDataConfig& config() const { return c_; }

 private:
  RasDataConfig c_;
  uint64_t seed_;
  std::vector<ImagePair> items_;
  degrade::PipelineConfig degrade_;
  bool degrade_on_ = true;
};

}  // namespace rass::train
