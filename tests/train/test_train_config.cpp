// rass-train's configuration layer: defaults, file, --set and flags merged in
// that order; unknown keys and wrong types refused naming file and key; the
// CLI's stage list agrees with the library's.
#include "nn/torch_doctest.hpp"  // first: drops c10's glog-style CHECK

#include <fstream>

#include "rass/cli/train_cli.hpp"
#include "rass/core/error.hpp"
#include "rass/train/stage_list.hpp"
#include "rass/train/train_config.hpp"
#include "test_support.hpp"
#include "train/train_test_util.hpp"

using namespace rass;
using namespace rass::train;
using json = nlohmann::ordered_json;

namespace {
std::string write(const std::string& text) {
  static test::TempDir dir;  // removed at exit
  static int n = 0;
  const std::string p = dir / ("config" + std::to_string(n++) + ".json");
  std::ofstream(p) << text;
  return p;
}
ExitCode code_of(const std::function<void()>& f, std::string* msg = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (msg) *msg = e.what();
    return e.code();
  }
  return ExitCode::ok;
}
}  // namespace

TEST_CASE("the CLI's stage list names the library's stages") {
  const auto& cli = rass::cli::train_stage_names();
  const auto& lib = all_stages();
  REQUIRE(cli.size() == lib.size());
  for (size_t i = 0; i < lib.size(); ++i) {
    CHECK(cli[i].first == lib[i].name);
    CHECK(cli[i].second == lib[i].summary);
  }
}

TEST_CASE("config: defaults <- stage loop defaults <- file <- --set <- flags") {
  const StageInfo info = selftest_stage_info();
  const json d = default_config(info);
  CHECK(d["stage"] == "selftest");
  CHECK(d["loop"]["lr"] == 0.05);  // the stage's loop default over the loop's 1e-4
  CHECK(d["loop"]["beta2"] == 0.999);      // the loop's own
  CHECK(d["selftest"]["inputs"] == 16);
  ConfigSources src;
  src.file = write(R"({"stage": "selftest", "loop": {"lr": 0.5, "steps": 20, "schedule": "poly"}, "selftest": {"noise": 1}})");
  src.sets = {"loop.lr=0.25", "loop.schedule=constant", "selftest.outputs=3"};
  src.flags = {{"loop", {{"steps", 9}}}};
  const json c = merge_config(info, src);
  CHECK(c["loop"]["lr"] == 0.25);
  CHECK(c["loop"]["steps"] == 9);
  CHECK(c["loop"]["schedule"] == "constant");  // plain text for a string setting
  CHECK(c["selftest"]["noise"].is_number_float());  // an integer for a float setting stays a float
  CHECK(c["selftest"]["noise"] == 1.0);
  CHECK(c["selftest"]["outputs"] == 3);
  const LoopConfig lc = loop_config_from(c);
  CHECK(lc.lr == 0.25);
  CHECK(lc.steps == 9);
  CHECK(lc.config == c);
}

TEST_CASE("config: unknown keys, wrong types and another stage are refused, naming the file or flag and the key") {
  const StageInfo info = selftest_stage_info();
  std::string m;
  ConfigSources s;
  s.file = write(R"({"loop": {"lrr": 0.1}})");
  CHECK(code_of([&] { merge_config(info, s); }, &m) == ExitCode::bad_input);
  CHECK(m.find(s.file) != std::string::npos);
  CHECK(m.find("loop.lrr") != std::string::npos);
  s.file = write(R"({"loop": {"steps": "ten"}})");
  CHECK(code_of([&] { merge_config(info, s); }, &m) == ExitCode::bad_input);
  CHECK(m.find("loop.steps") != std::string::npos);
  CHECK(m.find("integer") != std::string::npos);
  s.file = write(R"({"loop": {"steps": 2.5}})");
  CHECK(code_of([&] { merge_config(info, s); }) == ExitCode::bad_input);
  s.file = write(R"({"stage": "ras"})");
  CHECK(code_of([&] { merge_config(info, s); }, &m) == ExitCode::bad_input);
  s.file = write(R"({"scr": {}})");
  CHECK(code_of([&] { merge_config(info, s); }, &m) == ExitCode::bad_input);
  CHECK(m.find("unknown key 'scr'") != std::string::npos);
  s.file = write("{not json");
  CHECK(code_of([&] { merge_config(info, s); }) == ExitCode::bad_input);
  test::TempDir empty;
  s.file = empty / "missing.json";
  CHECK(code_of([&] { merge_config(info, s); }) == ExitCode::bad_input);
  ConfigSources f;
  f.sets = {"lr=0.1"};
  CHECK(code_of([&] { merge_config(info, f); }, &m) == ExitCode::usage);
  CHECK(m.find("did you mean loop.lr") != std::string::npos);
  f.sets = {"loop.amp=yes"};
  CHECK(code_of([&] { merge_config(info, f); }) == ExitCode::usage);
  f.sets = {"loop.steps"};
  CHECK(code_of([&] { merge_config(info, f); }) == ExitCode::usage);
  f.sets = {"loop.seed=-1"};
  CHECK(code_of([&] { merge_config(info, f); }) == ExitCode::usage);
  // Seeds from 2^63 to 2^64-1 are taken (they were "not non-negative").
  f.sets = {"loop.seed=18446744073709551615"};
  CHECK(merge_config(info, f)["loop"]["seed"].get<uint64_t>() == 18446744073709551615ull);
  f.sets = {"loop.seed=9223372036854775808"};
  CHECK(merge_config(info, f)["loop"]["seed"].get<uint64_t>() == 9223372036854775808ull);
  f.sets = {"loop.seed=18446744073709551616"};  // 2^64 parses as a float
  CHECK(code_of([&] { merge_config(info, f); }) == ExitCode::usage);
  f.sets = {"selftest.init_seed=-1"};  // a stage's seed is unsigned too
  CHECK(code_of([&] { merge_config(info, f); }) == ExitCode::usage);
}
