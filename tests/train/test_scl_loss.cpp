// The semantic-constrained loss (scl_loss.hpp) on hand-made attention maps,
// every expected value worked by hand in the comments (min-max normalised
// maps, the region formula, BCE on A clamped to [1e-4, 1 - 1e-4]).
#include "nn/torch_doctest.hpp"

#include <cmath>


#include "rass/core/error.hpp"
#include "rass/train/scl_loss.hpp"

using rass::train::SclTarget;

namespace {
const double kLo = -std::log(1e-4), kHi = -std::log(1 - 1e-4);  // BCE of a clamped extreme cell: wrong side, right side
// probs [batch*heads, q, keys] filled with `fill`, then the given columns set.
torch::Tensor probs(int64_t rows, int64_t q, int64_t keys) { return torch::full({rows, q, keys}, 0.05); }
torch::Tensor mask(std::vector<float> v, int64_t h, int64_t w) { return torch::tensor(v).view({h, w}); }
}  // namespace

TEST_CASE("SCL: a 2x2 map, two heads averaged") {
  // Heads: key 1 = [0.1 0.3 0.5 0.7] and [0.3 0.5 0.7 0.9]; mean [0.2 0.4 0.6 0.8]
  // -> A = [0 1/3 2/3 1]; M = [0 1; 0 1] -> [0 1 0 1].
  // region = 1 - (1/3 + 1) / 2 = 1/3.
  // pixel = (kHi + ln 3 + ln 3 + kHi) / 4 (A = 0 and 1 clamped to 1e-4 and 1 - 1e-4, on the right side of M).
  torch::Tensor p = probs(2, 4, 3);
  p.index_put_({0, torch::indexing::Slice(), 1}, torch::tensor({0.1f, 0.3f, 0.5f, 0.7f}));
  p.index_put_({1, torch::indexing::Slice(), 1}, torch::tensor({0.3f, 0.5f, 0.7f, 0.9f}));
  std::vector<rass::nn::CapturedAttention> caps{{"mid_block.attentions.0.transformer_blocks.0.attn2", p}};
  std::vector<std::vector<SclTarget>> targets{{SclTarget{{1}, mask({0, 1, 0, 1}, 2, 2)}}};
  auto r = rass::train::scl_loss(caps, targets, 2, 2);
  CHECK(r.maps == 1);
  CHECK(r.region.item<double>() == doctest::Approx(1.0 / 3).epsilon(1e-6));
  CHECK(r.pixel.item<double>() == doctest::Approx((std::log(3.0) + kHi) / 2).epsilon(1e-6));

  // A second sample without targets adds 0 to the batch's sum: both halve.
  torch::Tensor p2 = torch::cat({p, probs(2, 4, 3)});
  caps[0].probs = p2;
  targets.push_back({});
  r = rass::train::scl_loss(caps, targets, 2, 2);
  CHECK(r.region.item<double>() == doctest::Approx(1.0 / 6).epsilon(1e-6));
  CHECK(r.pixel.item<double>() == doctest::Approx((std::log(3.0) + kHi) / 4).epsilon(1e-6));
}

