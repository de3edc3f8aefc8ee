#include "rass/cli/tool.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>
#include <limits>
#include <set>

#include "rass/core/alloc.hpp"
#include "rass/core/decimal.hpp"
#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/oom_message.hpp"
#include "rass/core/signals.hpp"
#include "rass/core/version.hpp"
#include "rass/io/image_io.hpp"

namespace rass::cli {

const std::vector<SharedOption>& shared_options() {
  static const std::vector<SharedOption> table = {
      {"-q,--quiet", "", "no progress or summary on stderr (errors are still printed)"},
      {"--json", "", "machine-readable output on stdout"},
      {"-j,--jobs", "RASS_JOBS", "worker threads (0 = all cores; in the network tools rass-restore, -segment, -sam, -samsr, -dreamclear and -t5 0 = 1, one large model in flight)"},
      {"--shard", "", "process only shard i of n (i/n, 0-based); default from SLURM_ARRAY_TASK_ID/COUNT/MIN"},
      {"--channels-last", "RASS_CHANNELS_LAST",
       "keep convolution weights (and so activations) in channels-last (NHWC) layout, the one GPU tensor cores "
       "take (a speed switch: same results within float rounding)"},
      {"--cudnn-benchmark", "RASS_CUDNN_BENCHMARK",
       "CUDA: let cuDNN time its convolution algorithms for each new input shape and keep the fastest (the "
       "first batch of each size is slower; results may differ in the last bits from run to run)"},
      {"--cuda-graphs", "RASS_CUDA_GRAPHS",
       "CUDA: record each batch shape's device work once as a CUDA graph and replay it (fewer kernel launches; "
       "the first batch of each shape is slower; no effect on the CPU)"},
      {"--timings", "RASS_TIMINGS",
       "print the seconds each stage of the pipeline took (reading, encoders, UNet, decoders or head, copies, "
       "writing), summed over the run, and the peak memory, on stderr at the end; each stage waits for the device, so "
       "the run is slower (a measurement switch)"},
      {"--device", "", "cpu or cuda[:N]"},
      {"--threads", "",
       "intra-op threads per item in flight (0 = all cores; with --jobs N, cores / N)"},
      {"--max-pixels", "RASS_MAX_PIXELS",
       "refuse images larger than N pixels (width x height, checked before decoding; "
       "default 2^28 = 268435456; 0 = no limit)"},
  };
  return table;
}

static const SharedOption& shared(const std::string& flags) {
  for (const auto& o : shared_options())
    if (flags == o.flags) return o;
  throw std::logic_error("not a shared option: " + flags);
}

ToolCli::ToolCli(std::string name, std::string summary)
    : app_(std::make_unique<CLI::App>(summary, "rass-" + name)), name_(std::move(name)), summary_(std::move(summary)) {
  app_->set_version_flag("-V,--version", std::string("rass-") + name_ + " " + version());
  app_->add_flag(shared("-q,--quiet").flags, common.quiet, shared("-q,--quiet").help);
  app_->add_flag(shared("--json").flags, common.json, shared("--json").help);
  const auto& mp = shared("--max-pixels");
  app_->add_option_function<uint64_t>(
          mp.flags, [](const uint64_t& n) { set_max_pixels(n); }, mp.help)
      ->envname(mp.env)
      ->type_name("N")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            // Digits only: CLI11 would wrap "-5" around to 2^64 - 5.
            const bool digits = !v.empty() && v.size() <= 19 &&
                                v.find_first_not_of("0123456789") == std::string::npos;
            return digits ? std::string()
                          : "expected a pixel count, a non-negative integer (0 = no limit), got '" + v + "'";
          },
          ""));
  app_->get_formatter()->column_width(34);
}

namespace {
CLI::Validator integer_at_least(long long least, long long max, std::string what) {
  return CLI::Validator(
      [least, max, what](std::string& v) -> std::string {
        const std::string bad = "expected " + what + ", got '" + v + "'";
        if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos) return bad;
        const std::string most = " (at most " + std::to_string(max) + ")";
        if (v.size() > 18) return bad + most;  // digits past what stoll takes: over any limit here
        const long long n = std::stoll(v);
        if (n < least) return bad;
        if (n > max) return bad + most;
        return {};
      },
      "");
}
}  // namespace

