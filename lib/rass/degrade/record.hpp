// Sampling a degradation for one item, and the JSON record that lets the LQ
// image be regenerated from the HQ image and the record alone.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rass/core/image.hpp"
#include "rass/degrade/config.hpp"
#include "rass/degrade/ops.hpp"

namespace rass::degrade {

struct Skipped {
  std::string stage, reason;  // reason: "probability" (not drawn) or "disabled" (--stages)
};

// The record format version written as "record_version". Records are stable
// across versions: the same (preset settings, seed, key, input) gives the same
// record and pixels; this number is bumped only when they must change, and a
// record replays with its own version's arithmetic. Records without the field
// (written before it existed) and version 0 read as 1, the same format, and are
// written back as 1.
//   1: the first fixed format.
//   2: same draws and fields; blur kernels of 13 to 21 px are summed directly
//      instead of through OpenCV's DFT (filter.hpp), which can move a few
//      pixels by one level.
constexpr int kRecordVersion = 2;

struct Record {
  int version = kRecordVersion;  // record_version: the version it was made with
  std::string preset;
  uint64_t seed = 0;
  std::string key;  // the item key the draws are keyed by
  int in_width = 0, in_height = 0, channels = 0;
  int out_width = 0, out_height = 0;
  int scale = 1;
  std::string final_order;  // "resize_sinc_then_jpeg" or "jpeg_then_resize_sinc" ("" for named)
  std::vector<Op> ops;
  std::vector<Skipped> skipped;
};

// Smallest HQ side the preset accepts (the largest kernel must fit the image).
int min_input_side(const PipelineConfig& cfg);

// Draws every random value for (seed, key) on a width x height x channels input.
// Draws do not depend on which stages are disabled, so an ablation changes
// nothing but the switched-off stage.
Record sample_record(const PipelineConfig& cfg, uint64_t seed, const std::string& key, int width, int height,
                     int channels);

// Runs the record's ops on the HQ image (1 or 3 channels, 8 or 16 bit) and
// quantises to 8 bits. Throws Error(bad_input) when the image does not match
// the record's input size.
Image apply_record(const Image& hq, const Record& rec, const std::string& name);

// The 2-D filter a record of `version` was made with.
FilterAlgo filter_algo_for(int record_version);

nlohmann::ordered_json record_to_json(const Record& rec);
// `name` is the record file, for messages. Checks every field against its
// valid range (op_from_json), the sizes against the pixel limit and the
// declared output size against what the ops produce, before any work.
// Throws Error(bad_input) "<name>: invalid degradation record: <field>: <what>"
// (or the pixel-limit message naming the field).
Record record_from_json(const nlohmann::ordered_json& j, const std::string& name);
// The size checks alone: every resize size (and a scale_factor resize's
// floor(n * factor)) walked from the input size, each against the pixel
// limit, and the final size against out_width x out_height. Throws Error(bad_input).
void check_record_sizes(const Record& rec, const std::string& name);
// A record read back holds each frost op's picture by index: this joins it
// to the folder of the pictures (--frost-dir) so the op can be applied; with
// no folder the op says it needs one when applied.
void resolve_frost_pictures(Record& rec, const std::string& frost_dir);

}  // namespace rass::degrade
