// rass-bench-degrade [IMAGE] [N]: images/s of the degradation model alone
// (decoded input in memory, rass preset, 512x512 crop), on 1 thread and on all
// cores; then the same with PNG decode + encode included. Not a test: run by
// scripts/bench-degrade.sh, numbers go in the README with the machine.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "rass/core/alloc.hpp"
#include "rass/degrade/record.hpp"
#include "rass/io/image_io.hpp"

using namespace rass;
using namespace rass::degrade;

static Image crop512(const Image& img) {
  Image out(512, 512, img.channels, 8);
  for (int y = 0; y < 512; ++y)
    for (int x = 0; x < 512 * img.channels; ++x)
      out.data[size_t(y) * 512 * img.channels + x] =
          img.data[size_t(y % img.height) * img.width * img.channels + (x % (img.width * img.channels))];
  return out;
}

static double run(int threads, int n, bool with_io, const Image& hq, const std::vector<uint8_t>& png) {
  const PipelineConfig cfg = make_preset("rass");
  std::atomic<int> next{0};
  auto worker = [&] {
    for (int i; (i = next++) < n;) {
      Image in = with_io ? decode_image(png, "bench.png") : hq;
      Record rec = sample_record(cfg, 0, "bench" + std::to_string(i), in.width, in.height, in.channels);
      Image lq = apply_record(in, rec, "bench");
      if (with_io) {
        EncodeOptions opt;
        opt.png_compression = 1;
        volatile size_t size = encode_image(lq, ImageFormat::png, opt).size();
        (void)size;
      }
    }
  };
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  return n / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int main(int argc, char** argv) {
  tune_allocator();
  const std::string path = argc > 1 ? argv[1] : "examples/images/astronaut.png";
  const int n = argc > 2 ? std::stoi(argv[2]) : 100;
  const Image hq = crop512(read_image(path));
  EncodeOptions opt;
  const std::vector<uint8_t> png = encode_image(hq, ImageFormat::png, opt);
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  run(1, 5, false, hq, png);  // warm-up (Poisson tables, page faults)
  std::printf("rass preset, 512x512 RGB, %d images per run\n", n);
  std::printf("model only      1 thread : %6.1f images/s\n", run(1, n, false, hq, png));
  std::printf("model only  %2d threads  : %6.1f images/s\n", cores, run(cores, n, false, hq, png));
  std::printf("with PNG I/O    1 thread : %6.1f images/s\n", run(1, n, true, hq, png));
  std::printf("with PNG I/O %2d threads  : %6.1f images/s\n", cores, run(cores, n, true, hq, png));
  return 0;
}
