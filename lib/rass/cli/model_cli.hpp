// Flags of rass-model (info / run / convert / init / sample), parsed into the model layer's
// job (model::ModelJob, lib/rass/model/model_tool.hpp). The work is in
// lib/rass/model/model_tool.cpp (LibTorch); this file is torch-free so that
// the completion generator and the flag tests see the CLI without LibTorch.
#pragma once
#include <string>
#include <vector>

#include "rass/cli/tool.hpp"
#include "rass/model/model_tool.hpp"

namespace rass::cli {

// Parses --lora "FILE[:SCALE]". The text after the last ':' is the scale when
// what precedes it is an existing file or ends in .safetensors; it must then
// be a finite number, else Error(usage). Otherwise the whole text is the file.
model::LoraSpec parse_lora_spec(const std::string& spec);

class ModelCli : public ToolCli {
 public:
  ModelCli();
  // The parsed job (after a successful parse); Error(usage) for flag values
  // that do not go together or do not parse.
  model::ModelJob job() const;

 private:
  model::ModelJob a_;
  std::vector<std::string> loras_;
  CLI::App *info_ = nullptr, *run_ = nullptr, *convert_ = nullptr, *init_ = nullptr, *sample_ = nullptr;
  CLI::Option* prompt_ = nullptr;
  int64_t size_ = 0;
  // --seed of run, init and sample as given: parse_seed, as every tool's
  // (bound to uint64_t, CLI11 wrapped -1 around to 2^64-1 and read "" as 0).
  std::string run_seed_ = "0", init_seed_ = "0", sample_seed_ = "0";
};

}  // namespace rass::cli
