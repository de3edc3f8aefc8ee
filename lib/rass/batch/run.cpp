#include "rass/batch/run.hpp"

#include <atomic>
#include <cstdio>
#include <exception>
#include <new>

#include "rass/core/error.hpp"
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
  std::fprintf(stderr, "%s: %s\n", prog_.c_str(), message.c_str());
}

std::string name_error(const Item& item, const std::string& what) {
  for (const std::string& p : item.paths) {
    const std::string shown = p == "-" ? "<stdin>" : p;
    if (!shown.empty() && what.compare(0, shown.size(), shown) == 0) return what;
  }
  return item.name() + ": " + what;
}

Tally run_items(const std::vector<Item>& items, const RunOptions& opt, Reporter& reporter,
                const std::function<void(size_t, int)>& body,
                const std::function<void(size_t, Outcome, const std::string&)>& on_end, int workers) {
  std::atomic<size_t> ok{0}, bad{0}, failed{0};
  Progress progress(items.size(), reporter.prog(), opt.quiet);
  auto end = [&](size_t i, Outcome o, const std::string& msg) {
    (o == Outcome::ok ? ok : o == Outcome::bad ? bad : failed)++;
    if (!msg.empty()) reporter.say(msg);
    if (on_end) on_end(i, o, msg);
    progress.tick();
  };
  if (workers <= 0) workers = worker_count(opt.jobs, items.size());
  parallel_for(items.size(), workers, [&](size_t i, int w) {
    const Item& item = items[i];
    if (!item.error.empty()) return end(i, Outcome::bad, item.error);
    // Nothing escapes: an escaping exception would stop the other workers.
    try {
      body(i, w);
      end(i, Outcome::ok, "");
    } catch (const Error& e) {
      end(i, e.code() == ExitCode::runtime ? Outcome::failed : Outcome::bad, name_error(item, e.what()));
    } catch (const std::bad_alloc&) {
      end(i, Outcome::failed, item.name() + ": out of memory");
    } catch (const std::exception& e) {
      end(i, Outcome::failed, name_error(item, e.what()));
    } catch (...) {
      end(i, Outcome::failed, item.name() + ": unknown error");
    }
  });
  progress.finish();
  return Tally{ok, bad, failed};
}

}  // namespace rass::batch
