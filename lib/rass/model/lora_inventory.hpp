// What a LoRA file holds, read from its key names and metadata alone (no
// model needed): the adapters with their ranks, alphas (and where each came
// from, in load_lora's order of precedence), layers and parameter counts,
// the full-weight tensors (e.g. conv_in.base_layer.weight, fully trained),
// and keys that are none of these. rass-merge-lora list prints it.
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rass/io/safetensors.hpp"

namespace rass::model {

struct LoraInventory {
  struct Layer {
    std::string path, adapter;
    std::vector<int64_t> a_shape, b_shape;
    std::string a_name, b_name;  // the tensors; empty when the file lacks that half
  };
  struct Adapter {
    std::set<int64_t> ranks;
    std::set<double> alphas;
    std::string alpha_source;  // adapter_config.json, per-layer alpha tensors, metadata lora_alpha, none
    std::vector<std::string> layers;
    int64_t parameters = 0;
  };
  std::string file, prefix, layout;
  std::vector<Layer> layers;
  std::map<std::string, Adapter> adapters;
  std::vector<std::pair<std::string, int64_t>> full_weights;  // in-model name (base_layer removed), elements
  std::vector<std::string> other;                             // keys that fit no pattern
};

// Reads the inventory (the prefix and adapter_config.json alpha found as
// load_lora's callers find them, detect_lora_layout). Throws Error(bad_input)
// for a file without tensors or with a lora_A lacking its lora_B.
LoraInventory lora_inventory(const SafeTensorsFile& file);

// The kind of a target module, for grouping: "to_q", "to_out.0",
// "ff.net.0.proj", "conv1", ... (the path's tail after its block indices).
std::string module_kind(const std::string& path);
// Where a module sits: "down_blocks", "mid_block", "up_blocks" or its top-level name.
std::string module_region(const std::string& path);

nlohmann::ordered_json inventory_json(const LoraInventory& inv);

}  // namespace rass::model