TEST_CASE("SCL: a 3x3 map, a 6x6 mask resized by area and threshold, a two-token term") {
  // Token 0: a = 0.1 k (k = 0..8, row-major) -> A = k/8. Token 2: a = 0.1 (8 - k) -> A' = (8-k)/8.
  // Mask 6x6, 2x2 cells: cell (0,0) 4/4 -> 1; (0,1) 2/4 -> 1 (>= 0.5); (0,2) 1/4 -> 0;
  // (2,2) 3/4 -> 1; others empty. M = [1 1 0; 0 0 0; 0 0 1].
  // Token 0: region = 1 - (0 + 1/8 + 1) / 4.5 = 0.75;
  //   pixel = (kLo [A=0 -> 1e-4, M=1] + ln 8 - ln(3/4) - ln(5/8) + ln 2 - ln(3/8) + ln 4 + ln 8 + kHi) / 9.
  // Token 2: region = 1 - (1 + 7/8 + 0) / 4.5 = 7/12;
  //   pixel = (kHi - ln(7/8) + ln 4 - ln(3/8) + ln 2 - ln(5/8) - ln(3/4) - ln(7/8) + kLo) / 9.
  torch::Tensor p = probs(1, 9, 4);
  for (int k = 0; k < 9; ++k) {
    p.index_put_({0, k, 0}, 0.1 * k);
    p.index_put_({0, k, 2}, 0.1 * (8 - k));
  }
  torch::Tensor m = torch::zeros({6, 6});
  m.index_put_({torch::indexing::Slice(0, 2), torch::indexing::Slice(0, 2)}, 1);
  m.index_put_({0, 2}, 1);
  m.index_put_({1, 3}, 1);
  m.index_put_({0, 4}, 1);
  m.index_put_({4, 4}, 1);
  m.index_put_({4, 5}, 1);
  m.index_put_({5, 4}, 1);
  CHECK(torch::equal(rass::train::resize_mask(m, 3, 3), mask({1, 1, 0, 0, 0, 0, 0, 0, 1}, 3, 3)));
  const double pix0 = (kLo + kHi + std::log(8.0) - std::log(0.75) - std::log(0.625) + std::log(2.0) - std::log(0.375) +
                       std::log(4.0) + std::log(8.0)) / 9;
  const double pix2 = (kHi - std::log(0.875) + std::log(4.0) - std::log(0.375) + std::log(2.0) - std::log(0.625) -
                       std::log(0.75) - std::log(0.875) + kLo) / 9;
  std::vector<rass::nn::CapturedAttention> caps{{"down_blocks.0.attentions.0.transformer_blocks.0.attn2", p}};
  auto r = rass::train::scl_loss(caps, {{SclTarget{{0}, m}}}, 3, 3);
  CHECK(r.region.item<double>() == doctest::Approx(0.75).epsilon(1e-6));
  CHECK(r.pixel.item<double>() == doctest::Approx(pix0).epsilon(1e-6));
  r = rass::train::scl_loss(caps, {{SclTarget{{2}, m}}}, 3, 3);
  CHECK(r.region.item<double>() == doctest::Approx(7.0 / 12).epsilon(1e-6));
  CHECK(r.pixel.item<double>() == doctest::Approx(pix2).epsilon(1e-6));
  // Both tokens of one term: the mean of the two maps.
  r = rass::train::scl_loss(caps, {{SclTarget{{0, 2}, m}}}, 3, 3);
  CHECK(r.maps == 2);
  CHECK(r.region.item<double>() == doctest::Approx((0.75 + 7.0 / 12) / 2).epsilon(1e-6));
  CHECK(r.pixel.item<double>() == doctest::Approx((pix0 + pix2) / 2).epsilon(1e-6));

  // A 3x3 map is level 1 of a 6x6 latent (6 -> 3); a second, 6x6 capture
  // (36 queries) under another path is left out by the layer selection.
  std::vector<rass::nn::CapturedAttention> two{{"up_blocks.1.attentions.0.transformer_blocks.0.attn2", probs(1, 36, 4)},
                                               caps[0]};
  const auto layers = rass::train::select_scl_layers({two[0].path, two[1].path}, {"down_blocks"});
  CHECK(layers == std::vector<std::string>{two[1].path});
  r = rass::train::scl_loss(two, {{SclTarget{{0}, m}}}, 6, 6, layers);
  CHECK(r.maps == 1);
  CHECK(r.region.item<double>() == doctest::Approx(0.75).epsilon(1e-6));
  r = rass::train::scl_loss(two, {{SclTarget{{0}, m}}}, 6, 6);
  CHECK(r.maps == 2);  // the constant 6x6 map: A = 0 everywhere, region 1
  CHECK(r.region.item<double>() == doctest::Approx((0.75 + 1) / 2).epsilon(1e-6));
  CHECK_THROWS_WITH_AS(rass::train::select_scl_layers({two[0].path}, {"mid_block"}),
                       doctest::Contains("'mid_block' match no cross-attention layer"), rass::Error);
}

TEST_CASE("SCL: gradients reach the probabilities") {
  torch::Tensor p = torch::rand({2, 4, 3}).requires_grad_(true);
  std::vector<rass::nn::CapturedAttention> caps{{"x.attn2", p}};
  auto r = rass::train::scl_loss(caps, {{SclTarget{{1}, mask({0, 1, 0, 1}, 2, 2)}}}, 2, 2);
  (r.region + r.pixel).backward();
  REQUIRE(p.grad().defined());
  CHECK(p.grad().index({torch::indexing::Slice(), torch::indexing::Slice(), 1}).abs().sum().item<double>() > 0);
  CHECK(p.grad().index({torch::indexing::Slice(), torch::indexing::Slice(), 0}).abs().sum().item<double>() == 0);
  // No targets at all: zeros, no graph.
  r = rass::train::scl_loss(caps, {{}}, 2, 2);
  CHECK(r.maps == 0);
  CHECK(r.region.item<double>() == 0);
}
