// rass-model's flags into model::ModelJob: LoRA specs, tool options after the
// command, the empty prompt. Torch-free (the CLI layer only).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "rass/cli/model_cli.hpp"
#include "rass/core/error.hpp"

using namespace rass;

namespace {
model::ModelJob parse(std::vector<std::string> args) {
  cli::ModelCli cli;
  std::vector<std::string> rev(args.rbegin(), args.rend() - 1);  // CLI11 takes them reversed, without argv[0]
  cli.app().parse(rev);
  return cli.job();
}
}  // namespace

TEST_CASE("--lora FILE[:SCALE]: the scale must be a number (usage error otherwise)") {
  CHECK(cli::parse_lora_spec("a.safetensors").path == "a.safetensors");
  CHECK(cli::parse_lora_spec("a.safetensors").scale == 1.0);
  const model::LoraSpec s = cli::parse_lora_spec("dir/a.safetensors:0.75");
  CHECK(s.path == "dir/a.safetensors");
  CHECK(s.scale == 0.75);
  CHECK(cli::parse_lora_spec("a.safetensors:-1e-1").scale == doctest::Approx(-0.1));
  for (const char* bad : {"a.safetensors:abc", "a.safetensors:1.2.3", "a.safetensors:", "a.safetensors:-",
                          "a.safetensors:nan", "a.safetensors:inf", "a.safetensors:1e999", ""}) {
    INFO(bad);
    try {
      cli::parse_lora_spec(bad);
      FAIL("expected a usage error");
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::usage);
    }
  }
  // A ':' inside a name that is not a .safetensors file: all of it is the file.
  CHECK(cli::parse_lora_spec("weights:v2").path == "weights:v2");
}

TEST_CASE("rass-model: tool options after the command; --prompt \"\" is a prompt") {
  model::ModelJob j = parse({"rass-model", "info", "sd", "--json"});
  CHECK(j.command == model::ModelJob::Command::info);
  CHECK(j.json);
  j = parse({"rass-model", "run", "sd", "-c", "tokenize", "--prompt", "", "-o", "x.npy", "-q"});
  CHECK(j.has_prompt);
  CHECK(j.prompt.empty());
  CHECK(j.quiet);
  j = parse({"rass-model", "run", "sd", "-c", "unet", "-o", "x.npy", "--lora", "l.safetensors:0.5", "--lora", "m.safetensors"});
  REQUIRE(j.loras.size() == 2);
  CHECK(j.loras[0].scale == 0.5);
  CHECK(j.loras[1].path == "m.safetensors");
  CHECK(!j.has_prompt);
  CHECK_THROWS_AS(parse({"rass-model", "run", "sd", "-c", "unet", "-o", "x.npy", "--lora", "l.safetensors:x"}), Error);
  CHECK_THROWS_AS(parse({"rass-model", "convert", "a.safetensors", "-o", "b.safetensors", "--allow-overflow"}), Error);
  j = parse({"rass-model", "convert", "a.safetensors", "-o", "b.safetensors", "--to-dtype", "fp16", "--allow-overflow"});
  CHECK(j.allow_overflow);
}
