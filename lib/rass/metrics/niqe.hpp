// NIQE (Mittal et al., "Making a completely blind image quality analyzer"),
// as MATLAB's niqe_release and BasicSR compute it (REFERENCE.md 5): Y channel
// (BasicSR limited range, rounded), 96x96 blocks without overlap, local mean
// and variance with the 7x7 Gaussian window (replicate borders), 18 AGGD/GGD
// features per scale, second scale by MATLAB bicubic x0.5 with antialiasing,
// multivariate-Gaussian distance to the pristine model with the pseudo-inverse
// of the averaged covariance.
//
// Memory: the image is processed one row of blocks at a time (the Y rows of
// the block row plus the halos of the 7x7 window and of the bicubic taps),
// about 130 rows of float64 per band, never a full-size plane; the values are
// the whole-image ones (same neighbours, same arithmetic order).
#pragma once
#include <string>
#include <vector>

#include "rass/core/image.hpp"
#include "rass/metrics/color.hpp"

namespace rass::metrics {

struct NiqeParams {
  std::vector<double> mu;      // 36
  std::vector<double> cov;     // 36 x 36
  std::vector<double> window;  // 7 x 7
};
// Reads an .npz with mu_pris_param (1x36), cov_pris_param (36x36),
// gaussian_window (7x7). Throws Error(bad_input) naming the file.
NiqeParams load_niqe_params(const std::string& path);

struct NiqeResult {
  double value = 0;    // NaN when it cannot be computed
  std::string reason;  // why it is NaN
};

constexpr int kNiqeBlock = 96;
// `img` 8-bit gray or RGB; crop_border pixels removed first. Images smaller
// than one block throw Error(bad_input); flat images give NaN with a reason.
NiqeResult niqe(const Image& img, const NiqeParams& params, int crop_border = 0);
// On a [0, 255] plane already converted (for tests and other front ends).
NiqeResult niqe_plane(const Channels& y, const NiqeParams& params);

// MATLAB imresize(..., 'bicubic') with antialiasing, output ceil(n * scale).
Channels matlab_imresize(const Channels& in, double scale);
// AGGD parameters (alpha, beta_l, beta_r) of a sample, by the moment-matching
// grid search of the reference (alpha in 0.2:0.001:10).
void estimate_aggd(const std::vector<double>& v, double& alpha, double& beta_l, double& beta_r);

}  // namespace rass::metrics
