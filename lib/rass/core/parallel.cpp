#include "rass/core/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace rass {

int worker_count(int requested, size_t items) {
  size_t n = requested > 0 ? size_t(requested) : std::max(1u, std::thread::hardware_concurrency());
  return int(std::max<size_t>(1, std::min(n, items)));
}

int group_workers(int requested, size_t items, size_t group) {
  if (group == 0) group = 1;
  return worker_count(requested, (items + group - 1) / group);
}

void parallel_for(size_t items, int workers, const std::function<void(size_t, int)>& body) {
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mu;
  auto run = [&](int w) {
    try {
      for (size_t i; (i = next++) < items;) body(i, w);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
      next = items;  // stop handing out work
    }
  };
  std::vector<std::thread> threads;
  try {
    threads.reserve(size_t(std::max(workers, 1) - 1));
    for (int w = 1; w < workers; ++w) threads.emplace_back(run, w);
  } catch (...) {
    // No more threads (std::system_error at a thread limit, std::bad_alloc):
    // the ones started, and this one, do the work.
  }
  run(0);
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace rass
