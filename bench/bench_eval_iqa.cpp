// rass-bench-eval-iqa [NIQE_PARAMS.npz] [N]: pairs/s of PSNR+SSIM and images/s
// of NIQE at 512x512 on one thread (decoded images in memory). Not a test:
// scripts/bench-eval-iqa.sh runs it.
#include <chrono>
#include <cstdio>
#include <string>

#include "rass/core/alloc.hpp"
#include "rass/core/file.hpp"
#include "rass/io/image_io.hpp"
#include "rass/metrics/niqe.hpp"
#include "rass/metrics/psnr_ssim.hpp"

using namespace rass;
using namespace rass::metrics;

template <class F>
static double rate(int n, F f) {
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) f();
  return n / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int main(int argc, char** argv) {
  tune_allocator();  // as every tool does (cli/tool.cpp)
  const std::string params = argc > 1 ? argv[1] : "";
  const int n = argc > 2 ? std::stoi(argv[2]) : 50;
  Image a = read_image("examples/images/astronaut.png");
  Image b = a;
  for (size_t i = 0; i < b.data.size(); ++i) b.data[i] = uint8_t(std::min(255, b.data[i] + int(i * 2654435761u % 17)));
  volatile double sink = 0;
  std::printf("512x512 RGB, one thread\n");
  std::printf("psnr+ssim (pyiqa)          : %6.1f pairs/s\n", rate(n, [&] { sink = psnr_pyiqa(a, b, false, 0) + ssim_pyiqa(a, b, true, 0); }));
  std::printf("psnr+ssim (BasicSR, RGB)   : %6.1f pairs/s\n", rate(n, [&] { sink = psnr_basicsr(a, b, 0, false) + ssim_basicsr(a, b, 0, false); }));
  std::printf("psnr+ssim (BasicSR, Y)     : %6.1f pairs/s\n", rate(n, [&] { sink = psnr_basicsr(a, b, 0, true) + ssim_basicsr(a, b, 0, true); }));
  const std::vector<uint8_t> png = encode_image(a, ImageFormat::png);
  std::printf("PNG decode (for scale)     : %6.1f images/s\n", rate(n, [&] { sink = decode_image(png, "x").width; }));
  if (!params.empty() && file_exists(params)) {
    NiqeParams p = load_niqe_params(params);
    std::printf("niqe                       : %6.1f images/s\n", rate(n, [&] { sink = niqe(a, p).value; }));
  } else {
    std::printf("niqe                       : skipped (pass the NIQE parameter .npz)\n");
  }
  (void)sink;
  return 0;
}
