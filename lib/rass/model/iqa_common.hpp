// What every deep image-quality metric adapter (model/iqa_*.cpp) does the
// same way: the device and threads from rass-eval-iqa's options, the weight
// file's path with the message that names it when it is absent, and decoded
// 8-bit images as one float batch.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

#include "rass/core/image.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/metrics/deep_iqa.hpp"
#include "rass/nn/iqa_trunks.hpp"

namespace rass::model {

// Parses options.device ("cpu", "cuda", "cuda:N"; usage error otherwise,
// runtime error when CUDA is absent) and sets the CPU threads (nn::set_cpu_threads).
torch::Device iqa_device(const metrics::DeepIqaOptions& options);

// options.weights_dir/file. Throws Error(bad_input) naming the folder when it
// is not one, or the file and `converter` (how to make it) when it is absent.
std::string iqa_weights_file(const metrics::DeepIqaOptions& options, const std::string& file,
                             const std::string& converter);

// Opens a metric's weight file (SafeTensorsFile::open) and refuses what the
// name-checked loader would silently cast: a tensor that is not a float
// (an integer tensor loads as garbage scores). Throws Error(bad_input)
// naming the file and the tensor.
std::shared_ptr<SafeTensorsFile> open_iqa_weights(const std::string& path);

// After load_state_dict: every parameter or buffer of `module` that came from
// `file` is finite. A NaN or infinity in the weights would make every score
// NaN with exit 0; this names the file and the tensor instead (bad_input).
void check_finite_weights(const torch::nn::Module& module, const SafeTensorsFile& file);

// Same-size 8-bit images (1 or 3 channels; gray is replicated as PIL's
// convert('RGB')) as a [N,3,H,W] float tensor in [0,1] (value / 255, as
// torchvision's to_tensor), on the CPU.
torch::Tensor images_to_tensor(const std::vector<const Image*>& images);

// The conv widths of a trunk stored in `file` (at `path`): the output channels
// of "<prefix><slice>.<index>.weight" for each conv of `layout`, in order, so
// a narrow test trunk loads like the full one. Throws Error(bad_input) naming
// the first conv the file lacks.
std::vector<int64_t> stored_trunk_widths(const SafeTensorsFile& file, const std::string& path,
                                         const std::string& prefix,
                                         const std::vector<std::vector<nn::TrunkLayer>>& layout);

}  // namespace rass::model
