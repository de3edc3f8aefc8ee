// rass::nn::upsample2x_conv3x3 (rass/nn/upsample_conv.hpp): a 3x3 convolution
// of the nearest x2 upsampled image, computed as four 2x2 phase
// convolutions, equals diffusers' two steps (nearest, then the convolution)
// in float64 to rounding, keeps channels-last, and in float32 and bf16 errs
// from the float64 value by about what the two-step path does. Upsample2D
// takes it in inference only (autograd recording, enabled unmerged LoRA adapters, a
// size other than twice the input's, an input too small to pay for it, or
// the switch off: the two steps). The
// CUDA case (unit.nn.cuda_upsample_phases) checks it on a GPU, channels-last bf16.
#include "torch_doctest.hpp"
#include "test_support.hpp"

#include <torch/nn/functional/upsampling.h>

#include "rass/nn/blocks.hpp"
#include "rass/nn/lora.hpp"
#include "rass/nn/upsample_conv.hpp"

namespace {

namespace F = torch::nn::functional;

// diffusers' Upsample2D: nearest x2, then conv3x3 with padding 1.
torch::Tensor two_steps(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  const torch::Tensor up = F::interpolate(
      x, F::InterpolateFuncOptions().mode(torch::kNearest).scale_factor(std::vector<double>{2.0, 2.0}));
  return at::conv2d(up, w, b, 1, 1);
}

double rel_err(const torch::Tensor& got, const torch::Tensor& want) {
  return (got.to(torch::kCPU, torch::kDouble) - want).abs().max().item<double>() / want.abs().max().item<double>();
}

// Restores the switch whatever a test set it to.
struct PhasesSwitch {
  rass::nn::UpsamplePhases before = rass::nn::upsample_phases();
  ~PhasesSwitch() { rass::nn::set_upsample_phases(before); }
};

}  // namespace

TEST_CASE("upsample2x_conv3x3 equals nearest x2 then conv3x3") {
  torch::manual_seed(11);
  // Odd, unequal sizes (every phase meets both borders), bias, O != C, batch 2.
  const torch::Tensor x = torch::randn({2, 6, 5, 7}, torch::kDouble);
  const torch::Tensor w = torch::randn({4, 6, 3, 3}, torch::kDouble);
  const torch::Tensor b = torch::randn({4}, torch::kDouble);
  const torch::Tensor want = two_steps(x, w, b);
  const torch::Tensor got = rass::nn::upsample2x_conv3x3(x, w, b);
  REQUIRE(got.sizes() == want.sizes());
  CHECK(rel_err(got, want) < 1e-13);
  // No bias; one pixel wide.
  const torch::Tensor x1 = torch::randn({1, 6, 1, 1}, torch::kDouble);
  CHECK(rel_err(rass::nn::upsample2x_conv3x3(x1, w, torch::Tensor()), two_steps(x1, w, torch::Tensor())) < 1e-13);
  // Channels-last in, channels-last out, the same values.
  const torch::Tensor xc = x.contiguous(at::MemoryFormat::ChannelsLast);
  const torch::Tensor gc = rass::nn::upsample2x_conv3x3(xc, w, b);
  CHECK(gc.is_contiguous(at::MemoryFormat::ChannelsLast));
  CHECK(rel_err(gc, want) < 1e-13);
  // A wrong weight is refused.
  CHECK_THROWS(rass::nn::upsample2x_conv3x3(x, torch::randn({4, 5, 3, 3}, torch::kDouble), b));
}

TEST_CASE("upsample2x_conv3x3 in float32 and bf16 errs about as the two steps do") {
  torch::manual_seed(12);
  const torch::Tensor x = torch::randn({2, 64, 9, 12}, torch::kDouble);
  const torch::Tensor w = torch::randn({48, 64, 3, 3}, torch::kDouble) * 0.05;
  const torch::Tensor b = torch::randn({48}, torch::kDouble);
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    INFO("dtype " << dtype);
    const torch::Tensor xd = x.to(dtype), wd = w.to(dtype), bd = b.to(dtype);
    // The reference: the exact result for the rounded inputs.
    const torch::Tensor want = two_steps(xd.to(torch::kDouble), wd.to(torch::kDouble), bd.to(torch::kDouble));
    const double phases = rel_err(rass::nn::upsample2x_conv3x3(xd, wd, bd), want);
    const double steps = rel_err(two_steps(xd, wd, bd), want);
    MESSAGE("relative error: phases " << phases << ", two steps " << steps);
    // Measured here (LibTorch 2.11, CPU): in the same order as the two steps
    // (the summed taps round once more). Bounds: 3x the two steps' error, with
    // a floor of the dtype's rounding.
    CHECK(phases < std::max(3 * steps, dtype == torch::kFloat ? 1e-6 : 1e-2));
  }
}