uint64_t parse_seed(const std::string& v) {
  const bool digits = !v.empty() && v.find_first_not_of("0123456789") == std::string::npos;
  errno = 0;
  const unsigned long long n = digits ? std::strtoull(v.c_str(), nullptr, 10) : 0;
  if (!digits || errno == ERANGE)
    throw_usage("--seed '" + v + "': expected an integer 0..18446744073709551615 (2^64-1)");
  return n;
}

std::pair<int, int> parse_vae_tile(const std::string& v) {
  const size_t comma = v.find(',');
  // -1: not digits; -2: more than 2^20 (any length of digits is read).
  auto number = [](const std::string& s) {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return -1;
    const size_t first = std::min(s.find_first_not_of('0'), s.size() - 1);
    if (s.size() - first > 7) return -2;
    const long n = std::strtol(s.c_str() + first, nullptr, 10);
    return n <= (1 << 20) ? int(n) : -2;
  };
  const int enc = comma == std::string::npos ? -1 : number(v.substr(0, comma));
  const int dec = comma == std::string::npos ? -1 : number(v.substr(comma + 1));
  if (enc == -1 || dec == -1) throw_usage("--vae-tile '" + v + "': expected ENC,DEC, e.g. 1024,224");
  if (enc < 0 || dec < 0) throw_usage("--vae-tile '" + v + "': each tile is at most 1048576 pixels");
  return {enc, dec};
}

CLI::Validator non_negative_integer(long long max) { return integer_at_least(0, max, "a non-negative integer"); }
CLI::Validator positive_integer(long long max) { return integer_at_least(1, max, "a positive integer"); }
CLI::Validator integer_range(long long lo, long long hi) {
  return integer_at_least(lo, hi, "an integer " + std::to_string(lo) + ".." + std::to_string(hi));
}

CLI::Validator positive_number() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        double x = 0;
        const bool ok = parse_decimal(v, &x) && x > 0;
        return ok ? std::string() : "expected a positive number, got '" + v + "'";
      },
      "");
}

CLI::Validator number_range(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& v) -> std::string {
        double x = 0;
        const bool ok = parse_decimal(v, &x) && x >= lo && x <= hi;
        char range[64];
        std::snprintf(range, sizeof range, "%g..%g", lo, hi);
        return ok ? std::string() : "expected a number in " + std::string(range) + ", got '" + v + "'";
      },
      "");
}

CLI::Option* ToolCli::with_choices(CLI::Option* opt, const std::vector<std::string>& values) {
  choices_[opt->get_name()] = values;
  return opt->check(CLI::IsMember(values));
}

void ToolCli::add_jobs_option() {
  const auto& j = shared("-j,--jobs");
  // As many items in flight as threads at most: -j 1000000 ran a whole
  // batch at once (each item its own image, model activations and output).
  app_->add_option(j.flags, common.jobs, j.help)->envname(j.env)->check(non_negative_integer(kMaxThreads));
}

void ToolCli::add_speed_options(bool& channels_last, bool& cudnn_benchmark, bool& cuda_graphs) {
  one_malloc_arena_ = true;  // the network tools (core/alloc.hpp)
  for (auto [flag, target] : {std::pair<const char*, bool*>{"--channels-last", &channels_last},
                              {"--cudnn-benchmark", &cudnn_benchmark},
                              {"--cuda-graphs", &cuda_graphs}}) {
    const auto& o = shared(flag);
    app_->add_flag(o.flags, *target, o.help)->envname(o.env);
  }
}

void ToolCli::add_timings_option(bool& timings) {
  const auto& o = shared("--timings");
  app_->add_flag(o.flags, timings, o.help)->envname(o.env);
}

