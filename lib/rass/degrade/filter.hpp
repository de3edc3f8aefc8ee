// 2-D correlation with reflect padding (torch F.pad 'reflect' == OpenCV
// BORDER_REFLECT_101), as the reference's filter2D. All kernels here are
// point-symmetric, so correlation and convolution agree.
#pragma once
#include "rass/degrade/kernels.hpp"
#include "rass/degrade/planes.hpp"

namespace rass::degrade {

// Which implementation filters a record's blur: records before version 2 were
// made with OpenCV's filter2D at every kernel size (a tiled DFT from 13 px up);
// version 2 sums kernels of 13 to 21 px (the reference's sizes) directly
// (filter_direct.hpp; the same result within float rounding, 2-4x faster),
// others still through OpenCV: above 21 px the direct sum's cost grows with
// the kernel's area while the DFT's hardly does (a record may ask for 201 px).
// Replay picks the record's own, so an old record still gives its old bytes.
enum class FilterAlgo { opencv, direct_large };
// The kernel sizes the direct path takes in version 2 (part of its definition).
constexpr int kDirectFilterMinSize = 13;
constexpr int kDirectFilterMaxSize = 21;

// Filters every channel with `k` (float32 arithmetic, like the reference).
Planes filter2d(const Planes& in, const Kernel& k, FilterAlgo algo = FilterAlgo::direct_large);
// Separable filter: out = colᵀ * (row * in); used when the kernel is an outer product.
Planes filter_separable(const Planes& in, const std::vector<double>& row, const std::vector<double>& col);

}  // namespace rass::degrade
