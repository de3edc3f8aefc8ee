// --timings (RASS_TIMINGS) of the network tools: where a run's time goes,
// stage by stage (reading, text encoder, VAE encoder, UNet, decoder, head,
// post-processing, copies, writing). A timed stage first waits for the
// work already queued on the calling thread's stream, so the stage before
// it is charged for its own device work, then runs and waits again. The
// waits cost speed (host and device no longer overlap), so this is a
// measurement switch; with -j N the workers' stages overlap and the sums
// can exceed the wall time. Work recorded as a CUDA graph (--cuda-graphs)
// is one stage. No waits and no clock reads when off. The report ends with
// the run's peak memory (peak_memory.hpp). Where tensors are counted (CUDA's
// allocator; the CPU with the counter on) each stage's row ends with the
// tensors' peak while it ran, weights included.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include <c10/core/Device.h>

namespace rass::model {

class StageTimes {
 public:
  explicit StageTimes(bool on = false, c10::Device device = c10::kCPU);
  ~StageTimes();
  StageTimes(const StageTimes&) = delete;
  StageTimes& operator=(const StageTimes&) = delete;

  bool on() const { return on_; }
  // An object that times nothing, for work that must not be split into
  // stages (recorded work) or is run without --timings.
  static const StageTimes& untimed();

  // f(), charged to `stage` when on.
  template <class F>
  decltype(auto) time(const char* stage, F&& f) const {
    if (!on_) return std::forward<F>(f)();
    const Scope scope(*this, stage);
    return std::forward<F>(f)();
  }

  // f(), charged to `stage` without waiting for the device: host work
  // (reading, writing) that may run on any thread beside the device's.
  template <class F>
  decltype(auto) time_host(const char* stage, F&& f) const {
    if (!on_) return std::forward<F>(f)();
    const Scope scope(*this, stage, /*wait=*/false);
    return std::forward<F>(f)();
  }

  // Seconds summed for `stage` and the number of calls (0, 0 if never timed).
  std::pair<double, size_t> total(const std::string& stage) const;
  // The stages in the order first timed, for stderr: total seconds, share
  // of the wall time since this object was made (the model loaded),
  // milliseconds per image, calls and the first call's seconds (one-time
  // set-up lands in it); `what` heads it.
  std::string report(const std::string& what, size_t images) const;

 private:
  class Scope {
   public:
    Scope(const StageTimes& t, const char* stage, bool wait = true);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    const StageTimes& t_;
    const char* stage_;
    double start_;
    bool wait_;
    uint64_t id_ = 0;
  };
  void wait() const;  // for the device work queued on this thread's stream
  uint64_t begin() const;  // a scope's id
  void add(uint64_t scope, const char* stage, double seconds) const;
  void fold_peak() const;

  bool on_ = false;
  c10::Device device_;
  double made_;  // seconds on the steady clock
  struct Sums;
  std::unique_ptr<Sums> sums_;
};

}  // namespace rass::model