void ToolCli::add_device_option(std::string& device, const std::string& scope, CLI::App* on) {
  const auto& o = shared("--device");
  (on ? on : app_.get())->add_option(o.flags, device, scope + o.help)->default_str("cpu");
}

void ToolCli::add_threads_option(int& threads, const std::string& scope, CLI::App* on) {
  const auto& o = shared("--threads");
  (on ? on : app_.get())
      ->add_option(o.flags, threads, scope + o.help)
      ->default_str("0")
      ->check(non_negative_integer(kMaxThreads));
}

void ToolCli::add_shard_option() {
  const auto& s = shared("--shard");
  app_->add_option(s.flags, common.shard, s.help)->type_name("I/N");
}

namespace {

// A flag's environment switch (RASS_TIMINGS=1) takes the words a user would
// write; CLI11 alone takes any number ("2" is on) and, on a typo, names only
// the flag. "" when every such variable set is one of them.
// Whether the command line names option `o` (then its environment variable
// is not used).
// A cluster of short options ("-qs3") is read as CLI11 reads it: letters in
// turn until one that takes a value, whose value the rest is ("-msam" is -m
// with "sam": no -s in it).
bool on_command_line(const CLI::App& app, const CLI::Option* o, const std::vector<std::string>& args) {
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    for (const std::string& n : o->get_lnames())
      if (a == "--" + n || a.rfind("--" + n + "=", 0) == 0) return true;
    if (a.size() < 2 || a[0] != '-' || a[1] == '-') continue;
    for (size_t k = 1; k < a.size(); ++k) {
      const std::string letter(1, a[k]);
      for (const std::string& n : o->get_snames())
        if (n == letter) return true;
      const CLI::Option* here = app.get_option_no_throw("-" + letter);
      if (!here || here->get_expected_max() > 0) break;  // the rest is this option's value (or not options at all)
    }
  }
  return false;
}

// A file or folder option given an empty value on the command line
// (`--record ""`, `--manifest-out "$UNSET"`): read as "not given", the
// record or manifest was silently not written. The environment's values
// are left to their readers (an empty variable is an unset one there).
std::string empty_path(const CLI::App& app, const std::vector<std::string>& args) {
  for (const CLI::Option* o : app.get_options()) {
    if (o->get_items_expected_max() == 0) continue;  // a flag
    const std::string t = o->get_type_name();
    // Positionals are paths (inputs, a model folder) but for a number
    // (expand-channels' factor): `rass-model sample "$UNSET"` ran the
    // embedded model, `run ""` looked in /.
    const bool path = t == "FILE" || t == "DIR" || t == "PATH" ||
                      (o->get_positional() && t.rfind("INT", 0) != 0 && t.rfind("UINT", 0) != 0 && t != "N");
    if (!path) continue;
    if (!o->get_positional() && !on_command_line(app, o, args)) continue;
    for (const std::string& r : o->results())
      if (r.empty()) return o->get_name() + ": expected a path, got an empty value";
  }
  for (const CLI::App* sub : app.get_subcommands())
    if (const std::string bad = empty_path(*sub, args); !bad.empty()) return bad;
  return "";
}

// A numeric option given an empty value (`--timestep ""`, `--tile-overlap
// $UNSET`): CLI11 reads "" as 0, so an unset shell variable silently ran
// timestep 0 or turned a rule off. Refused for every tool at once.
std::string empty_number(const CLI::App& app) {
  for (const CLI::Option* o : app.get_options()) {
    if (o->get_items_expected_max() == 0) continue;  // a flag
    // CLI11's names for numeric types, the numeric placeholders the tools
    // give instead (--timestep T, --start K, -n N, --grid COLS), and values
    // that are numbers in a form (--shard I/N, --vae-tile ENC,DEC), where ""
    // read as "not given" (a whole set, not a shard).
    const std::string t = o->get_type_name();
    const bool numeric = t.rfind("INT", 0) == 0 || t.rfind("UINT", 0) == 0 || t.rfind("FLOAT", 0) == 0 || t == "N" ||
                         t == "K" || t == "T" || t == "COLS" || t == "I/N" || t == "ENC,DEC";
    if (!numeric) continue;
    for (const std::string& r : o->results())
      if (r.find_first_not_of(" \t") == std::string::npos)
        return o->get_name() + ": expected a number, got an empty value";
  }
  for (const CLI::App* sub : app.get_subcommands())
    if (const std::string bad = empty_number(*sub); !bad.empty()) return bad;
  return "";
}

