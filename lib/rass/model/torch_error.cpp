#include "rass/model/torch_error.hpp"

#include <c10/util/Exception.h>

#include <new>

#include "rass/core/error.hpp"
#include "rass/core/oom_message.hpp"

namespace rass::model {

std::exception_ptr without_backtrace(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const c10::Error& c) {
    // LibTorch's failed allocations read as one line that says so (the CPU
    // allocator's "[enforce fail at alloc_cpu.cpp:75]" reached a batch's
    // items as it was; the single-input path already said it plainly).
    return std::make_exception_ptr(Error(ExitCode::runtime, describe_allocation_failure(c.what_without_backtrace())));
  } catch (...) {
    return e;
  }
}

void rethrow_naming_input(const std::string& name) {
  try {
    throw;
  } catch (const c10::Error& c) {
    throw Error(ExitCode::runtime, name + ": " + describe_allocation_failure(c.what_without_backtrace()));
  } catch (const std::bad_alloc&) {
    throw Error(ExitCode::runtime, name + ": out of memory: a smaller input, batch or tile may fit");
  } catch (const Error& e) {
    // The model's own failures on this input ("non-finite values") name it
    // with -o FILE too, as a batch item's do.
    const std::string m = e.what();
    if (e.code() != ExitCode::runtime || m.compare(0, name.size() + 1, name + ":") == 0) throw;
    throw Error(ExitCode::runtime, name + ": " + m);
  }
}

void rethrow_naming_config(const std::string& config) {
  const std::string what = "the network it describes does not fit in memory";
  try {
    throw;
  } catch (const c10::Error& c) {
    const std::string line = allocation_failure_line(c.what_without_backtrace());
    if (line.empty()) throw;
    throw Error(ExitCode::runtime, config + ": " + what + " (" + line + "); check its sizes");
  } catch (const std::bad_alloc&) {
    throw Error(ExitCode::runtime, config + ": " + what + "; check its sizes");
  }
}

}  // namespace rass::model
