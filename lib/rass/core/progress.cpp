#include "rass/core/progress.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace rass {

Progress::Progress(size_t total, std::string label, bool quiet)
    : total_(total), label_(std::move(label)), enabled_(!quiet && ::isatty(2)) {
  start_ = last_ = std::chrono::steady_clock::now();
}

Progress::~Progress() { finish(); }

void Progress::tick(size_t n) {
  done_ += n;
  if (!enabled_) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto now = std::chrono::steady_clock::now();
  if (now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  draw(false);
}

void Progress::finish() {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  finished_ = true;
  draw(true);
  std::fputc('\n', stderr);
}

void Progress::draw(bool) {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  size_t done = done_;
  double rate = secs > 0 ? done / secs : 0;
  double eta = rate > 0 ? (total_ - done) / rate : 0;
  std::fprintf(stderr, "\r%s: %zu/%zu  %.1f/s  ETA %.0fs   ", label_.c_str(), done, total_, rate, eta);
  std::fflush(stderr);
}

bool use_color(int fd) {
  const char* nc = std::getenv("NO_COLOR");
  return ::isatty(fd) && !(nc && *nc);
}

}  // namespace rass
