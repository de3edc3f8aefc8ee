#include "rass/model/stage_times.hpp"

#include <chrono>
#include <cstdio>
#include <mutex>
#include <vector>

#include <c10/core/impl/DeviceGuardImplInterface.h>

#include "rass/model/cpu_tensor_bytes.hpp"
#include "rass/model/peak_memory.hpp"

namespace rass::model {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

struct StageTimes::Sums {
  std::mutex mu;
  struct Stage {
    std::string name;
    double seconds = 0;
    size_t calls = 0;
    double first = 0;  // the first call: lazy set-up (kernels, handles, autotuning) lands there
  };
  std::vector<Stage> stages;  // first-use order; a handful of stages
};

const StageTimes& StageTimes::untimed() {
  static const StageTimes none;
  return none;
}

StageTimes::StageTimes(bool on, c10::Device device)
    : on_(on), device_(device), made_(now_seconds()), sums_(std::make_unique<Sums>()) {
  // Made once the model is loaded: the CPU tensors' peak is the run's from
  // here (loading holds each weight twice while it converts the dtype).
  if (on_ && device_.is_cpu()) reset_cpu_tensor_peak();
}
StageTimes::~StageTimes() = default;

void StageTimes::wait() const {
  if (device_.is_cpu()) return;  // the CPU's work is done when its call returns
  c10::impl::getDeviceGuardImpl(device_.type())->getStream(device_).synchronize();
}

void StageTimes::add(const char* stage, double seconds) const {
  std::lock_guard<std::mutex> lock(sums_->mu);
  for (Sums::Stage& s : sums_->stages)
    if (s.name == stage) {
      s.seconds += seconds;
      ++s.calls;
      return;
    }
  sums_->stages.push_back({stage, seconds, 1, seconds});
}

StageTimes::Scope::Scope(const StageTimes& t, const char* stage, bool wait) : t_(t), stage_(stage), wait_(wait) {
  if (wait_) t_.wait();
  start_ = now_seconds();
}

StageTimes::Scope::~Scope() {
  try {
    if (wait_) t_.wait();
  } catch (...) {  // a device error shows again at the caller's next call
  }
  t_.add(stage_, now_seconds() - start_);
}

std::pair<double, size_t> StageTimes::total(const std::string& stage) const {
  std::lock_guard<std::mutex> lock(sums_->mu);
  for (const Sums::Stage& s : sums_->stages)
    if (s.name == stage) return {s.seconds, s.calls};
  return {0.0, 0};
}

std::string StageTimes::report(const std::string& what, size_t items) const {
  const double wall_seconds = now_seconds() - made_;
  std::lock_guard<std::mutex> lock(sums_->mu);
  std::string out = what + " (--timings: each stage waits for the device before and after it; " +
                    std::to_string(items) + (items == 1 ? " image" : " images") + ", device " + device_.str() + ")\n";
  char line[160];
  std::snprintf(line, sizeof line, "  %-32s %10s %7s %12s %7s %11s\n", "stage", "seconds", "share", "ms per image", "calls",
                "first call");
  out += line;
  // Per image: over the images written (failed items' stages count in the
  // seconds too); "-" when none was.
  auto per_image = [&](double seconds) {
    char v[32] = "-";
    if (items) std::snprintf(v, sizeof v, "%.2f", 1e3 * seconds / double(items));
    return std::string(v);
  };
  double sum = 0;
  for (const Sums::Stage& s : sums_->stages) {
    sum += s.seconds;
    std::snprintf(line, sizeof line, "  %-32s %10.3f %6.1f%% %12s %7zu %11.3f\n", s.name.c_str(), s.seconds,
                  wall_seconds > 0 ? 100 * s.seconds / wall_seconds : 0.0, per_image(s.seconds).c_str(), s.calls,
                  s.first);
    out += line;
  }
  std::snprintf(line, sizeof line, "  %-32s %10.3f %6.1f%% %12s\n", "(all stages)", sum,
                wall_seconds > 0 ? 100 * sum / wall_seconds : 0.0, per_image(sum).c_str());
  out += line;
  std::snprintf(line, sizeof line, "  %-32s %10.3f %7s %12s\n", "(wall since the model loaded)", wall_seconds, "",
                per_image(wall_seconds).c_str());
  out += line;
  out += "  peak memory: " + peak_memory_text(device_) + "\n";
  return out;
}

}  // namespace rass::model
