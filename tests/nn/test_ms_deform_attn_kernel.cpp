// The element code of the deformable-attention CUDA kernels
// (lib/rass/nn/ms_deform_attn_kernel.hpp), run in CPU loops through
// ms_deform_attn_direct: hand-worked samples, then forward and backward
// against the grid_sample version (ms_deform_attn_core) and its autograd.
// The last case runs the kernels themselves on a GPU (CUDA build with a
// device); elsewhere it exits 77 (tests/CMakeLists.txt runs it alone as
// unit.nn.cuda_msda).
#include "torch_doctest.hpp"
#include "test_support.hpp"

#include "rass/nn/ms_deform_attn.hpp"

using namespace rass;

namespace {

struct Inputs {
  torch::Tensor value, loc, attn;
  nn::SpatialShapes shapes{{6, 5}, {3, 4}, {1, 2}};
};

// Random inputs, some locations outside [0, 1] (partly and wholly outside a level).
Inputs random_inputs(uint64_t seed) {
  torch::manual_seed(seed);
  Inputs in;
  const int64_t N = 2, M = 2, D = 8, Lq = 7, L = 3, P = 4;
  int64_t S = 0;
  for (const auto& hw : in.shapes) S += hw[0] * hw[1];
  in.value = torch::randn({N, S, M, D});
  in.loc = torch::rand({N, Lq, M, L, P, 2}) * 1.6 - 0.3;
  in.attn = torch::rand({N, Lq, M, L, P});
  return in;
}

double max_abs(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

}  // namespace

TEST_CASE("deformable attention kernel code: hand-worked bilinear samples") {
  // One level 2x2 holding 1 2 / 3 4, one head, one channel, one point of weight 1.
  const torch::Tensor value = torch::tensor({1.f, 2.f, 3.f, 4.f}).view({1, 4, 1, 1});
  const nn::SpatialShapes shapes{{2, 2}};
  auto at = [&](float x, float y) {
    const torch::Tensor loc = torch::tensor({x, y}).view({1, 1, 1, 1, 1, 2});
    return nn::ms_deform_attn_direct(value, shapes, loc, torch::ones({1, 1, 1, 1, 1})).item<float>();
  };
  // (x W - 0.5, y H - 0.5) is the pixel position: 0.25 -> pixel 0, 0.75 -> pixel 1.
  CHECK(at(0.25f, 0.25f) == doctest::Approx(1.0));
  CHECK(at(0.75f, 0.25f) == doctest::Approx(2.0));
  CHECK(at(0.25f, 0.75f) == doctest::Approx(3.0));
  CHECK(at(0.5f, 0.5f) == doctest::Approx(2.5));            // the mean of the four
  CHECK(at(0.5f, 0.25f) == doctest::Approx(1.5));           // between 1 and 2
  CHECK(at(0.0f, 0.0f) == doctest::Approx(0.25));           // (-0.5, -0.5): a quarter of pixel (0, 0), zeros outside
  CHECK(at(1.0f, 1.0f) == doctest::Approx(1.0));            // (1.5, 1.5): a quarter of 4
  CHECK(at(-0.5f, 0.5f) == 0.0f);                           // wholly outside
  // Two points, weights 0.25 and 0.5: the weighted sum.
  const torch::Tensor loc2 = torch::tensor({0.25f, 0.25f, 0.75f, 0.75f}).view({1, 1, 1, 1, 2, 2});
  const torch::Tensor w2 = torch::tensor({0.25f, 0.5f}).view({1, 1, 1, 1, 2});
  CHECK(nn::ms_deform_attn_direct(value, shapes, loc2, w2).item<float>() == doctest::Approx(0.25 * 1 + 0.5 * 4));
}

TEST_CASE("deformable attention kernel code: forward equals the grid_sample version") {
  for (uint64_t seed : {1u, 2u, 3u}) {
    const Inputs in = random_inputs(seed);
    const torch::Tensor want = nn::ms_deform_attn_core(in.value, in.shapes, in.loc, in.attn);
    const torch::Tensor got = nn::ms_deform_attn_direct(in.value, in.shapes, in.loc, in.attn);
    REQUIRE(got.sizes() == want.sizes());
    CHECK(max_abs(got, want) < 1e-5);
  }
}

TEST_CASE("deformable attention kernel code: backward equals autograd of the grid_sample version") {
  for (uint64_t seed : {4u, 5u}) {
    const Inputs in = random_inputs(seed);
    auto grads = [&](bool direct) {
      torch::Tensor v = in.value.clone().requires_grad_(true), l = in.loc.clone().requires_grad_(true),
                    a = in.attn.clone().requires_grad_(true);
      const torch::Tensor out = direct ? nn::ms_deform_attn_direct(v, in.shapes, l, a)
                                       : nn::ms_deform_attn_core(v, in.shapes, l, a);
      torch::manual_seed(99);
      (out * torch::randn(out.sizes())).sum().backward();
      return std::array<torch::Tensor, 3>{v.grad(), l.grad(), a.grad()};
    };
    const auto want = grads(false), got = grads(true);
    const char* names[] = {"value", "locations", "weights"};
    for (int i = 0; i < 3; ++i) {
      INFO(names[i]);
      REQUIRE(got[i].defined());
      // Relative to the gradient's scale (location gradients carry the level's W and H).
      CHECK(max_abs(got[i], want[i]) < 1e-4 * (1 + want[i].abs().max().item<double>()));
    }
  }
}

TEST_CASE("deformable attention kernel code: shape errors are reported, not read out of bounds") {
  const Inputs in = random_inputs(6);
  nn::SpatialShapes wrong = in.shapes;
  wrong[0] = {5, 5};
  CHECK_THROWS_AS(nn::ms_deform_attn_direct(in.value, wrong, in.loc, in.attn), std::invalid_argument);
  CHECK_THROWS_AS(nn::ms_deform_attn_direct(in.value, in.shapes, in.loc, in.attn.slice(4, 0, 2)), std::invalid_argument);
}

TEST_CASE("deformable attention CUDA kernels equal the LibTorch-ops version") {
  if (!nn::ms_deform_attn_has_cuda_kernel())
    test::skip("this build has no deformable-attention CUDA kernel (a CUDA build: scripts/build-cuda.sh)");
  if (!torch::cuda::is_available()) test::skip("no CUDA device");
  const torch::Device cuda(torch::kCUDA, 0);
  const Inputs in = random_inputs(7);
  const torch::Tensor v = in.value.to(cuda), l = in.loc.to(cuda), a = in.attn.to(cuda);
  // ms_deform_attn_core takes the kernel on CUDA tensors; the reference is the CPU grid_sample version.
  const torch::Tensor want = nn::ms_deform_attn_core(in.value, in.shapes, in.loc, in.attn);
  const torch::Tensor got = nn::ms_deform_attn_core(v, in.shapes, l, a);
  REQUIRE(got.device() == cuda);
  CHECK(max_abs(got.cpu(), want) < 1e-5);
  // bfloat16 values (locations and weights stay float32): within bfloat16's precision.
  const torch::Tensor got_bf16 = nn::ms_deform_attn_core(v.to(torch::kBFloat16), in.shapes, l, a);
  CHECK((got_bf16.scalar_type() == torch::kBFloat16));
  CHECK(max_abs(got_bf16.to(torch::kFloat32).cpu(), want) < 2e-2 * (1 + want.abs().max().item<double>()));
  // Backward (float32): the GPU's atomic adds against the CPU loops' plain sums.
  torch::Tensor vg = v.clone().requires_grad_(true), lg = l.clone().requires_grad_(true), ag = a.clone().requires_grad_(true);
  torch::Tensor vc = in.value.clone().requires_grad_(true), lc = in.loc.clone().requires_grad_(true),
                ac = in.attn.clone().requires_grad_(true);
  torch::manual_seed(11);
  const torch::Tensor r = torch::randn(want.sizes());
  (nn::ms_deform_attn_core(vg, in.shapes, lg, ag) * r.to(cuda)).sum().backward();
  (nn::ms_deform_attn_core(vc, in.shapes, lc, ac) * r).sum().backward();
  CHECK(max_abs(vg.grad().cpu(), vc.grad()) < 1e-4);
  CHECK(max_abs(lg.grad().cpu(), lc.grad()) < 1e-4 * (1 + lc.grad().abs().max().item<double>()));
  CHECK(max_abs(ag.grad().cpu(), ac.grad()) < 1e-4);
}
