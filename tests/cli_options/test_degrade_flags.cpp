// rass-degrade's flags: values that used to collapse or be ignored silently are
// usage errors (exit 2) with a message.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "rass/cli/degrade_cli.hpp"
#include "rass/core/error.hpp"

using namespace rass;
using namespace rass::cli;

namespace {

// The job of `rass-degrade in.png -o out.png <args>`.
degrade::DegradeJob job_of(std::vector<std::string> args) {
  DegradeCli cli;
  args.insert(args.begin(), {"rass-degrade", "in.png", "-o", "out.png"});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  cli.app().parse(int(argv.size()), argv.data());
  return cli.job();
}

void check_usage(std::vector<std::string> args, const std::string& what) {
  std::string all;
  for (auto& a : args) all += a + " ";
  INFO("rass-degrade ", all);
  bool threw = false;
  try {
    job_of(args);
  } catch (const Error& e) {
    threw = true;
    INFO("message: ", e.what());
    CHECK(e.code() == ExitCode::usage);
    CHECK(std::string(e.what()).find(what) != std::string::npos);
  }
  CHECK(threw);
}

}  // namespace

TEST_CASE("--seed takes exactly 0..2^64-1") {
  CHECK(job_of({"-s", "0"}).seed == 0);
  CHECK(job_of({"--seed", "18446744073709551615"}).seed == UINT64_MAX);
  CHECK(job_of({"--seed", "12345678901234567890"}).seed == 12345678901234567890ULL);
  CHECK(job_of({}).seed == 0);
  // These collapsed to 2^64-1 (or wrapped) before.
  check_usage({"-s", "-1"}, "--seed '-1': expected an integer 0..18446744073709551615");
  check_usage({"-s", "18446744073709551616"}, "--seed '18446744073709551616'");
  check_usage({"-s", "99999999999999999999999"}, "--seed");
  check_usage({"-s", "1.5"}, "--seed");
  check_usage({"-s", "+3"}, "--seed");
  check_usage({"-s", "0x10"}, "--seed");
}

TEST_CASE("--severity only with the single degradations, --scale only >= 1 and with the pipeline") {
  CHECK(job_of({"-p", "blur", "--severity", "5"}).cfg.named.severity == 5);
  CHECK(job_of({"-p", "rass", "--scale", "2"}).cfg.scale == 2);
  CHECK(job_of({"-p", "realesrgan-x4"}).cfg.scale == 4);
  check_usage({"--severity", "4"}, "--severity applies only to the single-degradation presets");
  check_usage({"-p", "lqseg-2", "--severity", "2"}, "not lqseg-2");
  check_usage({"-p", "blur", "--severity", "6"}, "--severity must be 1..5");
  check_usage({"--scale", "0"}, "--scale must be a positive integer (got 0)");
  check_usage({"--scale", "-2"}, "--scale must be a positive integer");
  check_usage({"-p", "noise", "--scale", "2"}, "--scale does not apply to the single-degradation preset noise");
  for (const char* flag : {"--blur-sigma", "--noise-range2", "--stages", "--kernel-sizes"}) {
    const std::string value = std::string(flag) == "--stages" ? "-noise" : std::string(flag) == "--kernel-sizes" ? "7" : "1,2";
    check_usage({"-p", "jpeg", flag, value}, std::string(flag) + " does not apply to the single-degradation preset jpeg");
  }
  check_usage({"-p", "downsample", "--usm"}, "--usm does not apply");
}

TEST_CASE("pipeline settings are bounded so every record they make can be replayed") {
  check_usage({"--blur-sigma", "0.2,1000"}, "--blur-sigma: hi must be at most 100");
  check_usage({"--resize-range", "0.5,1000"}, "--resize-range: hi must be at most 100");
  check_usage({"--noise-range2", "1,5000"}, "--noise-range2: need 0 <= lo <= hi <= 1000");
  check_usage({"--betag-range", "0.5,inf"}, "'inf' is not a (finite) number");
  check_usage({"--sinc-prob", "nan"}, "'nan' is not a (finite) number");
}

// Runs `rass-degrade <args>` through run_main with stdout on `path`.
static int run_with_stdout(const char* path, std::vector<std::string> args) {
  std::fflush(stdout);
  const int saved = ::dup(1);
  const int fd = ::open(path, O_WRONLY);
  REQUIRE(saved >= 0);
  REQUIRE(fd >= 0);
  ::dup2(fd, 1);
  DegradeCli cli;
  args.insert(args.begin(), "rass-degrade");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  const int rc = run_main(cli, int(argv.size()), argv.data(), [&] { return degrade::run_degrade(cli.job()); });
  std::fflush(stdout);
  ::dup2(saved, 1);
  ::close(saved);
  ::close(fd);
  return rc;
}

TEST_CASE("a report that cannot be written to stdout exits 1") {
  CHECK(run_with_stdout("/dev/null", {"--print-config"}) == 0);
  CHECK(run_with_stdout("/dev/full", {"--print-config"}) == 1);
  CHECK(run_with_stdout("/dev/full", {"--help"}) == 1);
  const std::string chelsea = std::string(RASS_SOURCE_DIR) + "/examples/images/chelsea.png";
  const std::string out = "/tmp/rass-test-stdout-" + std::to_string(::getpid()) + ".png";
  CHECK(run_with_stdout("/dev/full", {chelsea, "-o", out, "--json"}) == 1);
  std::remove(out.c_str());
}
