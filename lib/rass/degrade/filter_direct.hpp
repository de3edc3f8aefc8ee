// Direct 2-D correlation with reflect-101 borders, for the large blur kernels
// (13 px and more) of record version 2. OpenCV's filter2D switches to a tiled
// DFT at that size, which took about half of the degradation model's time at
// 512x512; summing the taps directly is 2-4x faster there (measured in
// scripts/bench-degrade.sh).
//
// The result depends on nothing but the kernel and the input: taps are summed
// in one fixed order (row-major, each pair k[t]·(in[+d] + in[-d]) of a
// point-symmetric kernel together), in float32 without fused multiply-adds
// (this file is compiled with -ffp-contract=off), so the AVX2 and the baseline
// SSE2 compilations give the same bits (a test compares them).
#pragma once
#include "rass/degrade/kernels.hpp"
#include "rass/degrade/planes.hpp"

namespace rass::degrade {

// out(y, x) = sum_{i,j} k[i][j] · in(reflect101(y + i - r), reflect101(x + j - r)),
// r = size / 2, for every channel; any image size (also smaller than r).
// `baseline_only` runs the SSE2 compilation even where AVX2 is present (tests).
Planes filter2d_direct(const Planes& in, const Kernel& k, bool baseline_only = false);

}  // namespace rass::degrade
