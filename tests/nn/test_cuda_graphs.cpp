// --cuda-graphs (lib/rass/model/cuda_graphs.hpp): a recorded graph's replays
// equal the eager computation, graphs of one stream share a memory pool
// without overwriting each other's results, a function that cannot be
// recorded runs eagerly and leaves the allocator, the random generator and
// the other graphs working, and one worker replays while another records.
// The CPU case runs everywhere; the CUDA case needs a GPU (elsewhere it
// exits 77 and CTest reports unit.nn.cuda_graphs skipped; tests/CMakeLists.txt).
#include "torch_doctest.hpp"
#include "test_support.hpp"

#include <thread>

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

bool close(const std::vector<torch::Tensor>& got, const std::vector<torch::Tensor>& want) {
  if (got.size() != want.size()) return false;
  for (size_t i = 0; i < got.size(); ++i)
    if (!torch::allclose(got[i], want[i], 1e-5, 1e-5)) return false;
  return true;
}

// Made on the host: no CUDA random draws (they would race a capture on
// another thread, which the tools never do).
std::vector<torch::Tensor> inputs(int64_t rows, int seed, torch::Device d) {
  torch::manual_seed(seed);
  return {torch::randn({rows, 32}).to(d), torch::randn({rows, rows}).to(d)};
}

}  // namespace

TEST_CASE("CUDA graphs on the CPU run the function as it is") {
  const model::GraphCache off(false), on(true);
  CHECK(!off.records(torch::kCPU));
  CHECK(!on.records(torch::kCPU));
  CHECK(!off.records(torch::Device(torch::kCUDA, 0)));
  CHECK(on.records(torch::Device(torch::kCUDA, 0)) == model::cuda_graphs_built());
  const std::vector<torch::Tensor> in = inputs(5, 1, torch::kCPU);
  for (const model::GraphCache* g : {&off, &on}) {
    int calls = 0;
    for (int i = 0; i < 3; ++i)
      CHECK(close(g->run("affine", in,
                         [&](const std::vector<torch::Tensor>& x) {
                           ++calls;
                           return affine(x);
                         }),
                  affine(in)));
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
  const torch::Device cuda(torch::kCUDA, 0);
  const model::GraphCache g(true);
  // Two shapes of one function, interleaved, every result kept: each equals
  // eager after the other shape's replays too (outputs are copied out of
  // the pool the two graphs share).
  std::vector<std::vector<torch::Tensor>> ins, outs;
  for (int round = 0; round < 3; ++round)
    for (int64_t rows : {64, 48}) {
      ins.push_back(inputs(rows, 10 * round + int(rows), cuda));
      outs.push_back(g.run("affine", ins.back(), affine));
    }
  for (size_t i = 0; i < ins.size(); ++i) CHECK(close(outs[i], affine(ins[i])));
  CHECK(g.captured() == 2);
  CHECK(g.replays() == 6);

  // Not recordable: the eager result, every time, and nothing recorded.
  for (int i = 0; i < 2; ++i) {
    const std::vector<torch::Tensor> in = inputs(16, 100 + i, cuda);
    CHECK(close(g.run("host_wait", in, host_wait), host_wait(in)));
  }
  CHECK(g.captured() == 2);
  // After the failed capture: random draws on the device, the recorded
  // graphs, the allocator and new captures all still work.
  CHECK(torch::randn({8}, torch::TensorOptions().device(cuda)).isfinite().all().item<bool>());
  const std::vector<torch::Tensor> again = inputs(64, 3, cuda);
  CHECK(close(g.run("affine", again, affine), affine(again)));
  CHECK(g.replays() == 7);
  const torch::Tensor big = torch::ones({2048, 2048}, torch::TensorOptions().device(cuda));
  CHECK(big.mm(big).sum().item<float>() == doctest::Approx(2048.0 * 2048.0 * 2048.0).epsilon(1e-6));
  const std::vector<torch::Tensor> in40 = inputs(40, 7, cuda);
  CHECK(close(g.run("affine", in40, affine), affine(in40)));
  CHECK(g.captured() == 3);

  // Two workers on streams of their own: one replays its graph over and
  // over while the other records new shapes (a capture must not disturb
  // another thread's replays). Results are checked after both finish.
  const model::WorkerStreams streams(cuda, 2);
  std::vector<std::vector<torch::Tensor>> a_in, a_out, b_in, b_out;
  for (int i = 0; i < 40; ++i) a_in.push_back(inputs(64, 200 + i, cuda));
  for (int64_t rows : {24, 32, 56}) b_in.push_back(inputs(rows, 300 + int(rows), cuda));
  torch::cuda::synchronize();
  std::string a_error, b_error;  // an exception must not end a thread
  auto worker = [&](int w, const std::vector<std::vector<torch::Tensor>>& xs,
                    std::vector<std::vector<torch::Tensor>>& ys, std::string& error) {
    return std::thread([&, w] {
      torch::NoGradGuard no_grad_here;
      try {
        streams.run(w, [&] {
          for (const auto& x : xs) ys.push_back(g.run("affine", x, affine));
        });
      } catch (const std::exception& e) {
        error = e.what();
      }
    });
  };
  std::thread a = worker(0, a_in, a_out, a_error);
  std::thread b = worker(1, b_in, b_out, b_error);
  a.join();
  b.join();
  torch::cuda::synchronize();
  CHECK(a_error == "");
  CHECK(b_error == "");
  REQUIRE(a_out.size() == a_in.size());
  REQUIRE(b_out.size() == b_in.size());
  for (size_t i = 0; i < a_in.size(); ++i) CHECK(close(a_out[i], affine(a_in[i])));
  for (size_t i = 0; i < b_in.size(); ++i) CHECK(close(b_out[i], affine(b_in[i])));
  CHECK(g.captured() == 3 + 1 + 3);  // one graph for worker 0's shape, three for worker 1's
}