TEST_CASE("Upsample2D takes the phases in inference only") {
  PhasesSwitch restore_switch;
  torch::manual_seed(13);
  rass::nn::Upsample2D up(8, 6);
  const torch::Tensor x = torch::randn({1, 8, 32, 40});  // 1280 source pixels: the phases pay
  torch::Tensor inference_out;
  {
    torch::NoGradGuard no_grad;
    up->conv->weight.normal_();
    up->conv->bias.normal_();
    rass::nn::set_upsample_phases(rass::nn::UpsamplePhases::on);
    inference_out = up(x);
    CHECK(torch::equal(inference_out, rass::nn::upsample2x_conv3x3(x, up->conv->weight, up->conv->bias)));
    // An explicit size of twice the input's: the phases too; any other: the two steps.
    CHECK(torch::equal(up(x, std::vector<int64_t>{64, 80}), inference_out));
    const torch::Tensor odd = up(x, std::vector<int64_t>{63, 80});
    CHECK(odd.sizes() == torch::IntArrayRef({1, 6, 63, 80}));
    // Too small to pay for the phases' kernels (24 source pixels): the two steps, bit for bit.
    CHECK_FALSE(rass::nn::upsample_phases_pay(torch::randn({1, 8, 4, 6})));
    CHECK(rass::nn::upsample_phases_pay(torch::randn({2, 8, 16, 32})));  // over the batch
    const torch::Tensor small = torch::randn({1, 8, 4, 6});
    CHECK(torch::equal(up(small), two_steps(small, up->conv->weight, up->conv->bias)));
    // RASS_UPSAMPLE_PHASES=force: the phases at any size (the tiny test models' end to end).
    rass::nn::set_upsample_phases(rass::nn::UpsamplePhases::force);
    CHECK(torch::equal(up(small), rass::nn::upsample2x_conv3x3(small, up->conv->weight, up->conv->bias)));
    rass::nn::set_upsample_phases(rass::nn::UpsamplePhases::on);
    // Switched off: diffusers' two steps, bit for bit.
    rass::nn::set_upsample_phases(rass::nn::UpsamplePhases::off);
    CHECK(torch::equal(up(x), two_steps(x, up->conv->weight, up->conv->bias)));
    rass::nn::set_upsample_phases(rass::nn::UpsamplePhases::on);
  }
  {
    // An unmerged LoRA adapter: the two steps plus the adapter's own path.
    rass::nn::Upsample2D with_lora(8, 6);
    CHECK(rass::nn::add_lora(*with_lora, "a", 2, 2.0, {"conv"}) == 1);
    torch::NoGradGuard no_grad;
    auto& adapter = with_lora->conv->adapters.at("a");
    adapter.B.normal_();  // non-zero: the adapter adds something
    const torch::Tensor up_x = F::interpolate(
        x, F::InterpolateFuncOptions().mode(torch::kNearest).scale_factor(std::vector<double>{2.0, 2.0}));
    const torch::Tensor lora =
        at::conv2d(at::conv2d(up_x, adapter.A, torch::Tensor(), 1, 1), adapter.B) * adapter.scale();
    const torch::Tensor unmerged = with_lora(x);
    CHECK(torch::equal(unmerged, two_steps(x, with_lora->conv->weight, with_lora->conv->bias) + lora));
    // Merged into the weight (rass-restore's default): the phases, on the merged weight.
    rass::nn::merge_lora(*with_lora, "a");
    CHECK(torch::equal(with_lora(x), rass::nn::upsample2x_conv3x3(x, with_lora->conv->weight, with_lora->conv->bias)));
    CHECK(rel_err(with_lora(x), unmerged.to(torch::kDouble)) < 1e-5);
    // Disabled (unmerged again): it adds nothing, so the phases on the base weight.
    rass::nn::unmerge_lora(*with_lora, "a");
    rass::nn::set_lora_enabled(*with_lora, "a", false);
    CHECK(torch::equal(with_lora(x), rass::nn::upsample2x_conv3x3(x, with_lora->conv->weight, with_lora->conv->bias)));
  }
  // Autograd recording: the two steps, and gradients flow.
  up->conv->weight.set_requires_grad(true);
  const torch::Tensor y = up(x);
  CHECK(torch::equal(y.detach(), two_steps(x, up->conv->weight.detach(), up->conv->bias.detach())));
  y.sum().backward();
  CHECK(up->conv->weight.grad().defined());
  CHECK(rel_err(y.detach(), inference_out.to(torch::kDouble)) < 1e-5);
}

TEST_CASE("upsample2x_conv3x3 on CUDA equals the two steps in channels-last bf16") {
  if (!torch::cuda::is_available())
    rass::test::skip("no CUDA device (torch::cuda::is_available() is false: CPU-only LibTorch or no GPU)");
  torch::manual_seed(14);
  torch::NoGradGuard no_grad;
  const torch::Device cuda(torch::kCUDA, 0);
  const torch::Tensor x = torch::randn({2, 128, 33, 20}, torch::kDouble);
  const torch::Tensor w = torch::randn({96, 128, 3, 3}, torch::kDouble) * 0.03;
  const torch::Tensor b = torch::randn({96}, torch::kDouble);
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    for (bool nhwc : {false, true}) {
      INFO("dtype " << dtype << ", channels-last " << nhwc);
      torch::Tensor xd = x.to(cuda, dtype);
      if (nhwc) xd = xd.contiguous(at::MemoryFormat::ChannelsLast);
      const torch::Tensor wd = w.to(cuda, dtype), bd = b.to(cuda, dtype);
      const torch::Tensor want = two_steps(xd.to(torch::kCPU, torch::kDouble), wd.to(torch::kCPU, torch::kDouble),
                                           bd.to(torch::kCPU, torch::kDouble));
      const torch::Tensor got = rass::nn::upsample2x_conv3x3(xd, wd, bd);
      CHECK(got.is_contiguous(nhwc ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous));
      const double phases = rel_err(got, want), steps = rel_err(two_steps(xd, wd, bd), want);
      MESSAGE("relative error: phases " << phases << ", two steps " << steps);
      // cuDNN may use TF32 for float32 convolutions (LibTorch's default allows it): the floor covers it.
      CHECK(phases < std::max(3 * steps, dtype == torch::kFloat ? 2e-3 : 1.5e-2));
    }
  }
}
