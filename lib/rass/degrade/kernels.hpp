// Blur kernels of the Real-ESRGAN degradation model (REFERENCE.md 1), computed
// in float64 like the reference (numpy) and normalised to sum 1.
//   Sigma = R(theta) diag(sx^2, sy^2) R(theta)^T, q(x) = x^T Sigma^-1 x on a
//   grid centred at 0 (size odd);
//   gaussian: exp(-q/2); generalized: exp(-(q^beta)/2); plateau: 1/(q^beta + 1);
//   sinc (circular low-pass): wc J1(wc r) / (2 pi r), wc^2/(4 pi) at r = 0.
#pragma once
#include <string>
#include <vector>

namespace rass::degrade {

enum class KernelType { iso, aniso, generalized_iso, generalized_aniso, plateau_iso, plateau_aniso, sinc, gaussian };

// Names as in the reference's kernel_list ("generalized_iso", ...). "gaussian"
// is an isotropic Gaussian of explicit size used by the named blur degradation.
const char* kernel_type_name(KernelType t);
KernelType parse_kernel_type(const std::string& name);  // throws Error(usage)
// The six mixed-kernel types in the reference's kernel_list order.
const std::vector<KernelType>& mixed_kernel_types();

struct KernelParams {
  KernelType type = KernelType::iso;
  int size = 21;         // odd
  double sigma_x = 1.0;  // gaussian-family
  double sigma_y = 1.0;  // equal to sigma_x for *_iso
  double theta = 0.0;    // rotation, radians (0 for *_iso)
  double beta = 1.0;     // generalized / plateau shape
  double cutoff = 0.0;   // sinc: omega_c in radians
};

struct Kernel {
  int size = 1;
  std::vector<double> k;  // size*size, row-major, k[(y)*size + x], y and x from -size/2
  double at(int dy, int dx) const { return k[(dy + size / 2) * size + (dx + size / 2)]; }
};

// The kernel of `p.size` x `p.size` (not zero-padded: padding to 21 does not
// change reflect-padded filtering, so the pipeline filters with the true size).
Kernel make_kernel(const KernelParams& p);
// For kernels that are an outer product g g^T (isotropic Gaussian, including
// "gaussian"), fills the normalised 1-D factor g and returns true: filtering
// with two 1-D passes costs 2k instead of k^2 per pixel, same result up to float
// rounding.
bool separable_factor(const KernelParams& p, std::vector<double>& g);
// The 2x2 covariance [[a, b], [b, c]] of sigma_matrix2.
void sigma_matrix(double sx, double sy, double theta, double& a, double& b, double& c);

}  // namespace rass::degrade
