// OSEDiff's colour corrections (my_utils/wavelet_color_fix.py, after
// StableSR), on [0,1] float images [1, 3, H, W] — the restored image
// `target` and the (upscaled) LQ input `source` of the same size:
//   adain:   per channel, (target - mean_t) / std_t * std_s + mean_s, with
//            std = sqrt(unbiased variance + 1e-5);
//   wavelet: target's high frequencies (target minus its level-5 low pass)
//            + source's level-5 low pass; a level blurs with the 3x3 kernel
//            [1,2,1]x[1,2,1]/16 at dilation 2^i (i = 0..4) after replicate
//            padding by 2^i.
// The result is clamped to [0, 1] (what the reference does before ToPILImage).
#pragma once
#include <torch/types.h>

namespace rass::model {

enum class ColorFix { adain, wavelet, none };

torch::Tensor adain_color_fix(const torch::Tensor& target, const torch::Tensor& source);
torch::Tensor wavelet_color_fix(const torch::Tensor& target, const torch::Tensor& source);
// Dispatch; `none` returns target unchanged.
torch::Tensor color_fix(ColorFix kind, const torch::Tensor& target, const torch::Tensor& source);

}  // namespace rass::model
