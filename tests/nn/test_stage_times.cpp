// --timings (lib/rass/model/stage_times.hpp): stage sums in first-use order,
// values and exceptions passed through, nothing recorded when off.
#include "torch_doctest.hpp"

#include <chrono>
#include <stdexcept>
#include <thread>

#include "rass/model/stage_times.hpp"

using namespace rass;

namespace {
void nap(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }
}  // namespace

TEST_CASE("stage times: off records nothing and passes values through") {
  const model::StageTimes t(false);
  int calls = 0;
  CHECK(t.time("a", [&] { return ++calls; }) == 1);
  t.time("b", [&] { ++calls; });  // void
  CHECK(calls == 2);
  CHECK(t.total("a") == std::pair<double, size_t>{0.0, 0});
  CHECK_THROWS_AS(t.time("c", [] { throw std::runtime_error("x"); }), std::runtime_error);
}

TEST_CASE("stage times: sums per stage in first-use order") {
  const model::StageTimes t(true);
  CHECK(t.time("second", [] {
    nap(30);
    return std::string("kept");
  }) == "kept");
  t.time("first", [] { nap(10); });
  t.time("second", [] { nap(30); });
  CHECK_THROWS_AS(t.time("failing", [] {
    nap(5);
    throw std::runtime_error("x");
  }),
                  std::runtime_error);
  const auto [s2, n2] = t.total("second");
  CHECK(n2 == 2);
  CHECK(s2 >= 0.060);
  CHECK(s2 < 5.0);
  CHECK(t.total("first").second == 1);
  CHECK(t.total("failing").second == 1);  // a stage that throws still took its time
  CHECK(t.total("first").first >= 0.010);
  const std::string r = t.report("rass-test", 4);
  INFO(r);
  CHECK(r.find("rass-test (--timings") == 0);
  CHECK(r.find("4 images") != std::string::npos);
  // first-use order: "second" was timed before "first"
  CHECK(r.find("\n  second ") < r.find("\n  first "));
  CHECK(r.find("(all stages)") != std::string::npos);
  CHECK(r.find("(wall since the model loaded)") != std::string::npos);
  // "first call": second's first call took 30 ms of its 60+ (a value between)
  const size_t at = r.find("\n  second ") + 1;
  const std::string row = r.substr(at, r.find('\n', at) - at);
  const double first_call = std::stod(row.substr(row.rfind(' ') + 1));
  CHECK(first_call >= 0.030);
  CHECK(first_call < s2);
  // per image: second's total / 4 items, in ms
  char want[32];
  std::snprintf(want, sizeof want, "%.2f", 1e3 * s2 / 4);
  CHECK(r.find(want) != std::string::npos);
  // No image written (all skipped or failed): no per-image figure.
  const std::string r0 = t.report("rass-test", 0);
  CHECK(r0.find("0 images") != std::string::npos);
  CHECK(r0.find(std::string(11, ' ') + "-") != std::string::npos);
  CHECK(r0.find(want) == std::string::npos);
}
