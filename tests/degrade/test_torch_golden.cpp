// Resize and filter against PyTorch's own F.interpolate / reflect-pad + conv2d
// (fixture from make_torch_golden.py): the reference pipeline runs these ops.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "rass/degrade/filter.hpp"
#include "rass/degrade/resize.hpp"
#include "rass/degrade/ops.hpp"

using namespace rass::degrade;

TEST_CASE("resize and filter2d match PyTorch to float precision") {
  std::ifstream f(std::string(RASS_FIXTURES) + "/degrade/torch_ops.json");
  REQUIRE(f.good());
  const nlohmann::json g = nlohmann::json::parse(f);
  Planes in(19, 15, 3);
  for (size_t i = 0; i < in.data.size(); ++i) in.data[i] = g["input"][i].get<float>();
  int checked = 0;
  for (const auto& c : g["cases"]) {
    Planes out;
    if (c["op"] == "resize") {
      out = resize(in, c["width"], c["height"], parse_resize_mode(c["mode"]),
                   c["use_factor"].get<bool>() ? c["factor"].get<double>() : 0.0);
    } else {
      Kernel k;
      k.size = c["size"];
      for (const auto& v : c["kernel"]) k.k.push_back(v.get<double>());
      out = filter2d(in, k);
    }
    const auto& want = c["out"];
    REQUIRE(want.size() == out.data.size());
    double worst = 0;
    for (size_t i = 0; i < out.data.size(); ++i) worst = std::max(worst, std::fabs(out.data[i] - want[i].get<double>()));
    INFO(c["op"].get<std::string>(), " ", c.value("mode", ""), " factor ", c.value("factor", 0.0), " -> ",
         c.value("width", 0), "x", c.value("height", 0));
    CHECK(worst < 2e-6);
    ++checked;
  }
  CHECK(checked == 38);
}

TEST_CASE("the separable path for isotropic blur equals the 2-D filter") {
  Planes in(40, 30, 3);
  for (size_t i = 0; i < in.data.size(); ++i) in.data[i] = float((i * 7919) % 1000) / 1000.f;
  Op op;
  op.kind = OpKind::blur;
  op.kernel.type = KernelType::iso;
  op.kernel.size = 21;
  op.kernel.sigma_x = op.kernel.sigma_y = 2.7;
  Planes sep = in;
  apply_op(sep, op);
  Planes full = filter2d(in, make_kernel(op.kernel));
  for (size_t i = 0; i < in.data.size(); ++i) CHECK(sep.data[i] == doctest::Approx(full.data[i]).epsilon(1e-5));
}
