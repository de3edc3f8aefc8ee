// RASS_TRACE=FILE: a Chrome trace (chrome://tracing, ui.perfetto.dev) of a
// network tool's run, written by LibTorch's own profiler (Kineto): every
// LibTorch operator with its thread and time and, on a GPU, every CUDA kernel
// and copy with its device time. Why: the GPU benchmark (scripts/bench-gpu.sh)
// says how fast a run is; a trace says which kernels the time went to, and
// scripts/trace_summary.py sets it beside the PyTorch reference's trace
// (scripts/bench_restore_torch.py --trace) kernel family by kernel family.
// Every thread's operators (the batch tools run their model on lane threads
// and read and write on others) with LibTorch >= 2.11 (its profiler's
// profile_all_threads); with Debian's 1.13 the main thread's only.
// A developer's switch (environment only, like RASS_MSDA_KERNEL): tracing
// slows the run and the file grows with it (about 1 MB per UNet pass).
#pragma once
#include <memory>
#include <string>

#include <c10/core/Device.h>

namespace rass::model {

class OpTrace {
 public:
  // RASS_TRACE's file ("" when unset), for the tools' output checks (a trace
  // may not overwrite an input). "-" is refused: stdout carries the outputs.
  static std::string env_path();
  // env_path(), having checked that this LibTorch can write a trace there
  // (a trace of nothing is written and removed): the tools call it before
  // they load the model. Throws Error(runtime) naming RASS_TRACE when not.
  static std::string check_env();
  // The trace RASS_TRACE asks for, started; null when it is unset or empty.
  // CUDA kernels are recorded when `device` is a GPU.
  static std::unique_ptr<OpTrace> from_env(const c10::Device& device);
  OpTrace(std::string path, bool cuda);
  OpTrace(const OpTrace&) = delete;
  OpTrace& operator=(const OpTrace&) = delete;
  // Stops the profiler; a trace not saved yet is saved (a failure then is
  // printed on stderr: a destructor cannot throw).
  ~OpTrace();
  // Stops the profiler and writes the file (atomically: a temporary name,
  // then rename); throws Error(runtime) naming the file when it cannot.
  void save();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool running_ = false;
};

}  // namespace rass::model
