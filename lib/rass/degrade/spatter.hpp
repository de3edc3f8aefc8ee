// ImageNet-C spatter (imagecorruptions 1.1.2): water drops (severities 1-3)
// or mud (4-5) from a smoothed Gaussian "liquid" layer. Its own file: the
// water's edges go through OpenCV (Canny, distance transform, histogram
// equalisation), and OpenCV is not in the GPU-host build.
#pragma once
#include "rass/degrade/corruptions.hpp"

namespace rass::degrade {

struct SpatterParams {
  double mean = 0.65, std = 0.3, sigma = 4, threshold = 0.69;
  double gain = 0.6;  // water: scale of the drop mask; mud: sigma of its blur (record field "gain", 0..20)
  bool mud = false;
};
// The layer N(mean, std) of the image's size, blurred (skimage gaussian,
// mode nearest) and zeroed below threshold. Water: its 8-bit edges'
// distance map, equalised, embossed and blurred, times the layer, normalised
// to `gain`, added in pale turquoise (175, 238, 238). Mud: the layer's mask
// blurred by `gain`, kept from 0.8, blends in mud brown (63, 42, 20).
// A gray image gets the luma of the colour (the reference's 2-D path).
void corrupt_spatter(Planes& img, const SpatterParams& p, Draws& draws);

}  // namespace rass::degrade
