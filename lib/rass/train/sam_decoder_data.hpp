// The training data of rass-train sam-decoder (GleSAM's decoder fine-tuning,
// seed 001; its dataset/codeformer_add_maskv3_ms.py): image + mask pairs,
// one object per sample:
//   the image resized to size x size by Pillow's bicubic filter, whatever its
//   aspect; the object's 0/255 mask resized by cv2.resize's bilinear filter
//   (its soft edges are the loss's targets, v / 255);
//   `points` positive prompts drawn without replacement from the resized
//   mask's pixels of value 255 (all of them in raster order, the last
//   repeated, when there are fewer), or the tight box of its pixels above 0
//   (masks_to_boxes);
//   the LQ image made online from the resized one: preset "glesam"
//   (rass-degrade's, degrade/config.hpp) is the Real-ESRGAN second-order model with GleSAM's first-order resize
//   ([0.1, 0.2, 0.7] up/down/keep over [0.5, 1.5]), a downsampling factor
//   drawn per sample from [1, 2, 3, 3, 4, 4, 4, 4] that sizes the second
//   resize only, the final resize straight back to size x size (sinc and
//   JPEG there) and the second blur with the first order's kernel, as its
//   dataset code does; "none": the images are LQ already; or any
//   rass-degrade preset whose LQ keeps the HQ size.
// Objects: masks "labels" makes one object per value of a label map not in
// `skip` (as rass-sam --prompts-from does), a sample drawing one of them;
// masks "binary" reads each map as one object's 0..255 mask (GleSAM's
// datasets: 255 the object).
//
// Torch-free. Every draw of a sample comes from rass::Rng keyed by (seed,
// step, global sample index) (stage.hpp's determinism contract).
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rass/core/image.hpp"
#include "rass/core/rng.hpp"
#include "rass/degrade/config.hpp"
#include "rass/train/image_pairs.hpp"

namespace rass::train {

// The pairs (image_pairs.hpp): two directories paired by item key, or a
// JSON-lines manifest with "image" and "label" fields (also "lq" / "mask").
struct SamDecoderDataConfig : ImagePairSource {
  SamDecoderDataConfig() {
    stage = "sam-decoder";
    image_fields = {"image", "lq", "hq"};
    label_fields = {"label", "mask", "gt"};
  }
  std::string masks = "labels";  // labels | binary
  std::vector<int> skip{255};    // masks "labels": values that are no object
  int size = 512;
  std::string preset = "glesam";  // glesam | none | a rass-degrade preset keeping the HQ size
  int severity = 3;               // single-degradation presets (snow, fog, ...): 1..5
  std::string prompt = "points";  // points | box | box+points
  int points = 3;
};


struct SamDecoderSample {
  std::string key;
  int object = -1;  // the label value (masks "labels"); -1 for a binary mask
  int scale = 1;    // preset "glesam": the factor drawn
  Image lq;         // size x size RGB 8-bit: the decoder's image
  Image target;     // size x size gray 8-bit: the object's mask, 0..255
  std::vector<std::array<double, 2>> points;  // (x, y) in the size x size frame
  std::optional<std::array<double, 4>> box;   // x0, y0, x1, y1 (inclusive pixels)
};

// The mask of `value` in `labels` as 0/255 (masks "labels").
Image object_mask(const Image& labels, int value);
// Prompts from a resized mask (size x size, 0..255): `points` pixels of its
// largest value (255 whenever any pixel is fully inside), drawn without
// replacement by `rng` as random.sample draws (a partial Fisher-Yates
// shuffle), and the tight box of its pixels above 0. Empty when the mask is
// all 0.
void sam_decoder_prompts(const Image& mask, int points, bool want_points, bool want_box, Rng& rng,
                         SamDecoderSample& out);

class SamDecoderData {
 public:
  // Lists the pairs; Error(usage) for a bad setting, Error(bad_input) for
  // unreadable inputs or a bad pair (named).
  SamDecoderData(const SamDecoderDataConfig& c, uint64_t seed);
  size_t size() const { return items_.size(); }
  const std::string& key(size_t i) const { return items_[i].key; }
  // Reads every pair once: a label map of another size than its image, a
  // colour or 16-bit mask in binary mode, a map with no object, or one whose
  // every object vanishes at size x size is Error(bad_input) naming the file.
  // Returns a warning for the user ("" when none): masks "labels" on maps
  // that all hold only 0 and 255 (binary masks, whose object would then be
  // the background).
  std::string check() const;
  SamDecoderSample sample(size_t item, int64_t step, int64_t sample) const;
  const SamDecoderDataConfig& config() const { return c_; }

 private:
  // The image (RGB 8-bit) and its map (1 channel) as read, checked.
  std::pair<Image, Image> load(size_t i) const;
  // The objects of a map (label values, or {-1} for a binary mask); none is
  // Error(bad_input) naming the map.
  std::vector<int> objects(const Image& map, const std::string& name) const;
  Image resized_mask(const Image& map, int object) const;
  std::string vanished() const;  // the message for a map whose objects all resize to nothing
  SamDecoderDataConfig c_;
  uint64_t seed_;
  std::vector<ImagePair> items_;
  bool want_points_ = true, want_box_ = false;
  std::vector<degrade::PipelineConfig> degrade_;  // the preset's (none: empty)
};

}  // namespace rass::train