// Names and lists whose empty value means nothing (`--key "$UNSET"`,
// `--stages ''`, `-m psnr,`): read as "not given" or with the empty item
// skipped, the default ran without a word. Options where "" is a value
// (--prompt "": the empty prompt) are not here.
std::string empty_text(const CLI::App& app, const std::vector<std::string>& args) {
  static const std::set<std::string> names = {"key", "stages", "device", "metrics", "dtype"};
  for (const CLI::Option* o : app.get_options()) {
    const std::vector<std::string>& long_names = o->get_lnames();
    if (o->get_items_expected_max() == 0 || long_names.empty() || !names.count(long_names.front()) ||
        !on_command_line(app, o, args))
      continue;
    const std::string flag = "--" + long_names.front();
    for (const std::string& r : o->results()) {
      if (r.find_first_not_of(" \t") == std::string::npos) return flag + ": expected a value, got an empty one";
      if ((flag == "--metrics" || flag == "--stages") &&
          (r.front() == ',' || r.back() == ',' || r.find(",,") != std::string::npos))
        return flag + " " + r + ": an empty item in the list (a stray comma?)";
    }
  }
  for (const CLI::App* sub : app.get_subcommands())
    if (const std::string bad = empty_text(*sub, args); !bad.empty()) return bad;
  return "";
}

std::string bad_flag_environment(const CLI::App& app, const std::vector<std::string>& args) {
  for (const CLI::Option* o : app.get_options()) {
    if (o->get_envname().empty() || o->get_items_expected_max() != 0) continue;  // not a flag
    const char* v = std::getenv(o->get_envname().c_str());
    if (!v || on_command_line(app, o, args)) continue;
    std::string low;
    for (const char c : std::string(v))
      if (!std::isspace(static_cast<unsigned char>(c))) low += char(std::tolower(static_cast<unsigned char>(c)));
    static const char* const words[] = {"", "1", "0", "true", "false", "yes", "no", "on", "off", "enable", "disable"};
    if (std::find(std::begin(words), std::end(words), low) != std::end(words))
      continue;
    return o->get_envname() + "=" + v + " (the environment's " + o->get_name() +
           "): expected 1 or 0, true or false, yes or no, on or off, enable or disable";
  }
  return "";
}

// The environment variables set for the options a parse error names, so a
// value that came from the environment (RASS_JOBS=abc) is found there.
std::string environment_note(const CLI::App& app, const std::string& message, const std::vector<std::string>& args) {
  std::string note;
  for (const CLI::Option* o : app.get_options()) {
    if (o->get_envname().empty() || on_command_line(app, o, args)) continue;
    const char* v = std::getenv(o->get_envname().c_str());
    if (v && message.find(o->get_name()) != std::string::npos)
      note += (note.empty() ? " (from the environment: " : ", ") + o->get_envname() + "=" + v;
  }
  return note.empty() ? note : note + ")";
}

// Whether `name` ("--prompt") is an option of `app` or of one of its
// subcommands that takes a value (not a flag).
bool takes_value(CLI::App& app, const std::string& name) {
  if (const CLI::Option* o = app.get_option_no_throw(name)) return o->get_expected_max() > 0;  // a flag expects 0
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
    if (takes_value(*sub, name)) return true;
  return false;
}

}  // namespace

bool ToolCli::given_on_command_line(const std::string& flag) const {
  const CLI::Option* o = app_->get_option_no_throw(flag);
  return o && on_command_line(*app_, o, args_);
}

