#include "rass/model/op_trace.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <vector>

#include <ATen/record_function.h>
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
  if (path.empty()) return path;
  const std::string what = "RASS_TRACE=" + path;
  if (path == "-") throw_usage(what + ": name a file (stdout carries the tool's own output)");
  // Found out before the model runs, not when the trace is written at the end.
  namespace sfs = std::filesystem;
  std::error_code ec;
  const sfs::file_status st = sfs::status(path, ec);
  if (sfs::is_directory(st)) throw_usage(what + ": is a directory");
  if (sfs::exists(st) && !sfs::is_regular_file(st))
    throw_usage(what + ": not a regular file (a trace is written under a temporary name and moved there)");
  const sfs::path dir = sfs::path(path).parent_path();
  if (!dir.empty()) {
    ec.clear();
    const bool folder = sfs::is_directory(dir, ec);
    if (!folder && (!ec || ec == std::errc::no_such_file_or_directory))
      throw_usage(what + ": no folder " + dir.string() + " to write the trace in");
    if (ec) throw_usage(what + ": its folder " + dir.string() + ": " + ec.message());
  }
  return path;
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

// Stops the profiler and returns its trace, written by Kineto to `file`
// (next to the trace's place), read back and removed.
std::vector<uint8_t> stop_profiler(const std::string& path, const std::string& file) {
  std::vector<uint8_t> bytes;
  try {
    prof::disableProfiler()->save(file);
    bytes = read_file_bytes(file);
  } catch (const c10::Error& e) {
    std::remove(file.c_str());
    throw_runtime("RASS_TRACE=" + path + ": LibTorch could not write the trace: " + trace_error_line(e));
  } catch (const Error& e) {
    std::remove(file.c_str());
    throw_runtime("RASS_TRACE=" + path + ": the trace could not be written next to it (" + e.what() + ")");
  }
  std::remove(file.c_str());
  // Kineto writes with an unchecked stream: a full disk leaves the file empty
  // or cut short, and a whole trace is one JSON object.
  auto last = std::find_if(bytes.rbegin(), bytes.rend(), [](uint8_t c) { return !std::isspace(c); });
  if (last == bytes.rend() || *last != '}')
    throw_runtime("RASS_TRACE=" + path + ": the trace could not be written next to it (empty or cut short: is the disk full?)");
  return bytes;
}

// The process's one trace (LibTorch's profiler is a single global state),
// held while it lives unless kept.
class TraceClaim {
 public:
  TraceClaim() {
    if (g_trace_running.exchange(true)) throw_runtime("RASS_TRACE: a trace is already running in this process");
  }
  ~TraceClaim() {
    if (!kept_) g_trace_running = false;
  }
  void keep() { kept_ = true; }

 private:
  bool kept_ = false;
};
}  // namespace

std::string OpTrace::check_env(const std::function<void(const std::string&)>& check_output) {
  const std::string path = env_path();
  if (path.empty()) return path;
  check_output(path);
  // A trace of nothing, written next to the file and removed: a LibTorch
  // without Kineto (Debian's 1.13), or a place it cannot write, is found
  // before the model loads.
  const TraceClaim claim;
  start_profiler(path, false);
  stop_profiler(path, temporary_path(path));
  return path;
}

std::unique_ptr<OpTrace> OpTrace::start(const std::string& path, const c10::Device& device) {
  if (path.empty()) return nullptr;
  return std::make_unique<OpTrace>(path, device.is_cuda());
}

OpTrace::OpTrace(std::string path, bool cuda) : path_(std::move(path)) {
  TraceClaim claim;
  start_profiler(path_, cuda);
  claim.keep();
  running_ = true;
}

void OpTrace::save() {
  if (!running_) return;
  running_ = false;
  g_trace_running = false;  // stopped below, written or not
  // Copied into place by the project's atomic write (synced, renamed, cleaned
  // up on a signal): Kineto's own file is only a temporary one.
  write_file_atomic(path_, stop_profiler(path_, temporary_path(path_)));
}

OpTrace::~OpTrace() {
  if (!running_) return;
  // The run ended with an error before save(): stop, write nothing.
  try {
    prof::disableProfiler();
  } catch (const c10::Error&) {
  }
  g_trace_running = false;
}

ModelCallMark::ModelCallMark() {
  if (!g_trace_running) return;  // no trace: not even a RecordFunction
  range_ = std::make_unique<at::RecordFunction>(at::RecordScope::USER_SCOPE);
  if (range_->isActive()) range_->before("rass::model_call", c10::ArrayRef<const c10::IValue>{});
}

ModelCallMark::~ModelCallMark() = default;  // the RecordFunction's destructor ends the range

}  // namespace rass::model
