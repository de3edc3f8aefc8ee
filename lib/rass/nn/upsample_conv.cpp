#include "rass/nn/upsample_conv.hpp"

#include <atomic>
#include <cstdlib>
#include <string>

#include <ATen/ATen.h>

#include "rass/core/error.hpp"

namespace rass::nn {

namespace {

// One axis's three taps (dimension `dim` of t, size 3) as the two that phase
// `odd` sees: even x[i-1] <- t0, x[i] <- t1 + t2; odd x[i] <- t0 + t1, x[i+1] <- t2.
at::Tensor taps_for_phase(const at::Tensor& t, int64_t dim, bool odd) {
  const at::Tensor t0 = t.narrow(dim, 0, 1), t1 = t.narrow(dim, 1, 1), t2 = t.narrow(dim, 2, 1);
  return odd ? at::cat({t0 + t1, t2}, dim) : at::cat({t0, t1 + t2}, dim);
}

std::atomic<int> g_phases{-1};  // an UpsamplePhases; -1: not yet read from the environment

}  // namespace

at::Tensor upsample2x_conv3x3(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  TORCH_CHECK(x.dim() == 4 && weight.dim() == 4 && weight.size(2) == 3 && weight.size(3) == 3 &&
                  weight.size(1) == x.size(1),
              "upsample2x_conv3x3: x [N, C, H, W] and a [O, C, 3, 3] weight");
  const int64_t N = x.size(0), H = x.size(2), W = x.size(3), O = weight.size(0);
  // The taps are summed by plain adds in float32 (float64 stays float64; not
  // a matrix product, which TF32 could round) and rounded to the weight's
  // dtype once; on the weight's device from no host data (a copy from the
  // host cannot be recorded into a CUDA graph).
  const at::Tensor wa = weight.to(weight.scalar_type() == at::kDouble ? at::kDouble : at::kFloat);
  at::Tensor out;  // made from the first phase's output: the convolution's dtype and layout
  for (int64_t a = 0; a < 2; ++a) {
    const at::Tensor rows = taps_for_phase(wa, 2, a == 1);  // [O, C, 2, 3]
    for (int64_t b = 0; b < 2; ++b) {
      const at::Tensor k = taps_for_phase(rows, 3, b == 1).to(weight.scalar_type());  // [O, C, 2, 2]
      // Padding 1 around x: output (i, j) of the 2x2 convolution covers source
      // rows i-1, i and columns j-1, j; phase (a, b) starts a rows, b columns on.
      const at::Tensor y = at::conv2d(x, k, bias, /*stride=*/1, /*padding=*/1).slice(2, a, a + H).slice(3, b, b + W);
      if (!out.defined())
        out = at::empty({N, O, 2 * H, 2 * W}, y.options().memory_format(y.suggest_memory_format()));
      const int64_t sN = out.stride(0), sO = out.stride(1), sH = out.stride(2), sW = out.stride(3);
      out.as_strided({N, O, H, W}, {sN, sO, 2 * sH, 2 * sW}, out.storage_offset() + a * sH + b * sW).copy_(y);
    }
  }
  return out;
}

UpsamplePhases upsample_phases() {
  int v = g_phases.load(std::memory_order_relaxed);
  if (v < 0) {
    const char* e = std::getenv("RASS_UPSAMPLE_PHASES");
    const std::string s = e ? e : "";
    if (s != "" && s != "0" && s != "1" && s != "force")
      throw Error(ExitCode::usage, "RASS_UPSAMPLE_PHASES=" + s +
                                       ": expected 0 (diffusers' two steps), 1 (the default: one step) or force");
    v = int(s == "0" ? UpsamplePhases::off : s == "force" ? UpsamplePhases::force : UpsamplePhases::on);
    int expected = -1;
    if (!g_phases.compare_exchange_strong(expected, v)) v = expected;  // a setter came first
  }
  return UpsamplePhases(v);
}

bool upsample_phases_on() { return upsample_phases() != UpsamplePhases::off; }

void set_upsample_phases(UpsamplePhases mode) { g_phases.store(int(mode)); }

bool upsample_phases_pay(const at::Tensor& x) {
  return x.dim() == 4 && (x.size(0) * x.size(2) * x.size(3) >= 1024 || upsample_phases() == UpsamplePhases::force);
}

}  // namespace rass::nn
