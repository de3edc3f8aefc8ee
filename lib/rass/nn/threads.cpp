#include "rass/nn/threads.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <thread>

#include <ATen/Parallel.h>

namespace rass::nn {

void set_cpu_threads(int threads) {
  at::set_num_threads(threads > 0 ? threads : int(std::max(1u, std::thread::hardware_concurrency())));
  // Looked up at run time: the symbol exists only when OpenBLAS is the BLAS
  // loaded (the reference BLAS or MKL have none, and need nothing here).
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(1);
}

void set_item_threads(int threads, int jobs) {
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  set_cpu_threads(threads > 0 ? threads : std::max(1, cores / std::max(1, jobs)));
}

}  // namespace rass::nn
