// JsonFields (typed config reads naming the key), folder_problem (why a
// path given as a folder is not one) and LibTorch's allocation failures in words.
#include <doctest/doctest.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "rass/core/error.hpp"
#include "rass/core/folder_check.hpp"
#include "rass/core/json_fields.hpp"
#include "rass/core/oom_message.hpp"
#include "test_support.hpp"

using namespace rass;

namespace {

// The message of what f() throws; "" if it throws nothing.
template <class F>
std::string thrown(F f) {
  try {
    f();
  } catch (const Error& e) {
    CHECK(e.exit_code() == 3);
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("JsonFields reads typed fields and names the key of a wrong one") {
  const nlohmann::json j = nlohmann::json::parse(R"({"n": 2, "half": 1.5, "whole_float": 1e0, "s": "1", "b": true,
    "x": 0.5, "list": [32, 64], "mixed": [32, 6.5], "names": ["a", "b"], "nul": null, "big": 18446744073709551615})");
  const JsonFields f(j, "cfg.json");
  CHECK(f.integer("n", 7) == 2);
  CHECK(f.integer("missing", 7) == 7);
  CHECK(f.number("n", 0) == 2.0);
  CHECK(f.number("x", 0) == 0.5);
  CHECK(f.flag("b", false));
  CHECK(f.text("s", "") == "1");
  CHECK(f.integers("list", {}) == std::vector<int64_t>{32, 64});
  CHECK(f.texts("names", {}) == std::vector<std::string>{"a", "b"});
  CHECK(f.has("n"));
  CHECK(!f.has("nul"));
  CHECK(!f.has("missing"));
  // nlohmann's value() made 1 of these two: diffusers' range() refuses them.
  CHECK(thrown([&] { f.integer("half", 0); }) == "cfg.json: half = 1.5 is not a whole number");
  CHECK(thrown([&] { f.integer("whole_float", 0); }) ==
        "cfg.json: whole_float = 1.0 is not a whole number written as one (JSON reads an exponent or a decimal point "
        "as a float: write the digits alone)");
  CHECK(thrown([&] { f.integer("s", 0); }) == "cfg.json: s = \"1\" is not a whole number");
  CHECK(thrown([&] { f.integer("nul", 0); }) == "cfg.json: nul = null is not a whole number");
  CHECK(thrown([&] { f.integer("big", 0); }) == "cfg.json: big = 18446744073709551615 is not a 64-bit whole number");
  CHECK(thrown([&] { f.number("s", 0); }) == "cfg.json: s = \"1\" is not a number");
  CHECK(thrown([&] { f.flag("n", false); }) == "cfg.json: n = 2 is not true or false");
  CHECK(thrown([&] { f.text("n", ""); }) == "cfg.json: n = 2 is not a string");
  CHECK(thrown([&] { f.integers("mixed", {}); }) == "cfg.json: mixed = [32,6.5] is not a list of whole numbers");
  CHECK(thrown([&] { f.integers("n", {}); }) == "cfg.json: n = 2 is not a list of whole numbers");
  CHECK(thrown([&] { f.texts("list", {}); }) == "cfg.json: list = [32,64] is not a list of strings");
  // A long value is shortened in the message.
  const nlohmann::json long_list = {{"k", std::vector<std::string>(40, "abcdef")}};
  const std::string m = thrown([&] { JsonFields(long_list, "c.json").integer("k", 0); });
  CHECK(m.size() < 120);
  CHECK(m.find("...") != std::string::npos);
  CHECK(thrown([&] { JsonFields(nlohmann::json::array(), "c.json"); }) == "c.json: is not a JSON object ({...})");
}

TEST_CASE("folder_problem says why a path is not a folder") {
  test::TempDir t;
  const std::string d = t.path + "/d", file = t.path + "/f", dangling = t.path + "/dangling", loop = t.path + "/loop";
  std::filesystem::create_directory(d);
  std::ofstream(file) << "x";
  REQUIRE(::symlink((t.path + "/nowhere").c_str(), dangling.c_str()) == 0);
  REQUIRE(::symlink(loop.c_str(), loop.c_str()) == 0);
  REQUIRE(::symlink(d.c_str(), (t.path + "/to_d").c_str()) == 0);
  CHECK(folder_problem(d) == "");
  CHECK(folder_problem(t.path + "/to_d") == "");
  CHECK(folder_problem(file) == "is not a folder");
  CHECK(folder_problem(t.path + "/none") == "does not exist");
  CHECK(folder_problem(file + "/sub") == "does not exist (a part of the path is not a folder)");
  CHECK(folder_problem(dangling) == "is a broken symbolic link");
  CHECK(folder_problem(loop) == "is a symbolic-link loop");
  CHECK(thrown([&] { require_folder(t.path + "/none", "--model takes a folder"); }) ==
        t.path + "/none: does not exist (--model takes a folder)");
  CHECK(thrown([&] { require_folder(d, "x"); }) == "");
}

TEST_CASE("LibTorch's failed allocations are said as such, on one line") {
  // LibTorch 1.13's and 2.11's CPU message, with a stack after it.
  const std::string cpu =
      "[enforce fail at alloc_cpu.cpp:75] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to allocate "
      "549755813888 bytes. Error code 12 (Cannot allocate memory)\nframe #0: c10::ThrowEnforceNotMet";
  CHECK(describe_allocation_failure(cpu) ==
        "out of memory (DefaultCPUAllocator: can't allocate memory: you tried to allocate 549755813888 bytes. Error code "
        "12 (Cannot allocate memory)): a smaller input, batch or tile may fit");
  const std::string cuda = "CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 139.8 GiB";
  CHECK(describe_allocation_failure(cuda) == "out of memory (" + cuda + "): a smaller input, batch or tile may fit");
  CHECK(describe_allocation_failure("out of memory") == "out of memory");
  CHECK(describe_allocation_failure("a.png: truncated PNG data") == "a.png: truncated PNG data");
}