namespace {

// One value per occurrence of every option, in every tool and subcommand: a
// repeatable option (CLI11 gives vectors as many values as follow) would
// otherwise swallow the inputs after it (`rass-sam --box 1,2,3,4 img.png`
// segmented nothing: the image was taken for a second box). Repeat the flag
// for more values.
// Numbers as people write them, for every numeric option (CLI11's type
// names, and the placeholders the tools give integers instead): CLI11 reads
// integers with strtoll's base 0, so "010" was 8 (octal) and "0x10" 16, and
// floats with strtold, which takes "0x1p3", "inf", "nan" and leading blanks.
// An integer's digits are read in base 10 (leading zeros dropped:
// zero-padded numbers from `printf %03d` mean what they say); a value those
// functions would take whole that is no decimal number is refused. Anything
// else ("", "abc", "1.5" for an integer) goes on unchanged to the option's
// own check or CLI11's conversion, whose messages say what is expected.
CLI::Validator decimal_value(bool integer) {
  return CLI::Validator(
      [integer](std::string& v) -> std::string {
        if (v.empty()) return {};
        const size_t sign = v[0] == '+' || v[0] == '-' ? 1 : 0;
        if (integer && v.size() > sign && v.find_first_not_of("0123456789", sign) == std::string::npos) {
          const size_t first = v.find_first_not_of('0', sign);
          v = v.substr(0, sign) + (first == std::string::npos ? std::string("0") : v.substr(first));
          return {};
        }
        double x = 0;
        bool too_large = false;
        if (parse_decimal(v, &x, &too_large)) {
          // The networks compute in float32 (and LoRA alphas are stored so):
          // a larger value failed deep in the work, naming no flag.
          if (!integer && std::fabs(x) > double(std::numeric_limits<float>::max()))
            return "out of range: '" + v + "' is past the float32 range (about 3.4e38)";
          return {};
        }
        if (too_large) return "out of range: '" + v + "'";
        char* end = nullptr;
        if (integer) (void)std::strtoll(v.c_str(), &end, 0);
        else (void)std::strtold(v.c_str(), &end);
        if (end == v.c_str() + v.size()) return "expected a decimal number, got '" + v + "'";
        return {};
      },
      "");
}

void one_value_per_option(CLI::App& app) {
  for (CLI::Option* o : app.get_options()) {
    if (o->get_positional()) continue;
    o->allow_extra_args(false);
    if (o->get_expected_max() > 0) {
      // CLI11 appends its validators' descriptions ("FLOAT:FLOAT in [0 - 1]").
      const std::string full = o->get_type_name(), t = full.substr(0, full.find(':'));
      if (t == "FLOAT") o->transform(decimal_value(false));
      else if (t == "INT" || t == "UINT" || t == "N" || t == "K" || t == "T" || t == "COLS") o->transform(decimal_value(true));
    }
    // --help without CLI11's " ..." after a repeatable option's value, which
    // promised several values per flag.
    if (o->get_expected_max() == CLI::detail::expected_max_vector_size && o->get_option_text().empty() &&
        !o->get_type_name().empty())
      o->option_text(o->get_type_name());
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) one_value_per_option(*sub);
}

}  // namespace

