// Batching helpers of the network layer: splitting a group into calls of at
// most N, retrying a failed call item by item (so an error lands on the item
// that caused it), and the group body of the batch tools.
#pragma once
#include <algorithm>
#include <cstddef>
#include <exception>
#include <functional>
#include <vector>

#include "rass/batch/run.hpp"
#include "rass/core/parallel.hpp"
#include "rass/model/device.hpp"
#include "rass/model/torch_error.hpp"

namespace rass::model {

// `members` in consecutive runs of at most `size` (size >= 1).
inline std::vector<std::vector<size_t>> chunks(const std::vector<size_t>& members, size_t size) {
  std::vector<std::vector<size_t>> out;
  for (size_t a = 0; a < members.size(); a += size)
    out.emplace_back(members.begin() + a, members.begin() + std::min(members.size(), a + size));
  return out;
}

// Runs `all` (the whole chunk in one call). If it throws, a chunk of one gets
// that error (`fail(i, e)`); a larger one runs `one(i)` for each member, and
// what those throw goes to `fail` for that member alone.
template <class All, class One, class Fail>
void run_or_retry(const std::vector<size_t>& chunk, All&& all, One&& one, Fail&& fail) {
  try {
    all();
    return;
  } catch (...) {
    if (chunk.size() == 1) {
      fail(chunk[0], std::current_exception());
      return;
    }
  }
  for (size_t i : chunk) {
    try {
      one(i);
    } catch (...) {
      fail(i, std::current_exception());
    }
  }
}

// One group of batch::run_item_groups for a network tool whose model takes a
// batch of prepared inputs (rass-restore's restore_many, rass-segment's
// segment_many): each item is read (`prepare`; --resume may mark it
// skipped), the rest go to the model together (`run`: one result and one
// error slot per input), then each is written (`write`). A failure at any
// step is that item's own error, LibTorch's without its backtrace.
// Ready: the tool's per-item state, with `bool skipped` and `Input input`.
template <class Ready, class Input, class Result>
void run_item_group(const std::vector<size_t>& indices, std::vector<std::exception_ptr>& errors,
                    const std::function<void(size_t, Ready&)>& prepare,
                    const std::function<std::vector<Result>(const std::vector<Input>&, std::vector<std::exception_ptr>&)>& run,
                    const std::function<void(size_t, const Ready&, const Result&)>& write) {
  // Sized once before any item is read: inputs may point into their Ready.
  std::vector<Ready> ready(indices.size());
  std::vector<size_t> to_run;  // positions in indices that go to the model
  for (size_t k = 0; k < indices.size(); ++k) {
    try {
      prepare(indices[k], ready[k]);
      if (!ready[k].skipped) to_run.push_back(k);
    } catch (...) {
      errors[k] = without_backtrace(std::current_exception());
    }
  }
  std::vector<Input> inputs;
  for (size_t k : to_run) inputs.push_back(ready[k].input);
  std::vector<std::exception_ptr> failed;
  const std::vector<Result> results = run(inputs, failed);
  for (size_t n = 0; n < to_run.size(); ++n) {
    const size_t k = to_run[n];
    try {
      if (failed[n]) std::rethrow_exception(failed[n]);
      write(indices[k], ready[k], results[n]);
    } catch (...) {
      errors[k] = without_backtrace(std::current_exception());
    }
  }
}

// The batch loop of a network tool: `items` in groups of up to `batch`
// consecutive items (same-size images share the network calls), -j
// `workers` of them at once, each worker on a CUDA stream of its own on a
// GPU (WorkerStreams: one reads and writes files while another's batch
// computes), each group through run_item_group. `on_error(i, message)` for
// each item that did not end well (the tools' --jsonl error lines).
template <class Ready, class Input, class Result>
batch::Tally run_model_items(
    const std::vector<batch::Item>& items, int batch, int workers, bool quiet, batch::Reporter& reporter,
    c10::Device device, const std::function<void(size_t, Ready&)>& prepare,
    const std::function<std::vector<Result>(const std::vector<Input>&, std::vector<std::exception_ptr>&)>& run,
    const std::function<void(size_t, const Ready&, const Result&)>& write,
    const std::function<void(size_t, const std::string&)>& on_error) {
  // At most one worker per group: -j 100000 makes no idle threads or streams.
  workers = worker_count(workers, (items.size() + size_t(std::max(batch, 1)) - 1) / size_t(std::max(batch, 1)));
  const WorkerStreams streams(device, workers);
  return batch::run_item_groups(
      items, size_t(batch), {workers, quiet}, reporter,
      [&](const std::vector<size_t>& idx, int w, std::vector<std::exception_ptr>& errors) {
        streams.run(w, [&] { run_item_group<Ready, Input, Result>(idx, errors, prepare, run, write); });
      },
      [&](size_t i, batch::Outcome o, const std::string& message) {
        if (o != batch::Outcome::ok) on_error(i, message);
      },
      workers);
}

}  // namespace rass::model
