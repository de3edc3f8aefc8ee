// LoRA adapters in files: PEFT key names ("<module>.lora_A.<adapter>.weight",
// or "<module>.lora_A.weight" as diffusers saves a single adapter, optionally
// under a prefix such as "unet."), and the older diffusers names
// ("<module>.lora.down.weight" / ".lora.up.weight").
#pragma once
#include <functional>
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
// and tensor when the file holds no tensors, a key names a layer that does
// not exist, A and B disagree, their shapes do not fit the layer, the rank is
// 0, or an alpha (lora_alpha metadata, or a per-layer "<module>.alpha"
// tensor as kohya and diffusers' network_alphas write) is not a finite
// positive number. Also reads diffusers' attention-processor names
// ("<attn>.processor.to_q_lora.down.weight", LoRAAttnProcessor,
// save_attn_procs; to_out_lora is to_out.0).
LoraLoadReport load_lora(torch::nn::Module& root, const SafeTensorsFile& file, const LoraLoadOptions& options = {});

// lora_alpha from PEFT's adapter_config.json (what save_pretrained writes
// beside adapter_model.safetensors). Throws Error(bad_input) naming the file
// for a missing or non-positive lora_alpha, and for what this loader does not
// implement (rank_pattern / alpha_pattern, use_rslora, use_dora).
double peft_config_alpha(const std::string& adapter_config_json);

// Fills in what the file's own layout says, where `options` leaves it open:
// the key prefix shared by every tensor ("unet.", "base_model.model.unet.",
// "base_model.model." as diffusers pipelines and PEFT's save_pretrained write
// them) when `prefix` is empty, and lora_alpha from the adapter_config.json
// beside a PEFT adapter_model.safetensors when `alpha` is 0.
void detect_lora_layout(const SafeTensorsFile& file, LoraLoadOptions& options);

// One layer's lora_A / lora_B pair (`layer` as the file names it): both are
// matrices or convolution kernels (a 0-d or 1-d tensor is refused), lora_A's
// rank (its first dimension) is at least 1 and is lora_B's second.
// Error(bad_input) naming `file`. load_lora and the inventory (merge-lora
// list) both call it, so they refuse the same files.
void check_lora_pair_shapes(const std::string& file, const std::string& layer, const std::string& a_name,
                            const std::vector<int64_t>& a_shape, const std::string& b_name,
                            const std::vector<int64_t>& b_shape);

// One `--lora FILE[:SCALE]` applied to `root` the way every tool applies it:
// a folder is refused; the file's layout is detected (detect_lora_layout);
// keys without an adapter name get "lora<index>"; tensors that fit nothing,
// or a file with no adapter and no full weight, are refused naming the file
// (Error(bad_input)); `what` names the model in that message ("UNet"). With
// `prog` non-empty, an alpha that had to be guessed is warned about on
// stderr. `before_load` sees the opened file first (rass-restore checks there
// that two files do not share adapter names).
LoraLoadReport load_lora_file(torch::nn::Module& root, const std::string& path, double scale, int index,
                              const std::string& what, const std::string& prog,
                              const std::function<void(const SafeTensorsFile&)>& before_load = {});

// Writes the adapter `name` of every layer in PEFT names (module.lora_A.weight,
// module.lora_B.weight), with lora_alpha and rank in the metadata.
void save_lora(torch::nn::Module& root, const std::string& name, const std::string& path, const std::string& prefix = "");

}  // namespace rass::model
