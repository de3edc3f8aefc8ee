#include "rass/model/torch_error.hpp"

#include <c10/util/Exception.h>

#include "rass/core/error.hpp"

namespace rass::model {

std::exception_ptr without_backtrace(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const c10::Error& c) {
    return std::make_exception_ptr(Error(ExitCode::runtime, c.what_without_backtrace()));
  } catch (...) {
    return e;
  }
}

}  // namespace rass::model
