// Host/device copies without needless waits (lib/rass/nn/transfer.hpp) and
// the per-worker CUDA streams of the batch tools (model/device.hpp). The CPU
// case runs everywhere; the CUDA case needs a GPU (elsewhere it exits 77 and
// CTest reports unit.nn.cuda_transfer skipped; tests/CMakeLists.txt).
#include "torch_doctest.hpp"
#include "test_support.hpp"

#include <c10/core/impl/DeviceGuardImplInterface.h>

#include "rass/model/device.hpp"
#include "rass/nn/transfer.hpp"

using namespace rass;

TEST_CASE("host/device copies on the CPU are plain conversions") {
  const torch::Tensor a = torch::arange(12, torch::kFloat).view({3, 4});
  const torch::Tensor b = torch::tensor({true, false});
  const std::vector<torch::Tensor> host = nn::device_to_host({a, torch::Tensor(), b});
  REQUIRE(host.size() == 3);
  CHECK(torch::equal(host[0], a));
  CHECK_FALSE(host[1].defined());  // an undefined tensor stays undefined
  CHECK(torch::equal(host[2], b));
  const torch::Tensor h = nn::host_to_device(a, torch::kCPU, torch::kDouble);
  CHECK((h.scalar_type() == torch::kDouble));
  CHECK(torch::equal(h, a.to(torch::kDouble)));
  // No streams on the CPU: run() just calls.
  int calls = 0;
  const model::WorkerStreams streams(torch::kCPU, 4);
  for (int w = 0; w < 6; ++w) streams.run(w, [&] { ++calls; });
  CHECK(calls == 6);
}

TEST_CASE("host/device copies and worker streams on CUDA") {
  if (!torch::cuda::is_available())
    test::skip("no CUDA device (torch::cuda::is_available() is false: CPU-only LibTorch or no GPU)");
  torch::NoGradGuard no_grad;
  const torch::Device cuda(torch::kCUDA, 0);
  const c10::impl::DeviceGuardImplInterface* impl = c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA);
  const torch::Tensor a = torch::randn({64, 257});
  // A strided window goes up as its own values.
  const torch::Tensor window = a.index({torch::indexing::Slice(), torch::indexing::Slice(3, 40)});
  const torch::Tensor up = nn::host_to_device(window, cuda, torch::kBFloat16);
  CHECK((up.device() == cuda));
  CHECK((up.scalar_type() == torch::kBFloat16));
  CHECK(torch::equal(up.cpu(), window.to(torch::kBFloat16)));
  // Several results come down with one wait, into pinned memory, equal to .cpu().
  const torch::Tensor x = a.to(cuda);
  const torch::Tensor y = (x * 3).sum(1), z = x.t();
  const std::vector<torch::Tensor> down = nn::device_to_host({y, torch::Tensor(), z, a});
  CHECK(down[0].is_pinned());
  CHECK(torch::equal(down[0], y.cpu()));
  CHECK_FALSE(down[1].defined());
  CHECK(torch::equal(down[2], z.cpu()));
  CHECK(down[3].data_ptr() == a.data_ptr());  // a host tensor is not copied
  // Two workers, two streams of their own (not the default stream); work
  // queued on one and brought down by device_to_host is complete.
  const model::WorkerStreams streams(cuda, 2);
  const c10::Stream main_stream = impl->getStream(cuda);
  std::vector<c10::Stream> seen;
  for (int w = 0; w < 2; ++w)
    streams.run(w, [&] {
      const c10::Stream s = impl->getStream(cuda);
      seen.push_back(s);
      CHECK(s.id() != main_stream.id());
      const torch::Tensor big = torch::ones({4096, 4096}, torch::TensorOptions().device(cuda));
      const torch::Tensor r = nn::device_to_host({big.mm(big).sum()})[0];
      CHECK(r.item<float>() == doctest::Approx(4096.0 * 4096.0 * 4096.0).epsilon(1e-6));
    });
  CHECK(seen[0].id() != seen[1].id());
  CHECK(impl->getStream(cuda).id() == main_stream.id());  // restored after run()
}
