// unit.nn.cuda_checkpoint_autocast (tests/CMakeLists.txt): activation
// checkpointing on CUDA under autocast. Autocast caches its fp16 copies of
// leaf weights until the cache is cleared; the replay in the backward pass
// makes such copies outside any autocast scope, and they must not serve the
// next step after the optimizer's in-place update (nor that step's replay).
// Skips with 77 without a GPU.
#include "torch_doctest.hpp"

#include <vector>

#include <torch/torch.h>

#include "rass/nn/activation_checkpoint.hpp"
#include "rass/nn/autocast.hpp"
#include "test_support.hpp"

using namespace rass;

TEST_CASE("activation checkpointing on CUDA under fp16 autocast: an updated weight is used by the next forward and replay") {
  if (!torch::cuda::is_available()) test::skip("no CUDA device");
  const torch::Device dev(torch::kCUDA, 0);
  torch::Tensor w = torch::ones({4, 4}, torch::TensorOptions().device(dev)).requires_grad_(true);
  const torch::Tensor x = torch::ones({2, 4}, torch::TensorOptions().device(dev));
  const nn::CheckpointFn f = [w](const std::vector<torch::Tensor>& v) { return torch::matmul(v[0], w.t()); };
  for (int step = 0; step < 3; ++step) {
    CAPTURE(step);
    const float w0 = float(step + 1);  // the weight's value this step
    // Autocast on without a new scope (whose start clears the cache): only
    // the checkpoint's own clearing stands between this forward and the
    // copies its replay made in the step before.
    nn::set_cuda_autocast_state(true, c10::kHalf);
    torch::Tensor y = nn::checkpoint(f, {x}, true);
    nn::set_cuda_autocast_state(false, c10::kHalf);
    CHECK(bool(y.scalar_type() == c10::kHalf));
    CHECK(y.to(torch::kFloat).mean().item<float>() == 4 * w0);  // y = x w^T: four ones times w0
    // loss = sum(y^2): dL/dw = sum over the batch of 2 y x = 2 * 2 * 4 w0.
    w.mutable_grad() = torch::Tensor();
    y.to(torch::kFloat).square().sum().backward();
    REQUIRE(w.grad().defined());
    CHECK(w.grad().mean().item<float>() == 16 * w0);
    torch::NoGradGuard ng;
    w.add_(1.0);  // the optimizer's in-place step
  }
}
