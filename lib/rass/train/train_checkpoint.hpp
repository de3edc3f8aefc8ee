// rass-train's checkpoints: <out_dir>/checkpoints/step_<N>.safetensors holds
// the trainable tensors under their parameter names, the AdamW state of each
// ("adamw.exp_avg.<name>", "adamw.exp_avg_sq.<name>", "adamw.step.<name>" as
// an int64 scalar), fp16 loss scaling's state when it runs
// ("amp.loss_scale", float32, and "amp.growth_tracker", int64), and the CPU
// generator's state ("rng.cpu"); its metadata
// the step (the number of steps done), seed, world size, the whole merged
// configuration (JSON) and the format version. Written atomically, so a
// killed run leaves only complete checkpoints under their final names.
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

namespace rass::train {

constexpr const char* kCheckpointFormat = "rass-train-checkpoint";
constexpr int kCheckpointVersion = 1;

struct TrainCheckpoint {
  std::string path;
  int64_t step = 0;  // steps done
  uint64_t seed = 0;
  int world = 1;
  std::string stage;
  nlohmann::ordered_json config;
  std::map<std::string, torch::Tensor> tensors;  // CPU copies, the file's dtypes
};

// Writes the tensors (any device; stored in their own dtype) and metadata.
void write_train_checkpoint(const std::string& path, const TrainCheckpoint& ck);
// "" when `path` opens as a safetensors file, else why not (truncated,
// damaged header or offsets): what --resume passes over for an older
// checkpoint. A file that opens but is not this rass-train's (another
// format, a newer version) is not damage: read_train_checkpoint refuses it.
std::string checkpoint_damage(const std::string& path);
// Reads a checkpoint written by write_train_checkpoint. A file that is not
// one (no or another format, a newer version, malformed metadata) throws
// Error(bad_input) naming the file.
TrainCheckpoint read_train_checkpoint(const std::string& path);

// "<dir>/step_<N>.safetensors" files by N (ascending); anything else in dir
// (temporary files of a killed write, other names) is ignored.
std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& dir);
std::string checkpoint_path(const std::string& dir, int64_t step);
// Removes all but the `keep` newest (keep <= 0: none removed).
void prune_checkpoints(const std::string& dir, int keep);

// The dotted keys ("loop.lr", "scr.rank", "stage") whose values differ
// between two configurations, or exist in one only; keys in `ignore` (dotted)
// are not compared. Two strings that name the same existing file or folder
// (spelled differently: relative or absolute, a trailing slash, a link) do
// not differ.
std::vector<std::string> config_differences(const nlohmann::ordered_json& a, const nlohmann::ordered_json& b,
                                            const std::set<std::string>& ignore);

}  // namespace rass::train
