// rass::nn::GroupNorm (rass/nn/group_norm.hpp): its channels-last path equals
// LibTorch's group norm (fp32 and bf16, with and without affine parameters,
// inputs far from zero mean) and stays channels-last; the module has
// torch::nn::GroupNorm's parameters and takes LibTorch's own path on the CPU.
// The CUDA case (unit.nn.cuda_group_norm) runs the module where the path is
// taken: on a GPU, with a channels-last input.
#include "torch_doctest.hpp"
#include "test_support.hpp"

#include <set>
#include <string>

#include "rass/nn/group_norm.hpp"

namespace {

// Relative max error of `got` against LibTorch's group norm of x in float64.
double err_vs_reference(const torch::Tensor& got, const torch::Tensor& x, int64_t groups, const torch::Tensor& w,
                        const torch::Tensor& b, double eps) {
  auto d = [](const torch::Tensor& t) { return t.defined() ? t.to(torch::kCPU, torch::kDouble) : t; };
  const torch::Tensor want = at::group_norm(d(x).contiguous(), groups, d(w), d(b), eps);
  return (got.to(torch::kCPU, torch::kDouble) - want).abs().max().item<double>() / want.abs().max().item<double>();
}

}  // namespace

TEST_CASE("group_norm_channels_last equals LibTorch's group norm and stays channels-last") {
  torch::manual_seed(5);
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    for (bool affine : {false, true}) {
      for (double offset : {0.0, 40.0}) {  // far from zero mean: E[x^2] - mean^2 must still hold
        INFO("dtype " << dtype << ", affine " << affine << ", offset " << offset);
        const torch::Tensor x =
            (torch::randn({2, 12, 5, 7}) * 3 + offset).to(dtype).contiguous(at::MemoryFormat::ChannelsLast);
        torch::Tensor w, b;
        if (affine) {
          w = torch::randn({12}).to(dtype);
          b = torch::randn({12}).to(dtype);
        }
        const torch::Tensor y = rass::nn::group_norm_channels_last(x, 4, w, b, 1e-6);
        CHECK(y.sizes() == x.sizes());
        CHECK((y.scalar_type() == dtype));
        CHECK(y.is_contiguous(at::MemoryFormat::ChannelsLast));
        // Measured here (LibTorch 2.11, CPU): fp32 3.3e-7 at most (Welford);
        // bf16 2.3e-3 at most, the output's own rounding (8-bit mantissa;
        // the reference is the bf16 input's exact group norm). Bounds ~3x.
        const double e = err_vs_reference(y, x, 4, w, b, 1e-6);
        MESSAGE("relative error " << e);
        CHECK(e < (dtype == torch::kFloat ? 1e-6 : 6e-3));
      }
    }
  }
}

TEST_CASE("rass::nn::GroupNorm: torch::nn::GroupNorm's parameters; LibTorch's path off CUDA") {
  torch::manual_seed(6);
  rass::nn::GroupNorm mine(torch::nn::GroupNormOptions(4, 12).eps(1e-5));
  torch::nn::GroupNorm theirs(torch::nn::GroupNormOptions(4, 12).eps(1e-5));
  auto names = [](torch::nn::Module& m) {
    std::set<std::string> out;
    for (const auto& p : m.named_parameters()) out.insert(p.key() + ":" + std::to_string(p.value().numel()));
    return out;
  };
  CHECK(names(*mine) == names(*theirs));
  torch::NoGradGuard no_grad;
  mine->weight.normal_();
  mine->bias.normal_();
  theirs->weight.copy_(mine->weight);
  theirs->bias.copy_(mine->bias);
  const torch::Tensor x = torch::randn({2, 12, 5, 7}).contiguous(at::MemoryFormat::ChannelsLast);
  CHECK_FALSE(rass::nn::group_norm_takes_channels_last(x));  // the CPU: LibTorch's own kernel
  CHECK(torch::equal(mine(x), theirs(x)));
  const torch::Tensor x3 = torch::randn({2, 12, 9});
  CHECK(torch::equal(mine(x3), theirs(x3)));
}

TEST_CASE("GroupNorm on CUDA keeps channels-last and equals LibTorch's") {
  if (!torch::cuda::is_available())
    rass::test::skip("no CUDA device (torch::cuda::is_available() is false: CPU-only LibTorch or no GPU)");
  torch::manual_seed(7);
  torch::NoGradGuard no_grad;
  const torch::Device cuda(torch::kCUDA, 0);
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    INFO("dtype " << dtype);
    rass::nn::GroupNorm gn(torch::nn::GroupNormOptions(32, 128).eps(1e-6));
    gn->weight.normal_();
    gn->bias.normal_();
    gn->to(cuda, dtype);
    const torch::Tensor x =
        (torch::randn({2, 128, 33, 20}) * 2 + 5).to(cuda, dtype).contiguous(at::MemoryFormat::ChannelsLast);
    CHECK(rass::nn::group_norm_takes_channels_last(x));
    const torch::Tensor y = gn(x);
    CHECK(y.is_contiguous(at::MemoryFormat::ChannelsLast));
    const double e = err_vs_reference(y, x, 32, gn->weight, gn->bias, 1e-6);
    MESSAGE("relative error " << e);
    CHECK(e < (dtype == torch::kFloat ? 1e-5 : 1.5e-2));  // not yet measured on a GPU: looser
    // NCHW input: LibTorch's kernel.
    CHECK_FALSE(rass::nn::group_norm_takes_channels_last(x.contiguous()));
    // With gradients wanted: LibTorch's kernel, so backward works.
    {
      torch::AutoGradMode on(true);
      gn->weight.set_requires_grad(true);
      gn(x).to(torch::kFloat).sum().backward();
      CHECK(gn->weight.grad().defined());
      gn->weight.set_requires_grad(false);
    }
  }
}
