// run_model_items (model/batching.hpp): the network tools' batch loop. With
// `overlap` a lane reads group g+1 and writes group g-1 while its model runs
// group g; every item still ends once, with its own error.
#include <c10/util/Exception.h>
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "rass/batch/run.hpp"
#include "rass/core/error.hpp"
#include "rass/model/batching.hpp"
#include "rass/model/torch_error.hpp"

using namespace rass;

namespace {

struct Ready {
  bool skipped = false;
  int input = 0;
};

std::vector<batch::Item> make_items(size_t n) {
  std::vector<batch::Item> items(n);
  for (size_t i = 0; i < n; ++i) {
    items[i].key = "item" + std::to_string(i);
    items[i].paths = {"in/" + items[i].key + ".png"};
  }
  return items;
}

// The order of events, for the overlap checks.
struct Log {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> events;
  void add(const std::string& e) {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(e);
    cv.notify_all();
  }
  // Waits (at most 20 s) for `e`; false if it never came.
  bool wait_for(const std::string& e) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(20), [&] {
      for (const std::string& x : events)
        if (x == e) return true;
      return false;
    });
  }
  bool seen(const std::string& e) {
    std::lock_guard<std::mutex> lock(mu);
    for (const std::string& x : events)
      if (x == e) return true;
    return false;
  }
};

}  // namespace

TEST_CASE("run_model_items: with overlap the next group is read while the model runs, the last written after") {
  // Groups of 2 of 6 items, one lane. The model's call for group 0 waits
  // until group 1's first item was read: that happens only if reading runs
  // beside the model (without overlap it would wait out its 20 s and fail).
  const std::vector<batch::Item> items = make_items(6);
  Log log;
  batch::Reporter reporter("test");
  std::map<size_t, int> written;
  std::mutex written_mu;
  bool group1_read_during_run0 = false, write0_during_run1 = false;
  const batch::Tally t = model::run_model_items<Ready, int, int>(
      items, 2, 1, true, reporter, c10::kCPU, /*overlap=*/true,
      [&](size_t i, Ready& rd) {
        rd.input = int(i) * 10;
        log.add("read " + std::to_string(i));
      },
      [&](const std::vector<int>& in, std::vector<std::exception_ptr>& failed) {
        failed.assign(in.size(), nullptr);
        const std::string g = std::to_string(in[0] / 20);
        log.add("run " + g);
        if (g == "0") group1_read_during_run0 = log.wait_for("read 2");
        if (g == "1") write0_during_run1 = log.wait_for("wrote 0") || log.seen("wrote 1");
        std::vector<int> out;
        for (int v : in) out.push_back(v + 1);
        return out;
      },
      [&](size_t i, const Ready& rd, const int& r) {
        CHECK(r == rd.input + 1);
        std::lock_guard<std::mutex> lock(written_mu);
        ++written[i];
        log.add("wrote " + std::to_string(i));
      },
      [&](size_t, const std::string& msg) { FAIL("unexpected error: " << msg); });
  CHECK(group1_read_during_run0);
  CHECK(write0_during_run1);
  CHECK(t.ok == 6);
  CHECK(t.bad + t.failed == 0);
  REQUIRE(written.size() == 6);
  for (const auto& [i, n] : written) CHECK(n == 1);
}

TEST_CASE("run_model_items: without overlap a group is read, run and written before the next is read") {
  const std::vector<batch::Item> items = make_items(6);
  Log log;
  batch::Reporter reporter("test");
  const batch::Tally t = model::run_model_items<Ready, int, int>(
      items, 2, 1, true, reporter, c10::kCPU, /*overlap=*/false,
      [&](size_t i, Ready& rd) {
        rd.input = int(i);
        log.add("read " + std::to_string(i));
      },
      [&](const std::vector<int>& in, std::vector<std::exception_ptr>& failed) {
        failed.assign(in.size(), nullptr);
        log.add("run " + std::to_string(in[0] / 2));
        return in;
      },
      [&](size_t i, const Ready&, const int&) { log.add("wrote " + std::to_string(i)); },
      [&](size_t, const std::string& msg) { FAIL("unexpected error: " << msg); });
  CHECK(t.ok == 6);
  const std::vector<std::string> expected{"read 0", "read 1", "run 0", "wrote 0", "wrote 1", "read 2", "read 3",
                                          "run 1",  "wrote 2", "wrote 3", "read 4", "read 5", "run 2", "wrote 4",
                                          "wrote 5"};
  CHECK(log.events == expected);
}

