// Mask2Former's decoder attention (rass::nn::MultiheadAttention): with a
// mask it equals the formula of F.multi_head_attention_forward worked out in
// float64 (q scaled by 1/sqrt(d), masked keys at -inf, softmax, out_proj),
// on the CPU and, where a GPU is, on CUDA in fp32 and bf16 -- LibTorch 2.x
// runs it as one scaled_dot_product_attention call with the mask broadcast
// over the heads, a different kernel on each device. Key lengths not a
// multiple of 8 (the memory-efficient kernel pads its mask).
#include "torch_doctest.hpp"
#include "test_support.hpp"

#include <cmath>
#include <limits>

#include "rass/nn/mask2former_decoder.hpp"

namespace {

using rass::nn::MultiheadAttention;

torch::Tensor by_hand(const MultiheadAttention& m, const torch::Tensor& q, const torch::Tensor& k,
                      const torch::Tensor& v, const torch::Tensor& mask) {
  const auto D = torch::kDouble;
  const int64_t B = q.size(0), E = m->embed_dim, h = m->num_heads, d = E / h;
  const auto w = m->in_proj_weight.to(torch::kCPU, D).chunk(3, 0);
  const auto b = m->in_proj_bias.to(torch::kCPU, D).chunk(3, 0);
  auto proj = [&](const torch::Tensor& x, int i) {
    return (x.to(torch::kCPU, D).matmul(w[i].t()) + b[i]).view({B, -1, h, d}).transpose(1, 2);
  };
  torch::Tensor s = (proj(q, 0) / std::sqrt(double(d))).matmul(proj(k, 1).transpose(-2, -1));
  if (mask.defined())
    s = s.masked_fill(mask.to(torch::kCPU).unsqueeze(1), -std::numeric_limits<double>::infinity());
  torch::Tensor o = s.softmax(-1).matmul(proj(v, 2)).transpose(1, 2).reshape({B, -1, E});
  return o.matmul(m->out_proj->weight.to(torch::kCPU, D).t()) + m->out_proj->bias.to(torch::kCPU, D);
}

struct Case {
  MultiheadAttention m{32, 4};
  torch::Tensor q, k, v, mask;
  Case() {
    torch::manual_seed(11);
    torch::NoGradGuard no_grad;
    m->in_proj_bias.normal_(0, 0.5);
    m->out_proj->bias.normal_(0, 0.5);
    q = torch::randn({2, 5, 32});
    k = torch::randn({2, 70, 32});
    v = torch::randn({2, 70, 32});
    mask = torch::rand({2, 5, 70}) < 0.6;
    mask.select(2, 3).fill_(false);  // no query masked everywhere (the decoder's rule)
  }
};

double rel_err(const torch::Tensor& got, const torch::Tensor& want) {
  return (got.to(torch::kCPU, torch::kDouble) - want).abs().max().item<double>() / want.abs().max().item<double>();
}

}  // namespace

TEST_CASE("Mask2Former attention with a mask equals the formula (CPU)") {
  Case c;
  torch::NoGradGuard no_grad;
  for (bool masked : {false, true}) {
    INFO("masked " << masked);
    const torch::Tensor mask = masked ? c.mask : torch::Tensor();
    CHECK(rel_err(c.m(c.q, c.k, c.v, mask), by_hand(c.m, c.q, c.k, c.v, mask)) < 1e-5);
  }
  // The mask matters: a masked key's value does not reach the output.
  torch::Tensor v2 = c.v.clone();
  v2.index_put_({0, 7}, 100.0);  // key 7 of image 0
  torch::Tensor only = torch::ones({2, 5, 70}, torch::kBool);
  only.select(2, 3).fill_(false);  // every query sees key 3 alone
  CHECK(torch::allclose(c.m(c.q, c.k, c.v, only), c.m(c.q, c.k, v2, only)));
}

TEST_CASE("Mask2Former attention with a mask on CUDA equals the formula in fp32 and bf16") {
  if (!torch::cuda::is_available())
    rass::test::skip("no CUDA device (torch::cuda::is_available() is false: CPU-only LibTorch or no GPU)");
  at::globalContext().setAllowTF32CuBLAS(false);
  Case c;
  torch::NoGradGuard no_grad;
  const torch::Device cuda(torch::kCUDA, 0);
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    MultiheadAttention g(32, 4);
    g->to(cuda);
    // Same weights, in this dtype.
    {
      auto src = c.m->named_parameters(), dst = g->named_parameters();
      for (const auto& p : src) dst[p.key()].copy_(p.value());
    }
    g->to(dtype);
    for (bool masked : {false, true}) {
      INFO("dtype " << dtype << ", masked " << masked);
      const torch::Tensor mask = masked ? c.mask.to(cuda) : torch::Tensor();
      const torch::Tensor out = g(c.q.to(cuda, dtype), c.k.to(cuda, dtype), c.v.to(cuda, dtype), mask);
      const torch::Tensor want = by_hand(c.m, c.q, c.k, c.v, masked ? c.mask : torch::Tensor());
      const double e = rel_err(out, want);
      MESSAGE("relative error " << e);
      // fp32 without TF32: rounding only; bf16: 8-bit mantissas through two projections.
      CHECK(e < (dtype == torch::kFloat ? 1e-4 : 5e-2));
    }
  }
}
