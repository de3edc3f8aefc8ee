// The photometric augmentation of Mask2Former's semantic training data
// (detectron2 projects/PointRend ColorAugSSDTransform, as Mask2Former and
// RASS configure it: brightness delta 32, contrast and saturation 0.5..1.5,
// hue delta 18, RGB input). Torch-free: rass-train's RAS data pipeline uses
// it, and it needs OpenCV's 8-bit HSV conversion to match the reference.
#pragma once
#include "rass/core/image.hpp"
#include "rass/core/rng.hpp"

namespace rass::degrade {

struct ColorAugSsd {
  double brightness_delta = 32;
  double contrast_low = 0.5, contrast_high = 1.5;
  double saturation_low = 0.5, saturation_high = 1.5;
  int hue_delta = 18;
};

// Every value the transform draws, in the reference's order, so tests can
// apply a hand-chosen set. A step whose flag is false is skipped.
struct ColorAugDraws {
  bool brightness = false;
  double beta = 0;
  bool contrast_first = false;  // random.randrange(2): contrast before saturation and hue
  bool contrast = false;
  double alpha = 1;
  bool saturation = false;
  double sat_alpha = 1;
  bool hue = false;
  int hue_shift = 0;
};

// Draws the values from `rng` (the reference draws them from Python's
// `random` while it applies them; the same decisions, another generator).
ColorAugDraws draw_color_aug(const ColorAugSsd& c, Rng& rng);

// Applies the draws to an 8-bit RGB image as the reference does: each step
// on uint8 (x * alpha + beta in float32, clipped to 0..255 and truncated),
// saturation and hue through OpenCV's 8-bit BGR<->HSV (hue 0..179).
// Throws Error(bad_input) for anything but 8-bit, 3 channels.
Image apply_color_aug(const Image& rgb, const ColorAugDraws& d);

}  // namespace rass::degrade
