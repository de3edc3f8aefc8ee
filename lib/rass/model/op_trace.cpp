#include "rass/model/op_trace.hpp"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <set>

#include <c10/util/Exception.h>
#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/version.h>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"

namespace rass::model {

namespace {
namespace prof = torch::autograd::profiler;
using torch::profiler::impl::ActivityType;
using torch::profiler::impl::ProfilerConfig;
using torch::profiler::impl::ProfilerState;

// One trace per process: LibTorch's profiler is a single global state.
std::atomic<bool> g_trace_running{false};

std::string trace_error_line(const c10::Error& e) {
  std::string s = e.what_without_backtrace();
  const size_t nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}
}  // namespace

std::string OpTrace::env_path() {
  const char* env = std::getenv("RASS_TRACE");
  const std::string path = env ? env : "";
  if (path == "-") throw_usage("RASS_TRACE=-: name a file (stdout carries the tool's own output)");
  if (path.empty()) return path;
  // Found out before the model runs, not when the trace is written at the end.
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!dir.empty() && !std::filesystem::is_directory(dir, ec))
    throw_runtime("RASS_TRACE=" + path + ": no folder " + dir.string() + " to write the trace in");
  if (std::filesystem::is_directory(path, ec)) throw_runtime("RASS_TRACE=" + path + ": is a directory");
  return path;
}

std::unique_ptr<OpTrace> OpTrace::from_env(const c10::Device& device) {
  const std::string path = env_path();
  if (path.empty()) return nullptr;
  return std::make_unique<OpTrace>(path, device.is_cuda());
}

namespace {
ProfilerConfig trace_config() {
  // Input shapes: the summary tells a convolution at 512 px from one at 64.
  // Every thread (2.11's profile_all_threads: callbacks for all threads, not
  // the starting thread's own; joining threads one by one shares one
  // callback slot between them and loses rows).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 11)
  torch::profiler::impl::ExperimentalConfig experimental;
  experimental.profile_all_threads = true;
  return ProfilerConfig(ProfilerState::KINETO, /*report_input_shapes=*/true, /*profile_memory=*/false,
                        /*with_stack=*/false, /*with_flops=*/false, /*with_modules=*/false, experimental);
#else
  return ProfilerConfig(ProfilerState::KINETO, /*report_input_shapes=*/true, /*profile_memory=*/false);
#endif
}

void start_profiler(const std::string& path, bool cuda) {
  std::set<ActivityType> activities{ActivityType::CPU};
  if (cuda) activities.insert(ActivityType::CUDA);
  const ProfilerConfig config = trace_config();
  try {
    prof::prepareProfiler(config, activities);
    prof::enableProfiler(config, activities);
  } catch (const c10::Error& e) {
    throw_runtime("RASS_TRACE=" + path + ": LibTorch's profiler did not start: " + trace_error_line(e));
  }
}

// Stops the profiler and writes its trace to `file`, checked.
void stop_profiler(const std::string& path, const std::string& file) {
  try {
    prof::disableProfiler()->save(file);
  } catch (const c10::Error& e) {
    std::remove(file.c_str());
    throw_runtime("RASS_TRACE=" + path + ": LibTorch could not write the trace: " + trace_error_line(e));
  }
  // Kineto writes with an unchecked stream: an empty or missing file is its
  // only sign of a failed write (full disk, unwritable folder).
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  if (ec || size == 0) {
    std::remove(file.c_str());
    throw_runtime("RASS_TRACE=" + path + ": the trace could not be written next to it" +
                  (ec ? " (" + ec.message() + ")" : std::string(" (empty file)")));
  }
}
}  // namespace

std::string OpTrace::check_env() {
  const std::string path = env_path();
  if (path.empty()) return path;
  if (g_trace_running.exchange(true)) throw_runtime("RASS_TRACE: a trace is already running in this process");
  // A trace of nothing, written next to the file and removed: a LibTorch
  // without Kineto (Debian's 1.13), or a place it cannot write, is found
  // before the model loads.
  const std::string probe = temporary_path(path);
  try {
    start_profiler(path, false);
    stop_profiler(path, probe);
  } catch (...) {
    g_trace_running = false;
    throw;
  }
  g_trace_running = false;
  std::remove(probe.c_str());
  return path;
}

OpTrace::OpTrace(std::string path, bool cuda) : path_(std::move(path)) {
  if (g_trace_running.exchange(true)) throw_runtime("RASS_TRACE: a trace is already running in this process");
  try {
    start_profiler(path_, cuda);
  } catch (...) {
    g_trace_running = false;
    throw;
  }
  running_ = true;
}

void OpTrace::save() {
  if (!running_) return;
  running_ = false;
  const std::string tmp = temporary_path(path_);
  try {
    stop_profiler(path_, tmp);
  } catch (...) {
    g_trace_running = false;
    throw;
  }
  g_trace_running = false;
  if (std::rename(tmp.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw_runtime("RASS_TRACE=" + path_ + ": " + std::strerror(err));
  }
}

OpTrace::~OpTrace() {
  try {
    save();
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
  }
}

}  // namespace rass::model