int run_main(ToolCli& cli, int argc, char** argv_in, const std::function<int()>& body) {
  occupy_closed_std_fds();  // before any file is opened: nothing may land on fd 1 or 2
  const std::string prog = "rass-" + cli.name();
  tune_allocator(cli.one_malloc_arena());
  install_signal_cleanup();  // SIGTERM, SIGINT, ...: temporaries removed, then the signal's own death
  // /dev/stdout, /dev/fd/1 or a link to one given as a value is "-": every
  // rule about stdout (one report there, tables to stderr, no clean-up
  // removing the name) then applies to it as to "-".
  std::vector<std::string> args(argv_in, argv_in + argc);
  for (size_t i = 1; i < args.size(); ++i) {
    std::string& a = args[i];
    const size_t eq = a.rfind("--", 0) == 0 ? a.find('=') : std::string::npos;  // --csv=/dev/stdout
    const std::string value = eq == std::string::npos ? a : a.substr(eq + 1);
    if (value != "-" && !value.empty() && names_stdout(value))
      a = eq == std::string::npos ? "-" : a.substr(0, eq + 1) + "-";
  }
  // "--prompt=" is the option with an empty value, as "--prompt ''" is:
  // CLI11 reads it as the option alone and takes the next argument for its
  // value (`--prompt= a.png b.png` restored b.png with the prompt "a.png").
  // Split it so CLI11 sees the empty value (a numeric option then gets the
  // empty-value refusal below); a flag or an unknown name is left to CLI11.
  for (size_t i = 1; i < args.size() && args[i] != "--"; ++i)
    if (args[i].size() > 3 && args[i].rfind("--", 0) == 0 && args[i].find('=') == args[i].size() - 1 &&
        takes_value(cli.app(), args[i].substr(0, args[i].size() - 1))) {
      args[i].pop_back();
      args.insert(args.begin() + std::ptrdiff_t(i) + 1, std::string());
      ++i;
    }
  argc = int(args.size());
  std::vector<char*> argv_vec;
  for (std::string& a : args) argv_vec.push_back(a.data());
  argv_vec.push_back(nullptr);
  char** argv = argv_vec.data();
  cli.args_ = args;
  one_value_per_option(cli.app());
  try {
    cli.app().parse(argc, argv);
  } catch (const CLI::Success& e) {
    return check_stdout(prog, cli.app().exit(e));  // --help, --version
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: %s%s\nRun '%s --help' for the options.\n", prog.c_str(), printable_message(e.what()).c_str(),
                 printable_message(environment_note(cli.app(), e.what(), args)).c_str(), prog.c_str());
    return int(ExitCode::usage);
  }
  std::string bad_value = empty_number(cli.app());
  if (bad_value.empty()) bad_value = empty_path(cli.app(), args);
  if (bad_value.empty()) bad_value = empty_text(cli.app(), args);
  if (const std::string bad = bad_value; !bad.empty()) {
    std::fprintf(stderr, "%s: %s\nRun '%s --help' for the options.\n", prog.c_str(), printable_message(bad).c_str(), prog.c_str());
    return int(ExitCode::usage);
  }
  if (const std::string bad = bad_flag_environment(cli.app(), args); !bad.empty()) {
    std::fprintf(stderr, "%s: %s\n", prog.c_str(), printable_message(bad).c_str());
    return int(ExitCode::usage);
  }
  int rc = int(ExitCode::runtime);
  try {
    rc = body();
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: %s\n", prog.c_str(), e.what());
    rc = e.exit_code();
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: out of memory\n", prog.c_str());
  } catch (const std::exception& e) {  // LibTorch's, the standard library's: as they come, but printable
    const std::string what = describe_allocation_failure(e.what());
    std::fprintf(stderr, "%s: %s\n", prog.c_str(), printable_message(what).c_str());
  }
  rc = check_stdout(prog, rc);
  // A job that stopped cleanly on a signal (rass-train's checkpoint) ends by
  // that signal once its outputs are flushed: to the shell or batch system it
  // was interrupted, not done. A job that failed as well (a full disk at
  // that checkpoint) keeps its exit code: a requeue must not hide an error.
  if (const int sig = stop_signal(); sig && rc == 0) die_by_signal(sig);
  return rc;
}

int check_stdout(const std::string& prog, int rc) {
  // Reports printed on stdout (--json, --print-config, tables) sit in stdio's
  // buffer; a full disk or closed descriptor shows only when it is flushed.
  errno = 0;
  std::cout.flush();  // CLI11's --help goes through std::cout (synced with stdio)
  const bool failed = std::fflush(stdout) != 0 || std::ferror(stdout) || std::cout.fail();
  if (!failed) return rc;
  const int err = errno;
  std::fprintf(stderr, "%s: cannot write to stdout: %s\n", prog.c_str(),
               err ? std::strerror(err) : "write error");
  std::clearerr(stdout);
  std::cout.clear();
  return int(ExitCode::runtime);
}

}  // namespace rass::cli
