// rass-bench-iqa-musiq WEIGHTS.safetensors IMAGES.safetensors [threads]:
// scores the images (img_<i>, [H, W, 3] uint8, as scripts/bench_iqa_musiq_ref.py
// writes them) one at a time through rass's MUSIQ (tokens + network, fp32,
// CPU) and prints each score and the images per second after a warm-up
// image. Not a test: scripts/bench-iqa-musiq.sh runs it next to pyiqa.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include <torch/torch.h>

#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/iqa_musiq.hpp"
#include "rass/nn/threads.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: rass-bench-iqa-musiq WEIGHTS.safetensors IMAGES.safetensors [threads]\n");
    return 2;
  }
  const int threads = argc > 3 ? std::stoi(argv[3]) : int(std::thread::hardware_concurrency());
  rass::nn::set_cpu_threads(threads);
  c10::InferenceMode guard;
  rass::nn::MusiqNet net = rass::model::load_musiq(argv[1]);
  auto images = rass::SafeTensorsFile::open(argv[2]);
  std::vector<torch::Tensor> xs;
  for (int i = 0;; ++i) {
    const rass::TensorView* t = images->find("img_" + std::to_string(i));
    if (!t) break;
    xs.push_back(rass::model::to_tensor(*t, images->path()).permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat) / 255);
  }
  if (xs.empty()) return 2;
  auto run = [&](const torch::Tensor& x) {
    const rass::model::MusiqTokens t = rass::model::musiq_tokens(x);
    return net->score(t.patches, t.spatial, t.scale).item<double>();
  };
  run(xs[0]);  // warm-up
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < xs.size(); ++i) std::printf("score_%zu %.9g\n", i, run(xs[i]));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("rass: %zu images %lldx%lld, %d threads: %.3f s, %.2f images/s\n", xs.size(),
              (long long)xs[0].size(2), (long long)xs[0].size(3), threads, s, double(xs.size()) / s);
  return 0;
}
