// RASS_TRACE=FILE: a Chrome trace (chrome://tracing, ui.perfetto.dev) of a
// network tool's run, written by LibTorch's own profiler (Kineto): every
// LibTorch operator with its thread and time and, on a GPU, every CUDA kernel
// and copy with its device time. Why: the GPU benchmark (scripts/bench-gpu.sh)
// says how fast a run is; a trace says which kernels the time went to, and
// scripts/trace_summary.py sets it beside the PyTorch reference's trace
// (scripts/bench_restore_torch.py --trace) kernel family by kernel family.
// Every thread's operators (the batch tools run their model on lane threads
// and read and write on others) with LibTorch >= 2.11 (its profiler's
// profile_all_threads); 2.0-2.10 the main thread's only. A LibTorch built
// without Kineto (Debian's 1.13) cannot write traces: refused before the
// model loads.
// A developer's switch (environment only, like RASS_MSDA_KERNEL): tracing
// slows the run, and every event is kept in memory until the end (about
// 3.5 MB per rass-restore batch of 2 at SD 2.1-base size on the CPU): meant
// for a few batches.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include <c10/core/Device.h>

namespace at {
struct RecordFunction;
}

namespace rass::model {

class OpTrace {
 public:
  // The tools call this before they load the model: RASS_TRACE's file, given to
  // `check_output` (their check that it names no input), then a trace of
  // nothing written next to it and removed, so a LibTorch without Kineto or
  // an unwritable folder fails now (Error(runtime) naming RASS_TRACE).
  // Returns the path ("" when RASS_TRACE is unset) for start().
  static std::string check_env(const std::function<void(const std::string&)>& check_output);
  // The trace check_env() returned, started; null for "". CUDA kernels are
  // recorded when `device` is a GPU.
  static std::unique_ptr<OpTrace> start(const std::string& path, const c10::Device& device);
  OpTrace(std::string path, bool cuda);
  OpTrace(const OpTrace&) = delete;
  OpTrace& operator=(const OpTrace&) = delete;
  // Stops the profiler. A trace not saved (the run ended with an error) is
  // dropped: no file for a run that did not finish.
  ~OpTrace();
  // Stops the profiler and writes the file (Kineto writes a temporary file
  // next to it, checked to be whole, then copied into place by
  // write_file_atomic); throws Error(runtime) naming the file when it cannot.
  // The tools call it after their outputs are written: a failure then fails
  // the run (exit 1) with every output kept.
  void save();

 private:
  // RASS_TRACE's file ("" when unset). Refused (Error(usage)): "-" (stdout
  // carries the outputs), a directory or other non-regular file, a place
  // with no folder.
  static std::string env_path();

  std::string path_;
  bool running_ = false;
};

// Marks one model call of a batch tool (run_model_items) in the trace as a
// `rass::model_call` range, so scripts/trace_summary.py --skip-first-call
// can leave out the first (one-time set-up). Nothing without a trace.
class ModelCallMark {
 public:
  ModelCallMark();
  ~ModelCallMark();
  ModelCallMark(const ModelCallMark&) = delete;
  ModelCallMark& operator=(const ModelCallMark&) = delete;

 private:
  std::unique_ptr<at::RecordFunction> range_;
};

}  // namespace rass::model
