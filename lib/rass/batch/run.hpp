// The per-item error policy of every batch tool, in one place:
//   - an item that is bad before it is read (a missing partner, a duplicate
//     key, a malformed manifest line) is reported and counted as bad input;
//   - Error(bad_input) (or usage) thrown while processing an item: bad input;
//   - any other exception (Error(runtime), bad_alloc, an OpenCV or LibTorch
//     exception): a runtime failure of that item;
// each is named on stderr ("rass-<tool>: <file>: <what>") and the rest of the
// batch goes on, so no finished output is lost. The exit code at the end:
// 1 if any item failed at runtime, else 3 if any was bad, else 0.
#pragma once
#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "rass/batch/inputs.hpp"
#include "rass/core/progress.hpp"

namespace rass::batch {

struct Tally {
  size_t ok = 0, bad = 0, failed = 0;
  int exit_code() const;
};

// Thread-safe "prog: message" lines on stderr.
class Reporter {
 public:
  explicit Reporter(std::string prog) : prog_(std::move(prog)) {}
  void say(const std::string& message);
  const std::string& prog() const { return prog_; }

 private:
  std::string prog_;
  std::mutex mu_;
};

struct RunOptions {
  int jobs = 0;  // 0 = all cores
  bool quiet = false;  // no progress line
};

// How an item ended, for the tool's own bookkeeping (per-item rows).
enum class Outcome { ok, bad, failed };

// Runs body(index, worker) for each item on worker threads (items with
// `error` set are not run). `on_end(index, outcome, message)`, if given, is
// called once per item, from the worker, after it ended (message empty when ok).
Tally run_items(const std::vector<Item>& items, const RunOptions& opt, Reporter& reporter,
                const std::function<void(size_t index, int worker)>& body,
                const std::function<void(size_t index, Outcome outcome, const std::string& message)>& on_end = {},
                int workers = 0);

// The ending of items, for run_item_groups and for schedulers of their own
// (the network tools' pipeline, model/batching.hpp): the error policy above,
// the counts, the messages, on_end and the progress line. Thread-safe.
class ItemEnds {
 public:
  using OnEnd = std::function<void(size_t index, Outcome outcome, const std::string& message)>;
  ItemEnds(const std::vector<Item>& items, const RunOptions& opt, Reporter& reporter, OnEnd on_end = {});
  // The items of [first, last) to run: those with `error` set end here, as bad.
  std::vector<size_t> members(size_t first, size_t last);
  // Ends indices[k] as errors[k] says (null: ok).
  void end(const std::vector<size_t>& indices, const std::vector<std::exception_ptr>& errors);
  // The progress line finished; the counts.
  Tally finish();

 private:
  void end_one(size_t i, Outcome o, const std::string& message);
  const std::vector<Item>& items_;
  Reporter& reporter_;
  OnEnd on_end_;
  Progress progress_;
  std::atomic<size_t> ok_{0}, bad_{0}, failed_{0};
};

// Like run_items, but each call of `body` gets up to `group` consecutive items
// (the ones without `error`), so a tool can batch them (network metrics run
// same-size images as one tensor). The body sets errors[k] to the exception
// that ended indices[k] (left null: the item succeeded); an exception escaping
// the body fails every item of the group. Each item then ends as in run_items:
// the same classification, messages, on_end call and progress tick. group 1
// is run_items.
Tally run_item_groups(const std::vector<Item>& items, size_t group, const RunOptions& opt, Reporter& reporter,
                      const std::function<void(const std::vector<size_t>& indices, int worker,
                                               std::vector<std::exception_ptr>& errors)>& body,
                      const std::function<void(size_t index, Outcome outcome, const std::string& message)>& on_end = {},
                      int workers = 0);

// Prefixes `what` with `name` unless it already names a file the item has.
std::string name_error(const Item& item, const std::string& what);

}  // namespace rass::batch
