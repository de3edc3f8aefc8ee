// Batching helpers of the network layer: splitting a group into calls of at
// most N, retrying a failed call item by item (so an error lands on the item
// that caused it), and the group body of the batch tools.
#pragma once
#include <algorithm>
#include <cstddef>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <system_error>
#include <thread>
#include <vector>

#include <c10/core/InferenceMode.h>

#include "rass/batch/run.hpp"
#include "rass/core/parallel.hpp"
#include "rass/model/device.hpp"
#include "rass/model/op_trace.hpp"
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

// A thread for f, or f run where its result is asked for when the system
// starts no more threads: the pipeline below then runs in order.
template <class F>
auto start_async(F f) {
  try {
    // A copy: std::async takes what it is given before it tries the thread.
    return std::async(std::launch::async, F(f));
  } catch (const std::system_error&) {
    return std::async(std::launch::deferred, std::move(f));
  }
}

// Whether the network tools overlap reading and writing with the model
// (run_model_items' `overlap`): on a GPU, but not with --timings (`timed`),
// whose stages wait for the device one at a time. On the CPU the model's
// threads take every core, and reading and writing beside them only slowed
// it (rass-restore, 512 px, batch 8, 2-core EPYC: 10.5 s against 8.5 s).
inline bool overlaps_device(const c10::Device& device, bool timed) { return !device.is_cpu() && !timed; }

// One group on its way through the pipeline of run_model_items.
template <class Ready, class Result>
struct GroupInFlight {
  std::vector<size_t> indices;
  std::vector<std::exception_ptr> errors;  // per member; null: ok so far
  std::vector<Ready> ready;                // sized once: inputs may point into it
  std::vector<size_t> to_run;              // positions sent to the model
  std::vector<Result> results;             // per position of to_run
  std::vector<std::exception_ptr> failed;  // the model's, per position of to_run
};

