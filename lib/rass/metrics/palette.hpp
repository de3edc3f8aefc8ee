// Class colours for label maps people look at (rass-segment --color,
// --overlay): ADE20K's 150 colours in mmsegmentation's order (ADE20KDataset
// PALETTE) for 150-class models, else the PASCAL VOC colour map (the bit
// interleaving of the class index, VOCdevkit's labelcolormap), which gives
// any number of distinct colours. Torch-free.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "rass/core/image.hpp"

namespace rass::metrics {

using Rgb = std::array<uint8_t, 3>;

// ADE20K's palette (150 entries), mmseg's order.
const std::vector<Rgb>& ade20k_palette();
// VOC colour map entry of class `k`.
Rgb voc_color(uint32_t k);
// The palette of a model with `classes` classes: ADE20K's for 150, else VOC's.
std::vector<Rgb> class_palette(size_t classes);

// An RGB image of a label map (1 channel, 8- or 16-bit) in the palette's
// colours; labels outside the palette (255 = ignore) are black.
Image colorize(const Image& labels, const std::vector<Rgb>& palette);

// The image blended with the label colours (alpha = weight of the colours,
// rounded to nearest), with a legend of the classes present (a swatch and the
// name, most frequent first, at most `max_entries`) drawn at the top left in a
// built-in 5x7 bitmap font (ASCII; other bytes drawn as '?').
Image overlay(const Image& rgb, const Image& labels, const std::vector<Rgb>& palette,
              const std::vector<std::string>& names, double alpha = 0.5, size_t max_entries = 12);

}  // namespace rass::metrics
