// rass-train's configuration: one JSON object
//   {"stage": <name>, "loop": {...}, "<name>": {...}}
// merged as loop defaults <- the stage's loop defaults <- --config FILE <-
// --set KEY=VALUE <- the dedicated flags (--steps, --lr, ...). Every key that
// may be set exists in the defaults (so --print-config shows all of them);
// an unknown key or a value of another type is refused, naming the key and
// where it came from.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rass/train/loop.hpp"
#include "rass/train/stage.hpp"

namespace rass::train {

// Every LoopConfig setting (but `config`) with its default, plus where the
// stage runs: "device" (cpu, cuda, cuda:N), "dtype" (fp32, fp16, bf16),
// "threads" (intra-op threads per process, 0: all cores / processes on the node),
// "timeout_s" (how long processes wait for each other: rendezvous, collectives).
nlohmann::ordered_json loop_defaults();

struct ConfigSources {
  std::string file;               // --config (JSON); "" for none
  std::vector<std::string> sets;  // --set KEY=VALUE, in order
  nlohmann::ordered_json flags = nlohmann::ordered_json::object();  // {"loop": {"steps": 10}, ...}
};

// The defaults of `stage` (its "loop" section already merged).
nlohmann::ordered_json default_config(const StageInfo& stage);
// The merged configuration. Errors: Error(bad_input) "<file>: ..." for the
// file (unreadable, not JSON, unknown key, wrong type, another stage's name),
// Error(usage) for --set and flags.
nlohmann::ordered_json merge_config(const StageInfo& stage, const ConfigSources& src);
// `value` (JSON text, or plain text for a string setting) at the dotted `key`
// of `config`, checked as the merge does; `origin` names it in errors.
void set_config_value(nlohmann::ordered_json& config, const std::string& key, const std::string& value,
                      const std::string& origin);
// The loop settings of a merged configuration (config = the whole of it).
LoopConfig loop_config_from(const nlohmann::ordered_json& config);

}  // namespace rass::train
