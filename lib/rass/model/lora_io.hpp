// LoRA adapters in files: PEFT key names ("<module>.lora_A.<adapter>.weight",
// or "<module>.lora_A.weight" as diffusers saves a single adapter, optionally
// under a prefix such as "unet."), and the older diffusers names
// ("<module>.lora.down.weight" / ".lora.up.weight").
#pragma once
#include <map>
#include <string>
#include <vector>

#include <torch/nn/module.h>

#include "rass/io/safetensors.hpp"

namespace rass::model {

struct LoraLoadOptions {
  std::string prefix;         // stripped from keys ("unet." for diffusers pipeline files)
  std::string adapter = "default";  // name for keys that carry none
  double alpha = 0;           // 0: alpha = rank unless the file's metadata has lora_alpha
  double scale = 1.0;         // user scale (strength)
  bool apply_full_weights = true;  // keys naming base parameters (e.g. conv_in.weight) replace them
};

struct LoraLoadReport {
  std::map<std::string, size_t> adapters;    // adapter -> layers it was added to
  std::vector<std::string> full_weights;     // base parameters replaced
  std::vector<std::string> unmatched;        // keys that fit nothing
  bool alpha_guessed = false;                // no alpha given or stored: alpha = rank was assumed
};

// Adds the file's adapters to `root`. Throws Error(bad_input) naming the file
// and tensor when a key names a layer that does not exist, when A and B
// disagree, or when their shapes do not fit the layer.
LoraLoadReport load_lora(torch::nn::Module& root, const SafeTensorsFile& file, const LoraLoadOptions& options = {});

// Writes the adapter `name` of every layer in PEFT names (module.lora_A.weight,
// module.lora_B.weight), with lora_alpha and rank in the metadata.
void save_lora(torch::nn::Module& root, const std::string& name, const std::string& path, const std::string& prefix = "");

}  // namespace rass::model