// The batch loop of a network tool: `items` in groups of up to `batch`
// consecutive items (same-size images share the network calls), -j
// `workers` lanes at once, each on a CUDA stream of its own on a GPU
// (WorkerStreams). Each group is read (`prepare` per item; --resume may mark
// one skipped), sent to the model (`run`: one result and one error slot per
// input) and written (`write` per item: it may finish its result first, as
// rass-restore makes its 8-bit image and colour fix there). A failure at any step is that
// item's own error, LibTorch's without its backtrace; `on_error(i, message)`
// for each item that did not end well (the tools' --jsonl error lines).
//
// A group is read and written item by item on up to cores / lanes threads
// (a quarter of that with `overlap`).
// `overlap` (the tools: overlaps_device): a lane is a pipeline. While its model runs
// group g on the lane's thread, group g+1 is read and group g-1 written, so
// the device does not wait for PNG decoding and encoding. At most three
// groups per lane are in memory. The reading and writing threads work on
// the lane's stream (a prompt encoded while reading is queued there, before
// the model's work that uses it), in inference mode. Without `overlap` each
// group is read, run and written in turn.
template <class Ready, class Input, class Result>
batch::Tally run_model_items(
    const std::vector<batch::Item>& items, int batch, int workers, bool quiet, batch::Reporter& reporter,
    c10::Device device, bool overlap, const std::function<void(size_t, Ready&)>& prepare,
    const std::function<std::vector<Result>(const std::vector<Input>&, std::vector<std::exception_ptr>&)>& run,
    const std::function<void(size_t, const Ready&, Result&)>& write,
    const std::function<void(size_t, const std::string&)>& on_error) {
  using Group = GroupInFlight<Ready, Result>;
  const size_t group = size_t(std::max(batch, 1));
  const size_t groups = (items.size() + group - 1) / group;
  // At most one lane per group: -j 100000 makes no idle threads or streams.
  workers = worker_count(workers, groups);
  const WorkerStreams streams(device, workers);
  batch::ItemEnds ends(items, {workers, quiet}, reporter, [&](size_t i, batch::Outcome o, const std::string& message) {
    if (o != batch::Outcome::ok) on_error(i, message);
  });
  // Reading and writing threads per lane. In turn with the model they split
  // the cores with the other lanes; beside it (overlap) a quarter of that:
  // enough to keep ahead of a GPU (eight 512 px PNG writes are ~30 ms on 4
  // threads against ~200 ms of a batch), and each may run LibTorch CPU
  // operations (colour fix) with intra-op threads of its own.
  const int cores = std::max(1, int(std::thread::hardware_concurrency()));
  const int io_threads = worker_count(std::max(1, cores / workers / (overlap ? 4 : 1)), group);
  std::atomic<size_t> next{0};
  // Set when an exception escapes the per-item handling (the report or the
  // progress line failed, memory for a group's bookkeeping ran out): no lane
  // takes another group, and parallel_for rethrows it once the lanes have
  // stopped, instead of the other lanes running the rest of the items first.
  std::atomic<bool> stopping{false};
  auto stop_on_throw = [&](auto&& f) -> decltype(f()) {
    try {
      return f();
    } catch (...) {
      stopping = true;
      throw;
    }
  };
  // The next group with something to run (null: none left), read.
  auto take_and_read = [&](int lane) -> std::shared_ptr<Group> {
    for (size_t g; !stopping && (g = next++) < groups;) {
      auto G = std::make_shared<Group>();
      G->indices = ends.members(g * group, (g + 1) * group);
      if (G->indices.empty()) continue;
      G->errors.resize(G->indices.size());
      G->ready.resize(G->indices.size());
      parallel_for(G->indices.size(), io_threads, [&](size_t k, int) {
        streams.run(lane, [&] {
          c10::InferenceMode guard;
          try {
            prepare(G->indices[k], G->ready[k]);
          } catch (...) {
            G->errors[k] = without_backtrace(std::current_exception());
          }
        });
      });
      for (size_t k = 0; k < G->indices.size(); ++k)
        if (!G->errors[k] && !G->ready[k].skipped) G->to_run.push_back(k);
      return G;
    }
    return nullptr;
  };
  auto compute = [&](Group& G) {
    const ModelCallMark mark;  // RASS_TRACE: where each call begins and ends
    std::vector<Input> inputs;
    for (size_t k : G.to_run) inputs.push_back(G.ready[k].input);
    try {
      G.results = run(inputs, G.failed);
    } catch (...) {  // the whole call failed: each member has that error
      const std::exception_ptr e = without_backtrace(std::current_exception());
      G.results.clear();
      G.failed.assign(G.to_run.size(), e);
    }
    G.results.resize(G.to_run.size());
    G.failed.resize(G.to_run.size());
  };
  auto write_and_end = [&](int lane, Group& G) {
    parallel_for(G.to_run.size(), io_threads, [&](size_t n, int) {
      const size_t k = G.to_run[n];
      streams.run(lane, [&] {
        c10::InferenceMode guard;
        try {
          if (G.failed[n]) std::rethrow_exception(G.failed[n]);
          write(G.indices[k], G.ready[k], G.results[n]);
        } catch (...) {
          G.errors[k] = without_backtrace(std::current_exception());
        }
      });
      G.results[n] = Result();  // the memory back as soon as it is written
    });
    ends.end(G.indices, G.errors);
  };
  auto lane_loop = [&](int lane) {
    if (!overlap) {
      for (std::shared_ptr<Group> G; (G = take_and_read(lane));) {
        streams.run(lane, [&] { compute(*G); });
        write_and_end(lane, *G);
      }
      return;
    }
    const auto read_ahead = [&, lane] { return stop_on_throw([&] { return take_and_read(lane); }); };
    std::future<std::shared_ptr<Group>> ahead = start_async(read_ahead);
    std::future<void> writing;
    for (;;) {
      const std::shared_ptr<Group> G = ahead.get();
      if (!G || stopping) break;  // read, but another lane has failed the run
      ahead = start_async(read_ahead);
      stop_on_throw([&] { streams.run(lane, [&] { compute(*G); }); });
      if (writing.valid()) writing.get();
      writing = start_async([&, lane, G] { stop_on_throw([&] { write_and_end(lane, *G); }); });
    }
    if (writing.valid()) writing.get();
  };
  parallel_for(size_t(workers), workers, [&](size_t, int lane) { stop_on_throw([&] { lane_loop(lane); }); });
  return ends.finish();
}

}  // namespace rass::model
