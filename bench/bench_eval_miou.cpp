// rass-bench-eval-miou [N] [DIR]: images/s of rass-eval-miou's evaluation
// (read + PNG decode + counting + merge) on N random 512x512 label-map pairs
// (150 classes, ADE20K-like regions, 5% ignore), on 1 thread and on all
// cores, and where the time goes: file reading, PNG decoding and counting,
// each timed alone on one thread. The pairs are written as PNG (zlib level 6,
// as PIL saves) to DIR (kept), or to a temporary directory (removed).
// Not a test: run by scripts/bench-eval-miou.sh.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "rass/core/alloc.hpp"
#include "rass/core/file.hpp"
#include "rass/core/rng.hpp"
#include "rass/io/image_io.hpp"
#include "rass/metrics/eval_miou_tool.hpp"

using namespace rass;
using namespace rass::metrics;
namespace fs = std::filesystem;

namespace {

constexpr int kSize = 512, kClasses = 150;

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Seed {
  double x, y;
  int label;
};

// A Voronoi partition of `seeds`: region-shaped label maps like real annotations.
Image voronoi(const std::vector<Seed>& seeds) {
  Image img(kSize, kSize, 1, 8);
  for (int y = 0; y < kSize; ++y)
    for (int x = 0; x < kSize; ++x) {
      double best = 1e30;
      int label = 0;
      for (const Seed& s : seeds) {
        const double d = (s.x - x) * (s.x - x) + (s.y - y) * (s.y - y);
        if (d < best) best = d, label = s.label;
      }
      img.data[size_t(y) * kSize + x] = uint8_t(label);
    }
  return img;
}

// GT: 16 regions of random classes, one of them ignored (255) about 5% of the
// time by area; prediction: the same regions with moved borders, a third of
// them with a wrong class.
void make_pair(int i, Image* pred, Image* gt) {
  Rng rng(7, std::to_string(i), "bench");
  std::vector<Seed> seeds(16);
  for (Seed& s : seeds) s = {rng.uniform(0, kSize), rng.uniform(0, kSize), int(rng.below(kClasses))};
  seeds[0].label = rng.uniform() < 0.8 ? 255 : seeds[0].label;
  *gt = voronoi(seeds);
  for (Seed& s : seeds) {
    s.x += rng.uniform(-24, 24);
    s.y += rng.uniform(-24, 24);
    if (s.label == 255 || rng.uniform() < 1.0 / 3) s.label = int(rng.below(kClasses));
  }
  *pred = voronoi(seeds);
}

}  // namespace

int main(int argc, char** argv) {
  tune_allocator();
  const int n = argc > 1 ? std::stoi(argv[1]) : 500;
  const bool keep = argc > 2;
  const std::string dir =
      keep ? argv[2] : (fs::temp_directory_path() / ("rass-bench-miou." + std::to_string(::getpid()))).string();
  make_directories(dir + "/pred");
  make_directories(dir + "/gt");

  // The data set (not timed): PNG at zlib level 6.
  {
    std::vector<std::thread> pool;
    const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
    std::atomic<int> next{0};
    for (int t = 0; t < cores; ++t)
      pool.emplace_back([&] {
        for (int i; (i = next++) < n;) {
          Image pred, gt;
          make_pair(i, &pred, &gt);
          char name[32];
          std::snprintf(name, sizeof name, "/%05d.png", i);
          EncodeOptions opt;
          opt.png_compression = 6;
          write_image(dir + "/pred" + name, pred, ImageFormat::png, opt);
          write_image(dir + "/gt" + name, gt, ImageFormat::png, opt);
        }
      });
    for (auto& t : pool) t.join();
  }
  uintmax_t bytes = 0;
  for (const char* sub : {"/pred", "/gt"})
    for (const auto& e : fs::directory_iterator(dir + sub)) bytes += e.file_size();

  MiouJob job;
  job.inputs = {dir + "/pred", dir + "/gt"};
  job.num_classes = kClasses;
  job.quiet = true;
  LabelOptions lo;
  lo.num_classes = kClasses;
  const LabelLuts luts = make_luts(lo);
  const std::vector<MiouPair> pairs = collect_pairs(job);

  auto eval = [&](int jobs) {
    job.jobs = jobs;
    const auto t0 = Clock::now();
    MiouResult r = evaluate_pairs(job, pairs, luts, {});
    const double s = seconds_since(t0);
    if (r.evaluated != size_t(n)) std::fprintf(stderr, "evaluated %zu of %d\n", r.evaluated, n);
    return s;
  };
  eval(1);  // warm the page cache and the allocator
  const double full1 = eval(1);
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  const double full_all = eval(cores);

  // The parts, one thread: read the files, decode them, count them.
  std::vector<std::vector<uint8_t>> files;
  double t_read = 0, t_decode = 0, t_count = 0;
  {
    auto t0 = Clock::now();
    for (const MiouPair& p : pairs) {
      files.push_back(read_file_bytes(p.pred));
      files.push_back(read_file_bytes(p.gt));
    }
    t_read = seconds_since(t0);
  }
  {
    PairCounter counter(luts);
    Confusion total(kClasses);
    ClassCounts image;
    for (size_t i = 0; i < files.size(); i += 2) {
      auto t0 = Clock::now();
      Image pred = decode_image(files[i], "pred");
      Image gt = decode_image(files[i + 1], "gt");
      t_decode += seconds_since(t0);
      t0 = Clock::now();
      counter.count(pred, gt);
      counter.flush(total, &image);
      t_count += seconds_since(t0);
    }
  }

  std::printf(
      "rass-eval-miou evaluation, %d pairs of 512x512 8-bit label maps, %d classes, PNG level 6 "
      "(%.1f KB per file on average)\n",
      n, kClasses, double(bytes) / (2.0 * n) / 1024.0);
  std::printf("whole evaluation   1 thread : %7.1f pairs/s\n", n / full1);
  std::printf("whole evaluation %2d threads : %7.1f pairs/s\n", cores, n / full_all);
  const double parts = t_read + t_decode + t_count;
  std::printf("PNG decoding alone 1 thread : %7.1f pairs/s (both files of each pair)\n", n / t_decode);
  std::printf(
      "per pair on 1 thread, each part timed alone: read files %.3f ms (%.1f%%), PNG decode %.3f ms (%.1f%%), "
      "counting %.3f ms (%.1f%%); whole evaluation %.3f ms\n",
      1e3 * t_read / n, 100 * t_read / parts, 1e3 * t_decode / n, 100 * t_decode / parts, 1e3 * t_count / n,
      100 * t_count / parts, 1e3 * full1 / n);
  if (!keep) fs::remove_all(dir);
  return 0;
}
