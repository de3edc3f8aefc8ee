// One group of batch::run_item_groups for a network tool whose model takes a
// batch of prepared inputs (rass-restore's restore_many, rass-segment's
// segment_many): each item is read (`prepare`; --resume may mark it
// skipped), the rest go to the model together (`run`: one result and one
// error slot per input), then each is written (`write`). A failure at any
// step is that item's own error, LibTorch's without its backtrace.
#pragma once
#include <cstddef>
#include <exception>
#include <functional>
#include <vector>

#include "rass/model/torch_error.hpp"

namespace rass::model {

// Ready: the tool's per-item state, with `bool skipped` and `Input input`.
template <class Ready, class Input, class Result>
void run_item_group(const std::vector<size_t>& indices, std::vector<std::exception_ptr>& errors,
                    const std::function<void(size_t, Ready&)>& prepare,
                    const std::function<std::vector<Result>(const std::vector<Input>&, std::vector<std::exception_ptr>&)>& run,
                    const std::function<void(size_t, const Ready&, const Result&)>& write) {
  // Sized once before any item is read: inputs may point into their Ready.
  std::vector<Ready> ready(indices.size());
  std::vector<size_t> todo;  // positions in indices that go to the model
  for (size_t k = 0; k < indices.size(); ++k) {
    try {
      prepare(indices[k], ready[k]);
      if (!ready[k].skipped) todo.push_back(k);
    } catch (...) {
      errors[k] = without_backtrace(std::current_exception());
    }
  }
  std::vector<Input> inputs;
  for (size_t k : todo) inputs.push_back(ready[k].input);
  std::vector<std::exception_ptr> failed;
  const std::vector<Result> results = run(inputs, failed);
  for (size_t n = 0; n < todo.size(); ++n) {
    const size_t k = todo[n];
    try {
      if (failed[n]) std::rethrow_exception(failed[n]);
      write(indices[k], ready[k], results[n]);
    } catch (...) {
      errors[k] = without_backtrace(std::current_exception());
    }
  }
}

}  // namespace rass::model
