// rass::nn::Linear (rass/nn/linear.hpp): torch::nn::Linear's parameters and
// names, x W^T + b worked out in float64 for 2-D, 3-D and strided inputs, and
// the reason it exists: on a [batch, tokens, features] input the bias goes
// into the product (no separate aten::add_), where torch::nn::Linear adds it
// as a second operation.
#include "torch_doctest.hpp"

#include <mutex>
#include <set>
#include <string>

#include <ATen/record_function.h>

#include "rass/nn/linear.hpp"

namespace {

std::mutex g_ops_mutex;
std::multiset<std::string> g_ops;

std::unique_ptr<at::ObserverContext> note_op(const at::RecordFunction& fn) {
  std::lock_guard<std::mutex> lock(g_ops_mutex);
  g_ops.insert(fn.name());
  return nullptr;
}

// The operators f runs on this thread.
template <class F>
std::multiset<std::string> ops_of(F&& f) {
  g_ops.clear();
  const at::CallbackHandle h = at::addThreadLocalCallback(at::RecordFunctionCallback(note_op));
  f();
  at::removeCallback(h);
  return g_ops;
}

torch::Tensor by_hand(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  torch::Tensor y = x.to(torch::kDouble).matmul(w.to(torch::kDouble).t());
  return b.defined() ? y + b.to(torch::kDouble) : y;
}

}  // namespace

TEST_CASE("rass::nn::Linear: torch::nn::Linear's parameters, x W^T + b") {
  torch::manual_seed(3);
  rass::nn::Linear fused(7, 5);
  torch::nn::Linear plain(7, 5);
  auto names = [](torch::nn::Module& m) {
    std::set<std::string> out;
    for (const auto& p : m.named_parameters()) out.insert(p.key() + ":" + std::to_string(p.value().numel()));
    return out;
  };
  CHECK(names(*fused) == names(*plain));
  rass::nn::Linear no_bias(torch::nn::LinearOptions(7, 5).bias(false));
  CHECK(no_bias->named_parameters().size() == 1);
  CHECK_FALSE(no_bias->bias.defined());

  const torch::Tensor x2 = torch::randn({4, 7});
  const torch::Tensor x3 = torch::randn({2, 6, 7});
  const torch::Tensor strided = torch::randn({2, 7, 6}).transpose(1, 2);  // not contiguous
  for (const torch::Tensor& x : {x2, x3, strided}) {
    CHECK(torch::allclose(fused(x).to(torch::kDouble), by_hand(x, fused->weight, fused->bias), 1e-5, 1e-6));
    CHECK(torch::allclose(no_bias(x).to(torch::kDouble), by_hand(x, no_bias->weight, {}), 1e-5, 1e-6));
  }
}

TEST_CASE("rass::nn::Linear: the bias is added inside the product for batched tokens") {
  torch::manual_seed(4);
  rass::nn::Linear fused(16, 8);
  torch::nn::Linear plain(16, 8);
  const torch::Tensor x = torch::randn({2, 10, 16});
  const auto mine = ops_of([&] { fused(x); });
  const auto theirs = ops_of([&] { plain(x); });
  CHECK(mine.count("aten::linear") == 1);
  CHECK(mine.count("aten::add_") == 0);
  CHECK(mine.count("aten::add") == 0);
  // The case this class exists for: LibTorch's C++ functional linear. A
  // warning, not a failure, if a later LibTorch fuses the bias there too
  // (rass::nn::Linear is then merely redundant).
  WARN_MESSAGE(theirs.count("aten::add_") == 1, "torch::nn::Linear no longer adds the bias apart");
}
