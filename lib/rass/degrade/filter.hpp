// 2-D correlation with reflect padding (torch F.pad 'reflect' == OpenCV
// BORDER_REFLECT_101), as the reference's filter2D. All kernels here are
// point-symmetric, so correlation and convolution agree.
#pragma once
#include "rass/degrade/kernels.hpp"
#include "rass/degrade/planes.hpp"

namespace rass::degrade {

// Filters every channel with `k` (float32 arithmetic, like the reference).
Planes filter2d(const Planes& in, const Kernel& k);
// Separable filter: out = colᵀ * (row * in); used when the kernel is an outer product.
Planes filter_separable(const Planes& in, const std::vector<double>& row, const std::vector<double>& col);

}  // namespace rass::degrade
