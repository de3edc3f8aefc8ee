// --cuda-graphs (lib/rass/model/cuda_graphs.hpp): a recorded graph's replays
// equal the eager computation, graphs of one stream share a memory pool
// without overwriting each other's results, and a function that cannot be
// recorded runs eagerly and leaves the allocator working. The CPU case runs
// everywhere; the CUDA case needs a GPU (elsewhere it exits 77 and CTest
// reports unit.nn.cuda_graphs skipped; tests/CMakeLists.txt).
#include "torch_doctest.hpp"
#include "test_support.hpp"

#include "rass/model/cuda_graphs.hpp"
#include "rass/model/device.hpp"

using namespace rass;

namespace {

std::vector<torch::Tensor> affine(const std::vector<torch::Tensor>& in) {
  return {torch::relu(in[0].mm(in[0].t())) * 2 + in[1], in[0].sum(0)};
}

// Waits for the device inside: cannot be recorded.
std::vector<torch::Tensor> host_wait(const std::vector<torch::Tensor>& in) {
  const float s = in[0].abs().sum().item<float>();
  return {in[0] / s};
}

void check_close(const std::vector<torch::Tensor>& got, const std::vector<torch::Tensor>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(torch::allclose(got[i], want[i], 1e-5, 1e-5));
}

}  // namespace

TEST_CASE("CUDA graphs on the CPU run the function as it is") {
  const model::GraphCache off(false), on(true);
  const std::vector<torch::Tensor> in{torch::randn({5, 3}), torch::randn({5, 5})};
  for (const model::GraphCache* g : {&off, &on}) {
    int calls = 0;
    for (int i = 0; i < 3; ++i)
      check_close(g->run("affine", in,
                         [&](const std::vector<torch::Tensor>& x) {
                           ++calls;
                           return affine(x);
                         }),
                  affine(in));
    CHECK(calls == 3);  // no warm-up calls, nothing recorded
    CHECK(g->captured() == 0);
    CHECK(g->replays() == 0);
  }
}

TEST_CASE("CUDA graphs replay like eager and fall back when recording fails") {
  if (!torch::cuda::is_available())
    test::skip("no CUDA device (torch::cuda::is_available() is false: CPU-only LibTorch or no GPU)");
  if (!model::cuda_graphs_built()) test::skip("this build's LibTorch has no CUDA graphs");
  torch::NoGradGuard no_grad;
  const auto cuda = torch::TensorOptions().device(torch::kCUDA, 0);
  const model::GraphCache g(true);
  auto inputs = [&](int64_t rows, int seed) {
    torch::manual_seed(seed);
    return std::vector<torch::Tensor>{torch::randn({rows, 32}, cuda), torch::randn({rows, rows}, cuda)};
  };
  // Two shapes of one function, interleaved: each replay equals eager, and
  // one shape's replay does not disturb the other's results (one pool).
  for (int round = 0; round < 3; ++round)
    for (int64_t rows : {64, 48}) {
      const std::vector<torch::Tensor> in = inputs(rows, 10 * round + int(rows));
      const std::vector<torch::Tensor> got = g.run("affine", in, affine);
      check_close(got, affine(in));
    }
  CHECK(g.captured() == 2);
  CHECK(g.replays() == 6);

  // Not recordable: the eager result, every time, and nothing recorded.
  for (int i = 0; i < 2; ++i) {
    const std::vector<torch::Tensor> in = inputs(16, 100 + i);
    check_close(g.run("host_wait", in, host_wait), host_wait(in));
  }
  CHECK(g.captured() == 2);
  // After the failed capture the allocator and later captures still work.
  const torch::Tensor big = torch::ones({2048, 2048}, cuda);
  CHECK(big.mm(big).sum().item<float>() == doctest::Approx(2048.0 * 2048.0 * 2048.0).epsilon(1e-6));
  const std::vector<torch::Tensor> in = inputs(40, 7);
  check_close(g.run("affine", in, affine), affine(in));
  CHECK(g.captured() == 3);

  // Each worker stream records its own graph.
  const model::WorkerStreams streams(torch::Device(torch::kCUDA, 0), 2);
  for (int w = 0; w < 2; ++w)
    streams.run(w, [&] {
      const std::vector<torch::Tensor> x = inputs(64, 50 + w);
      check_close(g.run("affine", x, affine), affine(x));
    });
  CHECK(g.captured() == 5);
}
