// The worker pool every batch tool uses: items are handed out in index order
// to `workers` threads (the calling thread is one of them). Each call gets the
// item index and the worker number (for per-worker state such as a confusion
// matrix). An exception escaping `body` stops the hand-out and is rethrown in
// the caller once every worker has joined, so none can reach std::terminate.
// Where the system starts fewer threads than asked, the started ones (at
// least the caller) do all the work.
#pragma once
#include <cstddef>
#include <functional>

namespace rass {

// `requested` threads (0 = all cores), at least 1 and at most `items`.
int worker_count(int requested, size_t items);
// The same for `items` taken `group` at a time (group 0 counts as 1): at most
// one worker per group, so no idle threads or streams for -j far above the work.
int group_workers(int requested, size_t items, size_t group);

void parallel_for(size_t items, int workers, const std::function<void(size_t index, int worker)>& body);

}  // namespace rass