TEST_CASE("run_model_items: each item ends once with its own error, in every schedule") {
  // 12 items in groups of 3: item 1 fails reading (bad input), item 4 is
  // skipped (--resume), item 5 fails in the model alone, the call for the
  // group holding item 7 throws (all its members fail), item 10 fails
  // writing, item 11 is a bad item before reading. Lanes 1 and 3, with and
  // without overlap.
  for (const int lanes : {1, 3})
    for (const bool overlap : {false, true}) {
      CAPTURE(lanes);
      CAPTURE(overlap);
      std::vector<batch::Item> items = make_items(12);
      items[11].error = "in/item11.png: a duplicate key";
      batch::Reporter reporter("test");
      std::mutex mu;
      std::map<size_t, std::string> errors;
      std::multiset<size_t> written, read;
      const batch::Tally t = model::run_model_items<Ready, int, int>(
          items, 3, lanes, true, reporter, c10::kCPU, overlap,
          [&](size_t i, Ready& rd) {
            {
              std::lock_guard<std::mutex> lock(mu);
              read.insert(i);
            }
            if (i == 1) throw Error(ExitCode::bad_input, "in/item1.png: not an image");
            rd.skipped = i == 4;
            rd.input = int(i);
          },
          [&](const std::vector<int>& in, std::vector<std::exception_ptr>& failed) {
            failed.assign(in.size(), nullptr);
            for (int v : in)
              if (v == 7) throw std::runtime_error("out of memory (the whole call)");
            for (size_t k = 0; k < in.size(); ++k)
              if (in[k] == 5) failed[k] = std::make_exception_ptr(Error(ExitCode::runtime, "in/item5.png: NaN"));
            return in;
          },
          [&](size_t i, const Ready& rd, const int& r) {
            CHECK(r == rd.input);
            if (i == 10) throw Error(ExitCode::runtime, "in/item10.png: disk full");
            std::lock_guard<std::mutex> lock(mu);
            written.insert(i);
          },
          [&](size_t i, const std::string& msg) {
            std::lock_guard<std::mutex> lock(mu);
            CHECK(errors.count(i) == 0);
            errors[i] = msg;
          });
      // ok: 0, 2, 3, 4 (skipped), 9; bad: 1, 11; failed: 5, 6, 7, 8, 10.
      CHECK(t.ok == 5);
      CHECK(t.bad == 2);
      CHECK(t.failed == 5);
      CHECK(written == std::multiset<size_t>{0, 2, 3, 9});
      CHECK(read == std::multiset<size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
      REQUIRE(errors.size() == 7);
      CHECK(errors[1] == "in/item1.png: not an image");
      CHECK(errors[11] == "in/item11.png: a duplicate key");
      CHECK(errors[5] == "in/item5.png: NaN");
      for (size_t i : {6, 7, 8}) CHECK(errors[i] == items[i].paths[0] + ": out of memory (the whole call)");
      CHECK(errors[10] == "in/item10.png: disk full");
    }
}

TEST_CASE("run_model_items: an exception past the item handling stops every lane before it is rethrown") {
  // The error report of item 0 fails (as a --jsonl line to a full disk
  // would): the run must end with that exception soon, not after the other
  // lanes have read the remaining items. 60 items in groups of 1 on 2
  // lanes, 3 ms of reading each: the other lane needs ~180 ms for all.
  for (const bool overlap : {false, true}) {
    CAPTURE(overlap);
    const std::vector<batch::Item> items = make_items(60);
    batch::Reporter reporter("test");
    std::atomic<int> read{0};
    CHECK_THROWS_WITH_AS(
        (model::run_model_items<Ready, int, int>(
            items, 1, 2, true, reporter, c10::kCPU, overlap,
            [&](size_t i, Ready& rd) {
              ++read;
              std::this_thread::sleep_for(std::chrono::milliseconds(3));
              if (i == 0) throw Error(ExitCode::bad_input, "in/item0.png: not an image");
              rd.input = int(i);
            },
            [&](const std::vector<int>& in, std::vector<std::exception_ptr>& failed) {
              failed.assign(in.size(), nullptr);
              return in;
            },
            [&](size_t, const Ready&, const int&) {},
            [&](size_t, const std::string&) { throw std::runtime_error("report: no space left on device"); })),
        "report: no space left on device", std::runtime_error);
    // Item 0 ends within its lane's first groups; the other lane reads a few
    // more before it sees the stop. Without the stop: all 60.
    CHECK(read.load() < 30);
  }
}

TEST_CASE("without_backtrace: LibTorch's failed allocation reaches a batch item as one plain line") {
  // What the CPU allocator throws (LibTorch 1.13 and 2.x word it so); a
  // batch's items got it as it was, "[enforce fail at alloc_cpu.cpp:75] ...".
  const std::string raw =
      "[enforce fail at alloc_cpu.cpp:75] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to allocate "
      "64 bytes. Error code 12 (Cannot allocate memory)";
  // The constructor both LibTorch 1.13 and 2.x have (the others differ).
  auto torch_error = [](const std::string& msg) {
    return std::make_exception_ptr(c10::Error(c10::SourceLocation{"test", __FILE__, uint32_t(__LINE__)}, msg));
  };
  std::string what;
  try {
    std::rethrow_exception(rass::model::without_backtrace(torch_error(raw)));
  } catch (const rass::Error& e) {
    CHECK(e.code() == rass::ExitCode::runtime);
    what = e.what();
  }
  CHECK(what ==
        "out of memory (DefaultCPUAllocator: can't allocate memory: you tried to allocate 64 bytes. Error code 12 "
        "(Cannot allocate memory)): a smaller input, batch or tile may fit");
  // Other LibTorch errors keep their text, without the C++ stack.
  try {
    std::rethrow_exception(rass::model::without_backtrace(torch_error("shape mismatch")));
  } catch (const rass::Error& e) {
    what = e.what();
  }
  CHECK(what == "shape mismatch");
}
