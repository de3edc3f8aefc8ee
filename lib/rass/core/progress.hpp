// A progress line on stderr, drawn only when stderr is a terminal (and not
// --quiet), so logs of batch jobs stay clean. Thread-safe.
#pragma once
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>

namespace rass {

class Progress {
 public:
  Progress(size_t total, std::string label, bool quiet);
  ~Progress();
  void tick(size_t n = 1);
  void finish();
  bool enabled() const { return enabled_; }

 private:
  void draw(bool final);
  size_t total_;
  std::string label_;
  bool enabled_;
  std::atomic<size_t> done_{0};
  std::mutex mu_;
  std::chrono::steady_clock::time_point start_, last_;
  bool finished_ = false;
};

// True when the stream (1 stdout, 2 stderr) is a terminal and NO_COLOR is unset.
bool use_color(int fd);

}  // namespace rass
