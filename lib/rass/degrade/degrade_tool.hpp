// rass-degrade as a library call: one image (file or `-`) or a batch
// (directories, files and manifests in; a directory out) with --jobs, --shard,
// --resume and --variants. The tool's main only parses flags into a DegradeJob.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rass/core/shard.hpp"
#include "rass/degrade/config.hpp"
#include "rass/io/image_io.hpp"

namespace rass::degrade {

struct DegradeJob {
  PipelineConfig cfg;
  uint64_t seed = 0;
  std::vector<std::string> inputs;  // files, directories or "-"
  std::string manifest_in;          // JSON lines ("hq" field) or one path per line
  std::string output;               // file or "-" (single), directory (batch)
  std::string key;                  // single mode: overrides the item key (default: file stem)
  int variants = 1;                 // LQ images per HQ image, keys "<key>#v<k>" for k > 0
  ImageFormat format = ImageFormat::unknown;
  EncodeOptions encode{95, true, 1};  // output JPEG quality; PNG zlib level 1 (fast, as OpenCV's imwrite)
  std::string record_path;   // single mode: write the record here
  std::string replay_path;   // single mode: regenerate from this record
  std::string manifest_out;  // batch: default <output>/manifest.jsonl (per shard when sharded)
  bool resume = false;
  int jobs = 0;  // 0 = all cores
  Shard shard;
  bool quiet = false;
  bool json = false;  // print the record (single) or a summary (batch) as JSON on stdout
  bool drop_alpha = false;
  bool accept_16bit = false;
  bool print_config = false;  // print the effective settings as JSON and stop
  // Given on the command line (a warning when they cannot apply to this run).
  bool png_level_given = false, out_quality_given = false, upsample_mode_given = false;
};

// Returns the exit code: 0 all done; 3 some inputs were bad (the rest are
// written); 1 a runtime failure (e.g. an output could not be written).
// Usage errors throw Error(usage).
int run_degrade(const DegradeJob& job);

// Checks channels, depth and size of a decoded HQ image for `cfg` and returns
// the gray/RGB image the pipeline takes. Throws Error(bad_input) naming `name`.
// `cfg` null: no size check (--replay: the record's ops, not the command
// line's preset, apply, and its sizes are checked with the record).
Image prepare_input(Image img, const std::string& name, const PipelineConfig* cfg, bool drop_alpha,
                    bool accept_16bit);

}  // namespace rass::degrade
