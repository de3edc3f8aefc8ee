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
// carry) are skipped without being reported.
LoadReport load_state_dict(torch::nn::Module& module, const SafeTensorsFile& file, bool strict = true,
                           const std::string& prefix = "", const std::set<std::string>& ignorable = {});

// A torch tensor copied from a safetensors view (any supported dtype).
torch::Tensor to_tensor(const TensorView& view, const std::string& file);

}  // namespace rass::model
