#include "rass/model/stage_times.hpp"

#include <chrono>
#include <cstdio>
#include <mutex>
#include <vector>

#include <c10/core/impl/DeviceGuardImplInterface.h>

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
    int64_t peak = -1;  // bytes in tensors at most while it ran (-1: not counted)
  };
  std::vector<Stage> stages;  // first-use order; a handful of stages
  // Tensor peaks: the counter (CUDA allocator or CPU counter) is read and
  // reset at each stage's start and end; each reading goes to the run's
  // peak and to every stage open at the time (nested, or another lane's).
  TensorPeak run;
  std::vector<std::pair<uint64_t, int64_t>> open;  // scope id, its peak so far
  uint64_t scopes = 0;                              // ids handed out
};

namespace {
void raise(int64_t& to, int64_t v) {
  if (v > to) to = v;
}
}  // namespace

// Under sums_->mu.
void StageTimes::fold_peak() const {
  TensorPeak p;
  try {
    p = take_tensor_peak(device_);
  } catch (...) {  // a device error shows again at the caller's next call
    return;
  }
  if (p.allocated < 0) return;
  raise(sums_->run.allocated, p.allocated);
  raise(sums_->run.reserved, p.reserved);
  for (auto& [scope, peak] : sums_->open) raise(peak, p.allocated);
}

const StageTimes& StageTimes::untimed() {
  static const StageTimes none;
  return none;
}

StageTimes::StageTimes(bool on, c10::Device device)
    : on_(on), device_(device), made_(now_seconds()), sums_(std::make_unique<Sums>()) {
  // Made once the model is loaded: the tensors' peak is the run's from
  // here (loading holds each weight twice while it converts the dtype).
  if (on_) take_tensor_peak(device_);
}
StageTimes::~StageTimes() = default;

void StageTimes::wait() const {
  if (device_.is_cpu()) return;  // the CPU's work is done when its call returns
  c10::impl::getDeviceGuardImpl(device_.type())->getStream(device_).synchronize();
}

uint64_t StageTimes::begin() const {
  std::lock_guard<std::mutex> lock(sums_->mu);
  fold_peak();
  const uint64_t id = ++sums_->scopes;
  sums_->open.emplace_back(id, -1);
  return id;
}

void StageTimes::add(uint64_t scope, const char* stage, double seconds) const {
  std::lock_guard<std::mutex> lock(sums_->mu);
  fold_peak();
  int64_t peak = -1;
  for (auto it = sums_->open.begin(); it != sums_->open.end(); ++it)
    if (it->first == scope) {
      peak = it->second;
      sums_->open.erase(it);
      break;
    }
  for (Sums::Stage& s : sums_->stages)
    if (s.name == stage) {
      s.seconds += seconds;
      ++s.calls;
      raise(s.peak, peak);
      return;
    }
  sums_->stages.push_back({stage, seconds, 1, seconds, peak});
}

StageTimes::Scope::Scope(const StageTimes& t, const char* stage, bool wait) : t_(t), stage_(stage), wait_(wait) {
  if (wait_) t_.wait();
  id_ = t_.begin();
  start_ = now_seconds();
}

StageTimes::Scope::~Scope() {
  try {
    if (wait_) t_.wait();
  } catch (...) {  // a device error shows again at the caller's next call
  }
  try {
    t_.add(id_, stage_, now_seconds() - start_);
  } catch (...) {  // reading the device's counters failed: the stage goes unrecorded
  }
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
  fold_peak();
  const bool peaks = sums_->run.allocated >= 0;
  const double gib = double(int64_t(1) << 30);
  std::string out = what + " (--timings: each stage waits for the device before and after it; " +
                    std::to_string(items) + (items == 1 ? " image" : " images") + ", device " + device_.str() + ")\n";
  char line[160];
  std::snprintf(line, sizeof line, "  %-32s %10s %7s %12s %7s %11s%s\n", "stage", "seconds", "share", "ms per image", "calls",
                "first call", peaks ? "  peak GiB" : "");
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
    std::snprintf(line, sizeof line, "  %-32s %10.3f %6.1f%% %12s %7zu %11.3f", s.name.c_str(), s.seconds,
                  wall_seconds > 0 ? 100 * s.seconds / wall_seconds : 0.0, per_image(s.seconds).c_str(), s.calls,
                  s.first);
    out += line;
    // The tensors at most while the stage ran (weights included; with -j N
    // other lanes' too): which stage a memory limit is about.
    if (peaks) {
      std::snprintf(line, sizeof line, " %9.3f", s.peak >= 0 ? double(s.peak) / gib : 0.0);
      out += line;
    }
    out += "\n";
  }
  std::snprintf(line, sizeof line, "  %-32s %10.3f %6.1f%% %12s\n", "(all stages)", sum,
                wall_seconds > 0 ? 100 * sum / wall_seconds : 0.0, per_image(sum).c_str());
  out += line;
  std::snprintf(line, sizeof line, "  %-32s %10.3f %7s %12s\n", "(wall since the model loaded)", wall_seconds, "",
                per_image(wall_seconds).c_str());
  out += line;
  PeakMemory m = peak_memory(device_);
  if (peaks) {  // the counters restart at every stage: the run's peak is gathered here
    m.allocated = sums_->run.allocated;
    m.reserved = sums_->run.reserved;
  }
  out += "  peak memory: " + peak_memory_text(device_, m) + "\n";
  return out;
}

}  // namespace rass::model
