// Connected regions of a binary mask, and SAM's small-region clean-up
// (segment_anything.utils.amg.remove_small_regions, which calls OpenCV's
// connectedComponentsWithStats with 8-connectivity). Torch-free, so the
// GPU-host build (no OpenCV) has it too.
#pragma once
#include <cstdint>
#include <vector>

namespace rass {

// 8-connected components of the pixels where `fg` is non-zero (w x h, one
// byte per pixel, row-major). `labels` gets 0 for background and 1..N for the
// components, numbered as OpenCV numbers them (by each component's first 2x2
// block, blocks in raster order);
// `sizes[k]` is component k+1's pixel count. Returns N.
int label_regions_8(const uint8_t* fg, int w, int h, std::vector<int32_t>& labels, std::vector<int64_t>& sizes);

enum class SmallRegionMode { holes, islands };

// remove_small_regions(mask, min_area, mode) in place on a 0/1 mask:
//  holes:   connected regions of the mask's complement smaller than
//           min_area (the outside too, when it is that small) become mask;
//  islands: connected regions of the mask smaller than min_area are
//           dropped; when every region is that small, the largest stays
//           (the first in that numbering among equals).
// Returns whether any region was that small (the reference's "changed": true
// even when the pixels come out the same).
bool remove_small_regions(std::vector<uint8_t>& mask, int w, int h, int64_t min_area, SmallRegionMode mode);

// SAM 2's clean-up of low-resolution mask logits (SAM2Transforms.
// postprocess_masks with max_hole_area = max_sprinkle_area = max_area, which
// SAM2AutomaticMaskGenerator sets from min_mask_region_area): 8-connected
// regions of logit <= threshold with at most max_area pixels become
// threshold + 10 (holes filled), regions of logit > threshold with at most
// max_area pixels threshold - 10 (sprinkles removed); both found on the
// logits as given. In place on w x h row-major floats; returns whether any
// region changed.
bool fill_small_logit_regions(float* logits, int w, int h, int64_t max_area, float threshold = 0.0f);

}  // namespace rass
