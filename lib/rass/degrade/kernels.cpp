#include "rass/degrade/kernels.hpp"

#include <cmath>

#include "rass/core/error.hpp"

namespace rass::degrade {

const char* kernel_type_name(KernelType t) {
  switch (t) {
    case KernelType::iso: return "iso";
    case KernelType::aniso: return "aniso";
    case KernelType::generalized_iso: return "generalized_iso";
    case KernelType::generalized_aniso: return "generalized_aniso";
    case KernelType::plateau_iso: return "plateau_iso";
    case KernelType::plateau_aniso: return "plateau_aniso";
    case KernelType::sinc: return "sinc";
    case KernelType::gaussian: return "gaussian";
  }
  return "?";
}

KernelType parse_kernel_type(const std::string& name) {
  for (KernelType t : {KernelType::iso, KernelType::aniso, KernelType::generalized_iso,
                       KernelType::generalized_aniso, KernelType::plateau_iso, KernelType::plateau_aniso,
                       KernelType::sinc, KernelType::gaussian})
    if (name == kernel_type_name(t)) return t;
  throw_usage("unknown kernel type '" + name +
              "' (expected iso, aniso, generalized_iso, generalized_aniso, plateau_iso, plateau_aniso, sinc)");
}

const std::vector<KernelType>& mixed_kernel_types() {
  static const std::vector<KernelType> types = {KernelType::iso, KernelType::aniso,
                                                KernelType::generalized_iso, KernelType::generalized_aniso,
                                                KernelType::plateau_iso, KernelType::plateau_aniso};
  return types;
}

void sigma_matrix(double sx, double sy, double theta, double& a, double& b, double& c) {
  // R diag(sx^2, sy^2) R^T with R = [[cos, -sin], [sin, cos]].
  const double co = std::cos(theta), si = std::sin(theta);
  const double dx = sx * sx, dy = sy * sy;
  a = co * co * dx + si * si * dy;
  b = co * si * (dx - dy);
  c = si * si * dx + co * co * dy;
}

bool separable_factor(const KernelParams& p, std::vector<double>& g) {
  if (p.type != KernelType::iso && p.type != KernelType::gaussian) return false;
  if (p.sigma_x != p.sigma_y || p.size < 1 || p.size % 2 == 0 || !(p.sigma_x > 0)) return false;
  // exp(-(x^2 + y^2) / (2 s^2)) = exp(-x^2 / (2 s^2)) exp(-y^2 / (2 s^2)); normalising
  // each factor normalises the product.
  const int r = p.size / 2;
  g.assign(p.size, 0.0);
  double sum = 0;
  for (int i = -r; i <= r; ++i) sum += g[i + r] = std::exp(-0.5 * i * i / (p.sigma_x * p.sigma_x));
  for (double& v : g) v /= sum;
  return true;
}

Kernel make_kernel(const KernelParams& p) {
  if (p.size < 1 || p.size % 2 == 0) throw_runtime("make_kernel: kernel size must be odd and positive, got " + std::to_string(p.size));
  Kernel out;
  out.size = p.size;
  out.k.assign(size_t(p.size) * p.size, 0.0);
  const int r = p.size / 2;

  if (p.type == KernelType::sinc) {
    if (!(p.cutoff > 0)) throw_runtime("make_kernel: sinc cutoff must be positive");
    for (int y = -r; y <= r; ++y)
      for (int x = -r; x <= r; ++x) {
        const double d = std::hypot(double(x), double(y));
        out.k[(y + r) * p.size + (x + r)] =
            d == 0 ? p.cutoff * p.cutoff / (4 * M_PI) : p.cutoff * std::cyl_bessel_j(1.0, p.cutoff * d) / (2 * M_PI * d);
      }
  } else {
    double a, b, c;
    sigma_matrix(p.sigma_x, p.sigma_y, p.theta, a, b, c);
    const double det = a * c - b * b;
    if (!(det > 0)) throw_runtime("make_kernel: kernel sigmas must be positive");
    const double ia = c / det, ib = -b / det, ic = a / det;  // inverse covariance
    for (int y = -r; y <= r; ++y)
      for (int x = -r; x <= r; ++x) {
        // The reference's grid holds (x, y) = (column, row) offsets.
        const double q = ia * x * x + 2 * ib * x * y + ic * y * y;
        double v;
        switch (p.type) {
          case KernelType::iso:
          case KernelType::aniso:
          case KernelType::gaussian: v = std::exp(-0.5 * q); break;
          case KernelType::generalized_iso:
          case KernelType::generalized_aniso: v = std::exp(-0.5 * std::pow(q, p.beta)); break;
          default: v = 1.0 / (std::pow(q, p.beta) + 1.0); break;  // plateau
        }
        out.k[(y + r) * p.size + (x + r)] = v;
      }
  }
  double sum = 0;
  for (double v : out.k) sum += v;
  for (double& v : out.k) v /= sum;
  return out;
}

}  // namespace rass::degrade
