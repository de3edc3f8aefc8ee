// One model component (UNet, VAE, CLIP text encoder) read for weight surgery:
// where its weights and config are, the module built from the config with the
// weights loaded strictly in float32, and a writer that puts the module's
// tensors back under the input's names and dtypes.
#pragma once
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/nn/module.h>

#include "rass/io/safetensors.hpp"

namespace rass::model {

// Where a component comes from. `path` is a diffusers model folder (then
// `component` names its subfolder, e.g. unet), a component folder
// (config.json + weights), or a .safetensors file whose config is `config`,
// else the config.json beside the file.
struct ComponentSource {
  std::string path;
  std::string component = "unet";
  std::string config;
};

struct ComponentFiles {
  std::string kind;         // unet, vae, text_encoder (from the config's class)
  std::string config_path;
  nlohmann::ordered_json config;  // read once: a config the user names may be a FIFO (`--config <(...)`)
  std::string dir;          // the component folder; "" for a lone file
  std::string model_dir;    // the model folder holding `dir`; "" when not given one
  std::vector<std::string> weights;  // the files diffusers would load
};

// Resolves `src`. Throws Error(bad_input) naming the path for a missing
// component folder, config or weights, or a config of a class this project
// does not build; Error(usage) for a lone file without any config.
ComponentFiles find_component(const ComponentSource& src);

struct LoadedComponent {
  ComponentFiles files;
  std::shared_ptr<torch::nn::Module> module;  // float32, on the CPU
  std::vector<std::shared_ptr<SafeTensorsFile>> opened;  // the weight files, in order
  std::set<std::string> ignorable;  // file tensors the module does not hold (copied as they are)
};

// Builds the module from the config and loads the weights strictly.
LoadedComponent load_component_module(const ComponentSource& src);

// The tensor dtype to write: "" keeps each tensor's own, else fp32/fp16/bf16
// for floating tensors. Throws Error(usage) for another name.
DType output_float_dtype(const std::string& name, DType original);

// Writes the module's tensors under the names of the input files (every one,
// in a single file; ignorable ones copied from the input), each floating
// tensor in `dtype` ("" = its input dtype). Refuses (Error(bad_input)) values
// that become inf or NaN in the output dtype. Atomic.
void write_component_weights(const LoadedComponent& c, const std::string& path, const std::string& dtype,
                             const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// The file name diffusers looks for in a component folder of this kind.
std::string canonical_weight_name(const std::string& kind);

}  // namespace rass::model
