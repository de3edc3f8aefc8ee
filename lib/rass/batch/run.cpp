#include "rass/batch/run.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <exception>
#include <new>

#include "rass/core/error.hpp"
#include "rass/core/oom_message.hpp"
#include "rass/core/parallel.hpp"
#include "rass/core/progress.hpp"

namespace rass::batch {

int Tally::exit_code() const {
  if (failed > 0) return int(ExitCode::runtime);
  if (bad > 0) return int(ExitCode::bad_input);
  return 0;
}

void Reporter::say(const std::string& message) {
  std::lock_guard<std::mutex> lock(mu_);
  std::fprintf(stderr, "%s: %s\n", prog_.c_str(), printable_message(message).c_str());  // %s stops at a NUL
}

std::string name_error(const Item& item, const std::string& what) {
  for (const std::string& p : item.paths) {
    // An Error's message holds the path as printable_message shows it.
    const std::string shown = p == "-" ? "<stdin>" : printable_message(p);
    if (!shown.empty() && what.compare(0, shown.size(), shown) == 0) return what;
  }
  return item.name() + ": " + what;
}

namespace {

// The outcome and message of an item that threw `e` (the error policy above).
Outcome classify(const Item& item, const std::exception_ptr& e, std::string& msg) {
  try {
    std::rethrow_exception(e);
  } catch (const Error& err) {
    msg = name_error(item, err.what());
    return err.code() == ExitCode::runtime ? Outcome::failed : Outcome::bad;
  } catch (const std::bad_alloc&) {
    msg = item.name() + ": out of memory";
  } catch (const std::exception& err) {
    msg = name_error(item, describe_allocation_failure(err.what()));
  } catch (...) {
    msg = item.name() + ": unknown error";
  }
  return Outcome::failed;
}

}  // namespace

Tally run_items(const std::vector<Item>& items, const RunOptions& opt, Reporter& reporter,
                const std::function<void(size_t, int)>& body,
                const std::function<void(size_t, Outcome, const std::string&)>& on_end, int workers) {
  return run_item_groups(
      items, 1, opt, reporter,
      [&](const std::vector<size_t>& idx, int w, std::vector<std::exception_ptr>& errors) {
        try {
          body(idx[0], w);
        } catch (...) {
          errors[0] = std::current_exception();
        }
      },
      on_end, workers);
}

ItemEnds::ItemEnds(const std::vector<Item>& items, const RunOptions& opt, Reporter& reporter, OnEnd on_end)
    : items_(items), reporter_(reporter), on_end_(std::move(on_end)), progress_(items.size(), reporter.prog(), opt.quiet) {}

void ItemEnds::end_one(size_t i, Outcome o, const std::string& message) {
  (o == Outcome::ok ? ok_ : o == Outcome::bad ? bad_ : failed_)++;
  // One text for every report (stderr, --json, --jsonl): control characters
  // escaped, whether the message came from an Error (already so), another
  // exception or the listing.
  const std::string msg = printable_message(message);
  if (!msg.empty()) reporter_.say(msg);
  if (on_end_) on_end_(i, o, msg);
  progress_.tick();
}

std::vector<size_t> ItemEnds::members(size_t first, size_t last) {
  std::vector<size_t> idx;
  for (size_t i = first; i < std::min(items_.size(), last); ++i) {
    if (!items_[i].error.empty()) end_one(i, Outcome::bad, items_[i].error);
    else idx.push_back(i);
  }
  return idx;
}

void ItemEnds::end(const std::vector<size_t>& idx, const std::vector<std::exception_ptr>& errors) {
  for (size_t k = 0; k < idx.size(); ++k) {
    if (k >= errors.size() || !errors[k]) {
      end_one(idx[k], Outcome::ok, "");
      continue;
    }
    std::string msg;
    const Outcome o = classify(items_[idx[k]], errors[k], msg);
    end_one(idx[k], o, msg);
  }
}

Tally ItemEnds::finish() {
  progress_.finish();
  return Tally{ok_, bad_, failed_};
}

Tally run_item_groups(const std::vector<Item>& items, size_t group, const RunOptions& opt, Reporter& reporter,
                      const std::function<void(const std::vector<size_t>&, int, std::vector<std::exception_ptr>&)>& body,
                      const std::function<void(size_t, Outcome, const std::string&)>& on_end, int workers) {
  if (group == 0) group = 1;
  ItemEnds ends(items, opt, reporter, on_end);
  const size_t groups = (items.size() + group - 1) / group;
  // A caller's count too is capped at the groups: no idle threads for -j 100000.
  workers = group_workers(workers > 0 ? workers : opt.jobs, items.size(), group);
  parallel_for(groups, workers, [&](size_t g, int w) {
    const std::vector<size_t> idx = ends.members(g * group, (g + 1) * group);
    if (idx.empty()) return;
    std::vector<std::exception_ptr> errors(idx.size());
    // Nothing escapes: an escaping exception would stop the other workers.
    try {
      body(idx, w, errors);
    } catch (...) {
      for (std::exception_ptr& e : errors) e = std::current_exception();
    }
    ends.end(idx, errors);
  });
  return ends.finish();
}

}  // namespace rass::batch
