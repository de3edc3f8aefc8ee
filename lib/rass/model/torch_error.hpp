// LibTorch's exceptions (c10::Error) carry a C++ backtrace in what(): a batch
// item's failure is reported with the message alone.
#pragma once
#include <exception>
#include <string>

namespace rass::model {

// A c10::Error becomes Error(runtime, its message without the backtrace);
// any other exception is returned as it is.
std::exception_ptr without_backtrace(std::exception_ptr e);

// Called inside a catch block: a LibTorch error, a failed allocation or an
// Error(runtime) not naming `name` yet becomes Error(runtime, "<name>:
// <message>"), the way a batch item's failure is named (run.cpp); anything
// else is rethrown as it is.
[[noreturn]] void rethrow_naming_input(const std::string& name);

// f() for one input (`name` as messages show it, "<stdin>" for '-'): an out
// of memory while the model works on it names the input.
template <class F>
decltype(auto) for_input(const std::string& name, F&& f) {
  try {
    return f();
  } catch (...) {
    rethrow_naming_input(name);
  }
}

// Called inside a catch block: a failed allocation becomes Error(runtime,
// "<config>: the network it describes does not fit in memory (...)");
// anything else is rethrown as it is.
[[noreturn]] void rethrow_naming_config(const std::string& config);

// f() building a network from the config file `config`: sizes a typo made
// huge ("block_out_channels": [65536, 65536]) name that file, not the image.
template <class F>
decltype(auto) for_config(const std::string& config, F&& f) {
  try {
    return f();
  } catch (...) {
    rethrow_naming_config(config);
  }
}

}  // namespace rass::model
