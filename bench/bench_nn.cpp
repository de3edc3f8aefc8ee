// rass-bench-nn [cpu|cuda] [fp32|bf16|fp16] [threads]: UNet forward at a 64x64
// latent and VAE encoder forward at 512x512 with the SD 2.1-base configs and
// random weights (timings do not depend on the values). Not a test:
// scripts/bench-nn.sh runs it and prints the machine.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include <torch/torch.h>

#include "rass/nn/unet.hpp"
#include "rass/nn/vae.hpp"

template <class F>
static double seconds(F f) {
  auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int main(int argc, char** argv) {
  const torch::Device device(argc > 1 ? argv[1] : "cpu");
  const std::string dt = argc > 2 ? argv[2] : "fp32";
  const int threads = argc > 3 ? std::stoi(argv[3]) : int(std::thread::hardware_concurrency());
  const auto dtype = dt == "bf16" ? torch::kBFloat16 : dt == "fp16" ? torch::kHalf : torch::kFloat;
  torch::set_num_threads(threads);
  c10::InferenceMode guard;
  rass::nn::UNet2DCondition unet{rass::nn::UNetConfig{}};  // defaults are SD 2.1-base
  unet->eval();
  unet->to(device, dtype);
  rass::nn::AutoencoderKL vae{rass::nn::VaeConfig{}};
  vae->eval();
  vae->to(device, dtype);
  auto opts = torch::TensorOptions().device(device).dtype(dtype);
  const torch::Tensor z = torch::randn({1, 4, 64, 64}, opts), ctx = torch::randn({1, 77, 1024}, opts);
  const torch::Tensor x = torch::rand({1, 3, 512, 512}, opts) * 2 - 1;
  const torch::Tensor t = torch::full({1}, 999.0, torch::TensorOptions().device(device));
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  std::printf("device %s, dtype %s, %d threads\n", device.str().c_str(), dt.c_str(), threads);
  for (int rep = 0; rep < 2; ++rep) {  // the first round includes warm-up
    const double tu = seconds([&] { unet->forward(z, t, ctx); sync(); });
    const double tv = seconds([&] { vae->encode(x); sync(); });
    std::printf("%s UNet 64x64 latent: %.2f s   VAE encoder 512x512: %.2f s\n", rep ? "timed " : "warmup", tu, tv);
  }
  return 0;
}
