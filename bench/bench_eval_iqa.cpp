// rass-bench-eval-iqa [NIQE_PARAMS.npz] [N]: pairs/s of PSNR+SSIM and images/s
// of NIQE at 512x512 on one thread (decoded images in memory). Not a test:
// scripts/bench-eval-iqa.sh runs it.
//
// rass-bench-eval-iqa --memory METRIC WIDTH HEIGHT [--y-channel] [NIQE_PARAMS.npz]:
// the peak memory one metric adds on top of a decoded 8-bit RGB pair of that
// size (synthetic), as the growth of VmHWM (/proc/self/status) over VmRSS
// before the call, in bytes per pixel of one image. One metric per process:
// scripts/bench-eval-iqa-memory.sh runs them all.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
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

// VmRSS or VmHWM of this process in bytes (-1 when unknown).
static long long status_bytes(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(std::strlen(key) + 1)) * 1024;
  return -1;
}

// a: the astronaut mirror-tiled to w x h; b: a plus deterministic noise in [-10, 10].
static void synthetic_pair(int w, int h, Image& a, Image& b) {
  const Image s = drop_alpha(read_image("examples/images/astronaut.png"));
  a = Image(w, h, 3);
  b = Image(w, h, 3);
  uint32_t st = 12345;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const int ty = (y / s.height) % 2 ? s.height - 1 - y % s.height : y % s.height;
      const int tx = (x / s.width) % 2 ? s.width - 1 - x % s.width : x % s.width;
      for (int c = 0; c < 3; ++c) {
        const int v = s.data[(size_t(ty) * s.width + tx) * s.channels + c];
        st = st * 1664525u + 1013904223u;
        const int n = v + int((st >> 24) % 21) - 10;
        a.data[(size_t(y) * w + x) * 3 + c] = uint8_t(v);
        b.data[(size_t(y) * w + x) * 3 + c] = uint8_t(n < 0 ? 0 : n > 255 ? 255 : n);
      }
    }
}

static int memory_mode(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: rass-bench-eval-iqa --memory METRIC WIDTH HEIGHT [--y-channel] [NIQE_PARAMS.npz]\n");
    return 2;
  }
  const std::string m = argv[2];
  const int w = std::stoi(argv[3]), h = std::stoi(argv[4]);
  bool y = false;
  std::string params;
  for (int i = 5; i < argc; ++i) {
    if (std::string(argv[i]) == "--y-channel") y = true;
    else params = argv[i];
  }
  NiqeParams p;
  if (m == "niqe") p = load_niqe_params(params);
  Image a, b;
  synthetic_pair(w, h, a, b);
  const long long rss0 = status_bytes("VmRSS:");
  // Reset the peak to the current RSS (Linux 4.0+); without it the peak so far
  // is kept, which the pair generation (no temporaries) hardly raises.
  { std::ofstream("/proc/self/clear_refs") << "5"; }
  const auto t0 = std::chrono::steady_clock::now();
  double v = 0;
  if (m == "psnr") v = psnr_pyiqa(a, b, false, 0);
  else if (m == "psnry") v = psnr_pyiqa(a, b, true, 0);
  else if (m == "ssim") v = ssim_pyiqa(a, b, true, 0);
  else if (m == "ssimc") v = ssim_pyiqa(a, b, false, 0);
  else if (m == "psnr@basicsr") v = psnr_basicsr(a, b, 0, y);
  else if (m == "ssim@basicsr") v = ssim_basicsr(a, b, 0, y);
  else if (m == "niqe") v = niqe(a, p).value;
  else {
    std::fprintf(stderr, "unknown metric %s\n", m.c_str());
    return 2;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const long long hwm = status_bytes("VmHWM:");
  const double px = double(w) * h;
  std::printf("%-13s %-11s %dx%d  value %.10g  %.2f s  pair %.0f MB  peak growth %.1f MB = %.2f bytes/pixel\n", m.c_str(),
              y ? "y-channel" : "", w, h, v, secs, 2 * px * 3 / 1e6, (hwm - rss0) / 1e6, (hwm - rss0) / px);
  return 0;
}

int main(int argc, char** argv) {
  tune_allocator();  // as every tool does (cli/tool.cpp)
  if (argc > 1 && std::string(argv[1]) == "--memory") return memory_mode(argc, argv);
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
