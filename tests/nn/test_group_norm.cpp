// rass::nn::GroupNorm (rass/nn/group_norm.hpp): its channels-last path equals
// LibTorch's group norm (fp32 and bf16, with and without affine parameters,
// inputs far from zero mean) and stays channels-last; the module has
// torch::nn::GroupNorm's parameters and takes LibTorch's own path on the CPU.
// The fused norm (+ SiLU) kernels' element code (group_norm_kernel.hpp), run
// in CPU loops chunk by chunk, equals the same reference in both layouts,
// over several chunks and far from zero mean. The CUDA case
// (unit.nn.cuda_group_norm) runs the module where these paths are taken: on
// a GPU, the kernels against the loops and LibTorch, both layouts, both
// switches.
#include "torch_doctest.hpp"
#include "test_support.hpp"

#include <set>
#include <string>

#include "rass/nn/group_norm.hpp"
#include "rass/nn/group_norm_kernel.hpp"

namespace {

// Relative max error of `got` against LibTorch's group norm of x in float64
// (then SiLU, in float64, when `silu`).
double err_vs_reference(const torch::Tensor& got, const torch::Tensor& x, int64_t groups, const torch::Tensor& w,
                        const torch::Tensor& b, double eps, bool silu = false) {
  auto d = [](const torch::Tensor& t) { return t.defined() ? t.to(torch::kCPU, torch::kDouble) : t; };
  torch::Tensor want = at::group_norm(d(x).contiguous(), groups, d(w), d(b), eps);
  if (silu) want = want * torch::sigmoid(want);
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

TEST_CASE("the fused group norm's element code equals LibTorch's group norm and SiLU in both layouts") {
  torch::manual_seed(8);
  struct Case {
    int64_t N, C, G, H, W;
  };
  // 64 channels in 32 groups over 130x70: 18200 values a group, two NCHW
  // chunks (16384 + 1816) and 36 NHWC chunks of 256 pixels (the last 140);
  // 12 channels in 4 groups over 5x7: one chunk, three channels a group.
  // 30 channels over 9x9: neither four-wide layout; 8 x 512 over 16x16: the
  // NHWC chunks shrunk to 16 pixels (264 blocks wanted over the batch).
  for (const Case& c : {Case{2, 64, 32, 130, 70}, Case{2, 12, 4, 5, 7}, Case{2, 30, 10, 9, 9}, Case{8, 512, 32, 16, 16}}) {
    for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
      for (bool nhwc : {false, true}) {
        for (bool silu : {false, true}) {
          for (double offset : {0.0, 40.0}) {  // shifted sums keep the variance far from zero mean
            const bool affine = offset == 0.0;
            INFO("C " << c.C << ", dtype " << dtype << ", nhwc " << nhwc << ", silu " << silu << ", offset " << offset);
            torch::Tensor x = (torch::randn({c.N, c.C, c.H, c.W}) * 3 + offset).to(dtype);
            if (nhwc) x = x.contiguous(at::MemoryFormat::ChannelsLast);
            torch::Tensor w, b;
            if (affine) {
              w = torch::randn({c.C}).to(dtype);
              b = torch::randn({c.C}).to(dtype);
            }
            const torch::Tensor y = rass::nn::group_norm_fused(x, c.G, w, b, 1e-6, silu);
            CHECK(y.sizes() == x.sizes());
            CHECK((y.scalar_type() == dtype));
            CHECK(y.is_contiguous(nhwc ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous));
            // Measured here: float32 7e-7 at most (float sums of 64 values,
            // then a tree); bf16 3.3e-3, the output's 8-bit mantissa.
            const double e = err_vs_reference(y, x, c.G, w, b, 1e-6, silu);
            MESSAGE("relative error " << e);
            CHECK(e < (dtype == torch::kFloat ? 3e-6 : 6e-3));
          }
        }
      }
    }
  }
  // The chunks: NHWC pixels from the shape alone (N HW / 264, 16 to 256).
  rass::nn::gn::Shape sh;
  sh.N = 8, sh.C = 512, sh.HW = 256, sh.G = 32, sh.nhwc = true;
  CHECK(sh.chunk_pixels() == 16);
  CHECK(sh.chunks() == 16);
  sh.HW = 512 * 512;
  CHECK(sh.chunk_pixels() == 256);
  CHECK(sh.chunks() == 1024);
  sh.N = 1, sh.HW = 64 * 64;  // 4096 / 264 -> 16 pixels
  CHECK(sh.chunk_pixels() == 16);
  sh.nhwc = false, sh.HW = 130 * 70, sh.C = 64;  // NCHW: 2 x 9100 values a group, 16384 a chunk
  CHECK(sh.chunks() == 2);
  // A weight of the wrong length: refused, not read past its end.
  CHECK_THROWS(rass::nn::group_norm_fused(torch::randn({2, 12, 3, 3}), 4, torch::ones({6}), {}, 1e-6, false));
  // Not a [N, C, H, W] input with C a multiple of the groups: refused.
  CHECK_THROWS(rass::nn::group_norm_fused(torch::randn({2, 12, 9}), 4, {}, {}, 1e-6, false));
  CHECK_THROWS(rass::nn::group_norm_fused(torch::randn({2, 12, 3, 3}), 5, {}, {}, 1e-6, false));
}

TEST_CASE("GroupNorm::forward_silu is SiLU of forward off CUDA; the fused kernels only on CUDA") {
  torch::manual_seed(9);
  rass::nn::GroupNorm gn(torch::nn::GroupNormOptions(4, 12).eps(1e-5));
  {
    torch::NoGradGuard no_grad;
    gn->weight.normal_();
    gn->bias.normal_();
  }
  const torch::Tensor x = torch::randn({2, 12, 5, 7});
  CHECK_FALSE(rass::nn::group_norm_takes_fused(x, 4));  // the CPU
  {
    torch::NoGradGuard no_grad;
    CHECK(torch::equal(gn->forward_silu(x), torch::silu(gn(x))));
  }
  // With autograd recording: the two steps, and a gradient reaches the weight.
  const torch::Tensor y = gn->forward_silu(x);
  CHECK(torch::equal(y.detach(), torch::silu(gn(x)).detach()));
  y.sum().backward();
  CHECK(gn->weight.grad().defined());
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
  REQUIRE(rass::nn::fused_group_norm_built());
  rass::nn::set_fused_group_norm(true);  // whatever RASS_FUSED_NORM says
  torch::manual_seed(7);
  torch::NoGradGuard no_grad;
  const torch::Device cuda(torch::kCUDA, 0);
  // The fused kernels against their element code in CPU loops (the same
  // chunks; the NCHW sums meet in another order) and LibTorch's norm and
  // SiLU: both layouts, both value types, several chunks, far from zero
  // mean, without affine parameters, channels that do not fill a block.
  struct Case {
    int64_t N, C, G, H, W;
  };
  // 30 channels: no four-wide apply (C % 4, HW % 4 both off); 320: a
  // part-filled last pass of the channels over 256 threads (the UNet's).
  for (const Case& c : {Case{2, 64, 32, 130, 70}, Case{3, 12, 4, 5, 7}, Case{2, 1280, 32, 9, 11}, Case{1, 96, 32, 33, 17},
                        Case{2, 30, 10, 9, 9}, Case{2, 320, 32, 9, 9}, Case{8, 512, 32, 16, 16}}) {
    for (auto dtype : {torch::kFloat, torch::kHalf, torch::kBFloat16}) {
      for (bool nhwc : {false, true}) {
        for (bool silu : {false, true}) {
          for (bool affine : {false, true}) {
            INFO("C " << c.C << ", HW " << c.H << "x" << c.W << ", dtype " << dtype << ", nhwc " << nhwc << ", silu " << silu
                      << ", affine " << affine);
            torch::Tensor x = (torch::randn({c.N, c.C, c.H, c.W}) * 2 + (affine ? 0 : 30)).to(dtype);
            if (nhwc) x = x.contiguous(at::MemoryFormat::ChannelsLast);
            torch::Tensor w, b;
            if (affine) {
              w = torch::randn({c.C}).to(dtype);
              b = torch::randn({c.C}).to(dtype);
            }
            const torch::Tensor xd = x.to(cuda);
            const torch::Tensor wd = affine ? w.to(cuda) : w, bd = affine ? b.to(cuda) : b;
            CHECK(rass::nn::group_norm_takes_fused(xd, c.G));
            const torch::Tensor y = rass::nn::group_norm_fused(xd, c.G, wd, bd, 1e-6, silu);
            CHECK(y.is_contiguous(nhwc ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous));
            CHECK((y.scalar_type() == dtype));
            // The same bits run after run (fixed-order sums, no atomics).
            CHECK(torch::equal(y, rass::nn::group_norm_fused(xd, c.G, wd, bd, 1e-6, silu)));
            const torch::Tensor loops = rass::nn::group_norm_fused(x, c.G, w, b, 1e-6, silu);
            const double vs_loops = (y.cpu().to(torch::kDouble) - loops.to(torch::kDouble)).abs().max().item<double>() /
                                    loops.to(torch::kDouble).abs().max().item<double>();
            const double e = err_vs_reference(y, x, c.G, w, b, 1e-6, silu);
            MESSAGE("relative error " << e << ", against the loops " << vs_loops);
            // Not yet measured on a GPU: bounds from the CPU loops' (3e-6
            // float32; an output rounding for 16-bit types: 2^-9 bf16, 2^-12 fp16).
            CHECK(e < (dtype == torch::kFloat ? 1e-5 : dtype == torch::kHalf ? 2e-3 : 1e-2));
            CHECK(vs_loops < (dtype == torch::kFloat ? 1e-5 : dtype == torch::kHalf ? 2e-3 : 1e-2));
          }
        }
      }
    }
  }
  // A view one element into its storage: no four-wide loads (misaligned), the
  // one-value apply, the same values.
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    INFO("misaligned, dtype " << dtype);
    const int64_t numel = 2 * 64 * 8 * 8;
    const torch::Tensor x = (torch::randn({numel + 1}) * 2 + 3).to(cuda, dtype).narrow(0, 1, numel).view({2, 64, 8, 8});
    CHECK(x.is_contiguous());
    const torch::Tensor y = rass::nn::group_norm_fused(x, 32, {}, {}, 1e-6, true);
    const torch::Tensor aligned = rass::nn::group_norm_fused(x.clone(), 32, {}, {}, 1e-6, true);
    CHECK(torch::equal(y, aligned));
    CHECK(err_vs_reference(y, x, 32, {}, {}, 1e-6, true) < (dtype == torch::kFloat ? 1e-5 : 1e-2));
  }
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    INFO("dtype " << dtype);
    rass::nn::GroupNorm gn(torch::nn::GroupNormOptions(32, 128).eps(1e-6));
    gn->weight.normal_();
    gn->bias.normal_();
    gn->to(cuda, dtype);
    const torch::Tensor x =
        (torch::randn({2, 128, 33, 20}) * 2 + 5).to(cuda, dtype).contiguous(at::MemoryFormat::ChannelsLast);
    CHECK(rass::nn::group_norm_takes_channels_last(x));
    // The module: the fused kernels (RASS_FUSED_NORM on), then the
    // channels-last LibTorch-ops path (off); forward_silu both ways.
    for (bool fused : {true, false}) {
      INFO("fused " << fused);
      rass::nn::set_fused_group_norm(fused);
      CHECK(rass::nn::group_norm_takes_fused(x, 32) == fused);
      const torch::Tensor y = gn(x);
      CHECK(y.is_contiguous(at::MemoryFormat::ChannelsLast));
      const double e = err_vs_reference(y, x, 32, gn->weight, gn->bias, 1e-6);
      MESSAGE("relative error " << e);
      CHECK(e < (dtype == torch::kFloat ? 1e-5 : 1.5e-2));  // not yet measured on a GPU: looser
      const torch::Tensor ys = gn->forward_silu(x);
      CHECK(ys.is_contiguous(at::MemoryFormat::ChannelsLast));
      const double es = err_vs_reference(ys, x, 32, gn->weight, gn->bias, 1e-6, true);
      MESSAGE("with SiLU: relative error " << es);
      CHECK(es < (dtype == torch::kFloat ? 1e-5 : 1.5e-2));
    }
    rass::nn::set_fused_group_norm(true);
    // NCHW input: not the channels-last path; the fused kernels take it.
    CHECK_FALSE(rass::nn::group_norm_takes_channels_last(x.contiguous()));
    CHECK(rass::nn::group_norm_takes_fused(x.contiguous(), 32));
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
