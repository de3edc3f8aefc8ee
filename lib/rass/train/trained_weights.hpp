// Writing a trained model next to the folder it started from: the start
// weights file with the trained tensors put in, and (for the ResShift
// family) the whole rass-samsr folder of an export.
#pragma once
#include <map>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/types.h>

namespace torch::nn {
class Module;
}

namespace rass::train {

// Every parameter of `m` as a contiguous float32 CPU tensor, by its name
// (prefix + the module's own name).
std::map<std::string, torch::Tensor> cpu_float_parameters(torch::nn::Module& m, const std::string& prefix = "");

// Writes `out_path` (atomically): every tensor of `start_path` in its order,
// those named in `trained` replaced (float32, same shape), the start file's
// metadata with "rass" = `note`. Error(runtime) "<what> export: ..." for a
// trained tensor of another shape or one the start file lacks. With
// `start_path` "" (a network trained from random weights): `trained` alone,
// by name, with `metadata` beside "format" and "rass" (cpu_float_parameters'
// kind: contiguous float32 on the CPU).
void write_trained_weights(const std::string& start_path, const std::map<std::string, torch::Tensor>& trained,
                           const std::string& out_path, const std::string& note, const std::string& what,
                           const std::map<std::string, std::string>& metadata = {});

// A rass-samsr folder in `dir` (replacing an earlier export): the files of
// `base` linked (but its unet.safetensors, samsr.json and sam/), `sam_dir`
// as sam/ when not "", unet.safetensors from `unet_start` with `trained`
// put in (`trained` alone when `unet_start` is ""), and samsr.json = `config` with "source" added and the schedule
// trained on written out (diffusion.cap_etas_start: the methods' defaults
// differ, so a method changed by the export must not change the schedule).
void export_samsr_folder(const std::string& dir, const std::string& base, const std::string& sam_dir,
                         const std::string& unet_start, const std::map<std::string, torch::Tensor>& trained,
                         nlohmann::ordered_json config, bool cap_etas_start, const std::string& what);

}  // namespace rass::train
