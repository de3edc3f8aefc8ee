// .npy files <-> LibTorch tensors: the network tools' array inputs and
// outputs (latents, attention maps, scores, probabilities, component inputs
// and outputs of rass-model run).
#pragma once
#include <string>

#include <ATen/core/Tensor.h>

#include "rass/io/npy.hpp"

namespace rass::model {

// Any numeric .npy as a float32 CPU tensor of its shape. Throws
// Error(bad_input) naming the file when it is not a readable .npy.
at::Tensor read_npy_float(const std::string& path);
// An array already read (parse_npy), as read_npy_float gives it.
at::Tensor npy_float_tensor(const NpyArray& a);

// `t` (any device and dtype) as a float32 .npy, int64 kept as int64;
// written atomically (write_npy).
void write_npy_tensor(const std::string& path, const at::Tensor& t);

}  // namespace rass::model
