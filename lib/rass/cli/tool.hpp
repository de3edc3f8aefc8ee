// The shared command-line layer of every rass tool (llama.cpp's "common"
// idea over CLI11): each tool defines its flags once in a ToolCli subclass;
// the tool's main, the completion generator and the flag-consistency test all
// build the same CLI::App, so help, man-page checks and completions cannot
// drift from what the tool accepts.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

namespace rass::cli {

// Options every tool has (DESIGN.md conventions), and the ones many share.
struct CommonOptions {
  bool quiet = false;
  bool json = false;
  int jobs = 0;       // --jobs / RASS_JOBS; 0 = all cores
  std::string shard;  // --shard i/n; default from SLURM_ARRAY_TASK_*
};

// One entry of the shared-option table: flag, environment variable, help.
struct SharedOption {
  const char* flags;
  const char* env;  // "" = none
  const char* help;
};
// The table of shared options, documented once for all tools.
const std::vector<SharedOption>& shared_options();

class ToolCli {
 public:
  ToolCli(std::string name, std::string summary);
  virtual ~ToolCli() = default;
  const std::string& name() const { return name_; }  // "degrade" (binary rass-degrade)
  const std::string& summary() const { return summary_; }
  CLI::App& app() { return *app_; }
  CommonOptions common;
  // Whether the tool's threads share glibc's main heap (tune_allocator's one_arena): the network tools.
  bool one_malloc_arena() const { return one_malloc_arena_; }
  // Whether the command line itself gives `flag` ("--wordnet"), not its
  // environment variable (CLI11 counts both): after run_main has parsed.
  bool given_on_command_line(const std::string& flag) const;
  // Allowed values of an option ("--preset" -> {...}), for completions.
  const std::map<std::string, std::vector<std::string>>& choices() const { return choices_; }

 protected:
  // Restricts `opt` to `values` and records them for the completion scripts.
  CLI::Option* with_choices(CLI::Option* opt, const std::vector<std::string>& values);
  // --jobs (tools that process many items) and --shard (tools whose items are independent).
  void add_jobs_option();
  void add_shard_option();
  // --channels-last, --cudnn-benchmark and --cuda-graphs (the network tools' speed switches);
  // those tools' threads also share one malloc heap (one_malloc_arena).
  void add_speed_options(bool& channels_last, bool& cudnn_benchmark, bool& cuda_graphs);
  // --timings (the network tools' stage times).
  void add_timings_option(bool& timings);
  // --device and --threads, the network tools': on `on` (a subcommand) or
  // the tool itself; `scope` begins the help where only part of the tool runs
  // a network ("deep metrics: "). (rass-train's differ: one per process.)
  void add_device_option(std::string& device, const std::string& scope = "", CLI::App* on = nullptr);
  void add_threads_option(int& threads, const std::string& scope = "", CLI::App* on = nullptr);
  std::unique_ptr<CLI::App> app_;

 private:
  friend int run_main(ToolCli& cli, int argc, char** argv, const std::function<int()>& body);
  std::map<std::string, std::vector<std::string>> choices_;
  std::vector<std::string> args_;  // the arguments run_main parsed
  bool one_malloc_arena_ = false;
  std::string name_, summary_;
};

// Validators with readable messages ("--jobs: expected a non-negative
// integer, got '-1'") in place of CLI11's NonNegativeNumber / PositiveNumber,
// whose message prints the whole double range. Integers: decimal digits only
// (CLI11 would wrap "-5" around for unsigned types), at most `max`.
CLI::Validator non_negative_integer(long long max = 2147483647);
// A --seed value: a decimal integer 0..2^64-1; anything else (signs,
// fractions, overflow) is a usage error. One parser for every tool's --seed.
uint64_t parse_seed(const std::string& v);
// A --vae-tile ENC,DEC value: two decimal integers (each at most 2^20) joined by a
// comma, {encoder tile, decoder tile}; anything else is a usage error. The
// bounds of the sizes are the tool's (model::check_vae_tile_sizes).
std::pair<int, int> parse_vae_tile(const std::string& v);
// Upper bound of every --threads flag: LibTorch/OpenMP would start that many
// threads (--threads 100000 hung the machine instead of failing).
constexpr long long kMaxThreads = 1024;
CLI::Validator positive_integer(long long max = 2147483647);
// An integer lo..hi (lo >= 0), in place of CLI::Range, which read "2.5" or
// "1e3" as out of range ("Value 1e3 not in range 1 to 1000000").
CLI::Validator integer_range(long long lo, long long hi);
CLI::Validator positive_number();  // a finite number > 0
CLI::Validator number_range(double lo, double hi);  // a finite number in [lo, hi] (NaN refused)

// Parses argv, then calls `body` (the tool's library call, returning an exit
// code). Maps CLI errors to exit 2, rass::Error to its code, anything else to 1,
// printing "rass-<tool>: <message>" on stderr.
// Then flushes stdout: if anything printed there could not be written (a full
// disk, /dev/full, a closed descriptor) it says so on stderr and returns 1.
int run_main(ToolCli& cli, int argc, char** argv, const std::function<int()>& body);
// The stdout check of run_main: returns `rc`, or 1 after a message when
// flushing stdout fails or its error flag is set.
int check_stdout(const std::string& prog, int rc);

// Every tool's CLI, for the completion generator and the flag tests.
std::vector<std::unique_ptr<ToolCli>> all_tool_clis();

}  // namespace rass::cli
