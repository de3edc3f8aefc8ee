// Test helpers for the ResShift-family training stages (sinsr, resshift):
// a reference fixture file, and the check of a network's gradients against
// its gradient norms (every tensor) and whole gradients (some tensors).
#pragma once
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "nn/torch_doctest.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"

namespace rass::test {

struct RefFile {
  std::shared_ptr<SafeTensorsFile> f;
  std::string path;
  explicit RefFile(const std::string& p) : f(SafeTensorsFile::open(p)), path(p) {}
  torch::Tensor get(const std::string& n) const {
    const auto* v = f->find(n);
    REQUIRE_MESSAGE(v, n);
    return model::to_tensor(*v, path).to(torch::kFloat);
  }
  bool has(const std::string& n) const { return f->find(n) != nullptr; }
};

// The tensor names of make_sinsr_fixture.py's grad_names (joined by newlines, as character codes).
inline std::vector<std::string> ref_grad_names(const RefFile& names_file) {
  const torch::Tensor codes = names_file.get("grad_names").to(torch::kLong);
  std::string joined;
  for (int64_t i = 0; i < codes.numel(); ++i) joined += char(codes[i].item<int64_t>());
  std::vector<std::string> names;
  std::stringstream ss(joined);
  for (std::string n; std::getline(ss, n);) names.push_back(n);
  return names;
}

// grads (by name) against ref's "<p>grad_norms" (in `names` order) and
// "<p>grad.<name>" where present. Returns a line for MESSAGE.
inline std::string check_ref_grads(const std::map<std::string, torch::Tensor>& grads, const std::vector<std::string>& names,
                                   const RefFile& ref, const std::string& p) {
  REQUIRE(names.size() == grads.size());
  const torch::Tensor norms = ref.get(p + "grad_norms").to(torch::kDouble);
  const double top = norms.max().item<double>();
  double worst_norm = 0, worst_full = 0;
  int full = 0, zero = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    INFO(names[i]);
    REQUIRE(grads.count(names[i]) == 1);
    const torch::Tensor g = grads.at(names[i]);
    REQUIRE(g.defined());
    const double rn = norms[int64_t(i)].item<double>(), mn = g.to(torch::kDouble).norm().item<double>();
    if (rn < 1e-5 * top) {
      // A bias added per channel right before a GroupNorm of one channel per
      // group (the 32-channel level: 32 groups) changes nothing: its true
      // gradient is 0, and both sides hold rounding only.
      CHECK(mn < 1e-5 * top);
      ++zero;
      continue;
    }
    const double err = std::abs(mn - rn) / std::max(rn, 1e-12);
    worst_norm = std::max(worst_norm, err);
    CHECK(err < 2e-4);
    if (ref.has(p + "grad." + names[i])) {
      const torch::Tensor r = ref.get(p + "grad." + names[i]);
      const double scale = std::max(r.abs().max().item<double>(), 1e-12);
      const double e = (g - r).abs().max().item<double>() / scale;
      worst_full = std::max(worst_full, e);
      CHECK(e < 5e-4);
      ++full;
    }
  }
  std::ostringstream o;
  o << "gradient norms of " << names.size() << " tensors within " << worst_norm << " relative; " << full
    << " whole gradients within " << worst_full << " of their largest element; " << zero
    << " gradients 0 but for rounding on both sides";
  return o.str();
}

}  // namespace rass::test
