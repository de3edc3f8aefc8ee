// rass-bench-degrade [IMAGE] [N] [PNG_LEVEL]: images/s of the degradation model
// alone (decoded input in memory, rass preset, 512x512 crop), on 1 thread and
// on all cores; then the same with PNG decode + encode included (at
// PNG_LEVEL, default 1, as rass-degrade writes). Also the thread CPU time of
// each stage (decode, model, encode) per image and the encoded size, so a noisy
// shared machine still gives comparable numbers. Not a test: run by
// scripts/bench-degrade.sh, numbers go in the README with the machine.
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
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

static double thread_cpu_s() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

struct Stages {  // thread CPU seconds summed over all images, and output bytes
  double decode = 0, model = 0, encode = 0;
  double bytes = 0;
};

static double run(int threads, int n, bool with_io, int level, const Image& hq, const std::vector<uint8_t>& png,
                  Stages* stages = nullptr) {
  const PipelineConfig cfg = make_preset("rass");
  std::atomic<int> next{0};
  std::mutex mu;
  Stages total;
  auto worker = [&] {
    Stages mine;
    for (int i; (i = next++) < n;) {
      const double t0 = thread_cpu_s();
      Image in = with_io ? decode_image(png, "bench.png") : hq;
      const double t1 = thread_cpu_s();
      Record rec = sample_record(cfg, 0, "bench" + std::to_string(i), in.width, in.height, in.channels);
      Image lq = apply_record(in, rec, "bench");
      const double t2 = thread_cpu_s();
      if (with_io) {
        EncodeOptions opt;
        opt.png_compression = level;
        mine.bytes += double(encode_image(lq, ImageFormat::png, opt).size());
      }
      const double t3 = thread_cpu_s();
      mine.decode += t1 - t0;
      mine.model += t2 - t1;
      mine.encode += t3 - t2;
    }
    std::lock_guard<std::mutex> lock(mu);
    total.decode += mine.decode;
    total.model += mine.model;
    total.encode += mine.encode;
    total.bytes += mine.bytes;
  };
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (stages) *stages = total;
  return n / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int main(int argc, char** argv) {
  tune_allocator();
  const std::string path = argc > 1 ? argv[1] : "examples/images/astronaut.png";
  const int n = argc > 2 ? std::stoi(argv[2]) : 100;
  const int level = argc > 3 ? std::stoi(argv[3]) : 1;
  const Image hq = crop512(read_image(path));
  const std::vector<uint8_t> png = encode_image(hq, ImageFormat::png, EncodeOptions{});
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  run(1, 5, true, level, hq, png);  // warm-up (Poisson tables, page faults)
  std::printf("rass preset, 512x512 RGB, %d images per run, PNG level %d\n", n, level);
  Stages s;
  std::printf("model only      1 thread : %6.1f images/s\n", run(1, n, false, level, hq, png));
  std::printf("model only  %2d threads  : %6.1f images/s\n", cores, run(cores, n, false, level, hq, png));
  std::printf("with PNG I/O    1 thread : %6.1f images/s\n", run(1, n, true, level, hq, png, &s));
  std::printf("  thread CPU per image: decode %.2f ms, model %.2f ms, encode %.2f ms (%.1f images per CPU-s);"
              " %.0f bytes per LQ PNG\n",
              1e3 * s.decode / n, 1e3 * s.model / n, 1e3 * s.encode / n, n / (s.decode + s.model + s.encode),
              s.bytes / n);
  std::printf("with PNG I/O %2d threads  : %6.1f images/s\n", cores, run(cores, n, true, level, hq, png));
  return 0;
}
