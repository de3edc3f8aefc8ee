// Additive noise of the Real-ESRGAN model (BasicSR's *_pt functions), then a
// clamp to [0, 1]. Each function draws only from the Rng it is given.
#pragma once
#include <cstdint>

#include "rass/core/rng.hpp"
#include "rass/degrade/planes.hpp"

namespace rass::degrade {

// img += N(0, (sigma/255)^2), independently per channel, or one field shared
// by all channels when `gray`; then clamp to [0, 1].
void add_gaussian_noise(Planes& img, double sigma, bool gray, Rng& rng);

// Poisson noise: q = clamp(round(255 x), 0, 255)/255; vals = 2^ceil(log2(#unique q));
// noise = Poisson(q*vals)/vals - q; img += scale * noise; clamp to [0, 1].
// With `gray`, q is the (torchvision) luma 0.2989 R + 0.587 G + 0.114 B and the
// same noise goes to every channel. Returns vals (recorded for the curious).
int add_poisson_noise(Planes& img, double scale, bool gray, Rng& rng);

}  // namespace rass::degrade
