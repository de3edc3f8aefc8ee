// LibTorch's exceptions (c10::Error) carry a C++ backtrace in what(): a batch
// item's failure is reported with the message alone.
#pragma once
#include <exception>

namespace rass::model {

// A c10::Error becomes Error(runtime, its message without the backtrace);
// any other exception is returned as it is.
std::exception_ptr without_backtrace(std::exception_ptr e);

}  // namespace rass::model
