// cv2.resize(img, (w, h)) with its default INTER_LINEAR on 8-bit images, as
// OpenCV computes it (fixed-point weights): how GleSAM's training data
// resizes an object's 0/255 mask (its soft edges are the loss's targets).
#pragma once
#include "rass/core/image.hpp"

namespace rass {

// An 8-bit image of 1 to 4 channels resized to out_w x out_h (both > 0).
// Error(usage) for a 16-bit image or a size below 1.
Image cv_resize_linear(const Image& in, int out_w, int out_h);

}  // namespace rass
