#include "rass/metrics/iqa_metrics.hpp"

#include <cmath>

#include "rass/metrics/psnr_ssim.hpp"

namespace rass::metrics {

namespace {

IqaValue finite_or(double v, const char* why) { return {v, std::isfinite(v) ? "" : why}; }

IqaValue psnr(const Image& a, const Image& b, const IqaSettings& s) {
  return finite_or(psnr_pyiqa(a, b, false, s.crop_border), "");
}
IqaValue psnry(const Image& a, const Image& b, const IqaSettings& s) {
  return finite_or(psnr_pyiqa(a, b, true, s.crop_border), "");
}
IqaValue ssim(const Image& a, const Image& b, const IqaSettings& s) {
  return finite_or(ssim_pyiqa(a, b, true, s.crop_border), "");
}
IqaValue ssimc(const Image& a, const Image& b, const IqaSettings& s) {
  return finite_or(ssim_pyiqa(a, b, false, s.crop_border), "");
}
IqaValue psnr_bsr(const Image& a, const Image& b, const IqaSettings& s) {
  return finite_or(psnr_basicsr(a, b, s.crop_border, s.y_channel), "identical images (mse 0)");
}
IqaValue ssim_bsr(const Image& a, const Image& b, const IqaSettings& s) {
  return finite_or(ssim_basicsr(a, b, s.crop_border, s.y_channel), "");
}
IqaValue niqe_metric(const Image& a, const Image&, const IqaSettings& s) {
  const NiqeResult r = niqe(a, *s.niqe, s.crop_border);
  return {r.value, r.reason};
}

}  // namespace

const std::vector<IqaMetric>& iqa_metrics() {
  static const std::vector<IqaMetric> table = {
      {"psnr", true, "pyiqa, RGB in [0,1], 10 log10(1/(mse+1e-8))", psnr},
      {"psnry", true, "pyiqa, Y = 0.299R+0.587G+0.114B (full range), data range 1", psnry},
      {"ssim", true, "pyiqa, on round(255 Y) of YIQ, ReLU on contrast-structure", ssim},
      {"ssimc", true, "pyiqa, on RGB x 255, ReLU on contrast-structure", ssimc},
      {"psnr@basicsr", true, "BasicSR, [0,255] float64, 255^2/mse, inf when equal", psnr_bsr},
      {"ssim@basicsr", true, "BasicSR, 11x11 Gaussian sigma 1.5, valid region, mean over channels", ssim_bsr},
      {"niqe", false, "MATLAB/BasicSR, rounded limited-range Y, 96x96 blocks", niqe_metric},
  };
  return table;
}

const IqaMetric* find_iqa_metric(const std::string& name) {
  for (const IqaMetric& m : iqa_metrics())
    if (name == m.name) return &m;
  return nullptr;
}

std::string iqa_metric_list() {
  std::string s;
  for (const IqaMetric& m : iqa_metrics()) s += (s.empty() ? "" : ", ") + std::string(m.name);
  return s;
}

}  // namespace rass::metrics
