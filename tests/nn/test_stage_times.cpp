// --timings (lib/rass/model/stage_times.hpp): stage sums in first-use order,
// values and exceptions passed through, nothing recorded when off.
#include "torch_doctest.hpp"

#include <chrono>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <c10/core/CPUAllocator.h>

#include "rass/model/cpu_tensor_bytes.hpp"
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
  // name, seconds, share, ms per image, calls, first call[, peak GiB where tensors are counted]
  std::istringstream cols(row);
  std::string name, seconds, share, per_image, calls;
  double first_call = -1;
  cols >> name >> seconds >> share >> per_image >> calls >> first_call;
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

// The CPU tensor counter (lib/rass/model/cpu_tensor_bytes.hpp): bytes of
// tensors made after it is installed, exactly as their sizes say.
TEST_CASE("cpu tensor bytes: counts what tensors hold, frees, the peak and raw allocations") {
  model::count_cpu_tensor_bytes();
  model::count_cpu_tensor_bytes();  // a second install does nothing
  REQUIRE(model::cpu_tensor_bytes_counted());
  const int64_t base = model::cpu_tensor_bytes().now;
  model::reset_cpu_tensor_peak();
  CHECK(model::cpu_tensor_bytes().peak == base);
  {
    const torch::Tensor a = torch::zeros({1000, 250}, torch::kFloat);  // 1,000,000 bytes
    CHECK(model::cpu_tensor_bytes().now - base == 1000000);
    {
      const torch::Tensor b = torch::ones({3, 7}, torch::kBFloat16);  // 42 bytes
      CHECK(model::cpu_tensor_bytes().now - base == 1000042);
      const torch::Tensor view = a.slice(0, 0, 10);  // no new storage
      CHECK(model::cpu_tensor_bytes().now - base == 1000042);
    }
    CHECK(model::cpu_tensor_bytes().now - base == 1000000);
    // The memory works as memory (an element read: no reduction, whose
    // per-thread scratch would count too).
    CHECK(a[999][249].item<float>() == 0.0f);
  }
  CHECK(model::cpu_tensor_bytes().now == base);
  CHECK(model::cpu_tensor_bytes().peak - base == 1000042);
  model::reset_cpu_tensor_peak();
  CHECK(model::cpu_tensor_bytes().peak == base);
  // raw_allocate needs data == context; raw_deallocate goes through the counter.
  c10::Allocator* cpu = c10::GetCPUAllocator();
  void* p = cpu->raw_allocate(4096);
  REQUIRE(p != nullptr);
  CHECK(model::cpu_tensor_bytes().now - base == 4096);
  cpu->raw_deallocate(p);
  CHECK(model::cpu_tensor_bytes().now == base);
  // The --timings report names the run's peak on the CPU, and each stage's:
  // the tensors alive while it ran (what was held when it began included).
  const model::StageTimes t(true);
  const torch::Tensor held = torch::zeros({1 << 18}, torch::kFloat);  // 1 MiB through both stages
  t.time("big", [] { return torch::zeros({3 << 18}, torch::kFloat).sum(); });  // 3 MiB more, then freed
  t.time("small", [] { return torch::zeros({1 << 16}, torch::kFloat).sum(); });
  const std::string r = t.report("rass-test", 1);
  INFO(r);
  CHECK(r.find("  peak GiB\n") != std::string::npos);
  auto stage_peak_mib = [&](const std::string& stage) {
    const size_t at = r.find("\n  " + stage + " ") + 1;
    const std::string row = r.substr(at, r.find('\n', at) - at);
    return std::stod(row.substr(row.rfind(' ') + 1)) * 1024;
  };
  const double before = double(base) / (1 << 20);
  CHECK(stage_peak_mib("big") >= before + 4 - 0.6);  // GiB to 3 decimals: within half a MiB
  CHECK(stage_peak_mib("big") < before + 4 + 1.1);
  CHECK(stage_peak_mib("small") < stage_peak_mib("big") - 1.5);
  const std::string total = r.substr(r.find("peak memory: ") + 13);
  const double run_mib = std::stod(total) * (total.find(" MiB ") < total.find(" GiB ") ? 1.0 : 1024.0);
  CHECK(run_mib >= before + 4 - 0.01);  // MiB to 2 decimals
  CHECK(total.find("in CPU tensors after loading, the process's resident set") != std::string::npos);
}
