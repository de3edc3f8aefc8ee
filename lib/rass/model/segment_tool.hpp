// rass-segment as a library call: one image (file or `-`) or a batch (files,
// directories, manifests -> -O DIR) through the shared batch layer. The CLI
// (cli/segment_cli.cpp) only parses flags into a SegmentJob. Torch-free.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rass/core/shard.hpp"

namespace rass::model {

struct SegmentJob {
  std::string model;                        // segmentation model folder (segment.json)
  std::string backbone = "ras";             // ras | plain
  std::optional<std::string> prompt_style;  // osediff | rass; default: the model's (rass)
  std::string prompt, prompt_file, tags;    // tags: FILE or "-"
  std::string classes;                      // FILE or a built-in set: names; count must equal the head's
  bool whole = false, no_resize = false;
  int window = 0;                           // 0: the padded short side
  bool vae_mode = false;
  uint64_t seed = 0;
  std::string device = "cpu", dtype = "fp32";
  bool channels_last = false, cudnn_benchmark = false, cuda_graphs = false;  // speed switches (device.hpp, cuda_graphs.hpp)
  bool timings = false;  // --timings: seconds per stage on stderr at the end (stage_times.hpp)
  int threads = 0;
  std::vector<std::string> inputs;
  std::string manifest;
  std::string output, output_dir;           // -o FILE | -, -O DIR
  std::string color, overlay;               // FILE (one image) or DIR (batch)
  std::string latent_in;                    // FILE.npy (one image) or DIR of <key>.npy (batch)
  std::string logits_out, probs_out;        // FILE.npy (one image) or DIR (batch)
  bool json = false, quiet = false, resume = false;
  int jobs = 1;
  int batch = 1;  // windows per backbone call (segment_many)
  Shard shard;
};

int run_segment_tool(const SegmentJob& job);

}  // namespace rass::model
