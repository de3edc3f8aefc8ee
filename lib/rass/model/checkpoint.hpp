// Loading safetensors weights into LibTorch modules by their own names: the
// modules mirror the diffusers/transformers state-dict keys, so there is no
// renaming table. Missing, unexpected and mis-shaped tensors are reported by
// name; a partial load is refused unless asked for.
#pragma once
#include <set>
#include <string>
#include <vector>

#include <torch/nn/module.h>

#include "rass/io/safetensors.hpp"

namespace rass::model {

struct LoadReport {
  std::vector<std::string> missing;     // in the module, not in the file
  std::vector<std::string> unexpected;  // in the file, not in the module
  std::vector<std::string> mismatched;  // "name: file [..] vs module [..]"
  size_t loaded = 0;
  bool complete() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string summary(size_t max_names = 8) const;
};

// Copies every tensor of `file` whose key (after removing `prefix`) names a
// parameter or buffer of `module`, converting dtype (F32/F16/BF16/F64) to the
// module's. With `strict`, any missing, unexpected or mis-shaped tensor throws
// Error(bad_input) naming the file and the tensors, before anything is copied.
// Keys in `ignorable` (e.g. the position_ids buffer older CLIP checkpoints
// carry) are skipped without being reported; an entry ending in '*' skips every
// key it begins ("decoder.*": a whole T5 checkpoint read as its encoder).
LoadReport load_state_dict(torch::nn::Module& module, const SafeTensorsFile& file, bool strict = true,
                           const std::string& prefix = "", const std::set<std::string>& ignorable = {});

// Every floating parameter and buffer of `module` finite, else Error(bad_input)
// "<file>: tensor '<name>' holds non-finite values (NaN or infinity)": a
// damaged weight file of the right size loads, and would give black images
// or failed items with exit 0 / 1 and no file named. One pass over the
// weights (about a second for SD 2.1's on two cores).
void check_finite_parameters(torch::nn::Module& module, const std::string& file);

// A torch tensor copied from a safetensors view (any supported dtype).
torch::Tensor to_tensor(const TensorView& view, const std::string& file);

// rass::DType (the file element types of .npy and safetensors) <-> torch.
// torch_dtype gives Undefined for types LibTorch 1.13 cannot hold (unsigned
// wider than 8 bits, fp8); file_dtype throws Error(runtime) for torch types
// files do not have (complex, quantized).
// "[2, 3, 64]": a shape in messages.
std::string shape_str(c10::IntArrayRef s);

torch::ScalarType torch_dtype(DType t);
DType file_dtype(torch::ScalarType t);

// The weight files of a diffusers component folder (unet/, vae/,
// text_encoder/), chosen as diffusers does: with an empty `variant`,
// diffusion_pytorch_model.safetensors or model.safetensors, else the shards
// named by diffusion_pytorch_model.safetensors.index.json (or
// model.safetensors.index.json); with a variant such as "fp16", the files
// with it (diffusion_pytorch_model.fp16.safetensors, or the shards of
// diffusion_pytorch_model.safetensors.index.fp16.json). A folder holding only
// one .safetensors file uses it. Anything else (several candidates, none, a
// malformed index, a shard missing or outside the folder) throws
// Error(bad_input) naming the folder or file.
std::vector<std::string> component_weight_files(const std::string& dir, const std::string& variant = "");

// Loads a component folder's weights (one file or all the shards) into
// `module`, strictly: every parameter and buffer must come from some file
// (shards may hold any part of the model), nothing unexpected or mis-shaped.
void load_component(torch::nn::Module& module, const std::string& dir, const std::string& variant = "",
                    const std::set<std::string>& ignorable = {});

}  // namespace rass::model
