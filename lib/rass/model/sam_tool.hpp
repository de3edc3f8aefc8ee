// rass-sam as a library call: Segment Anything (optionally GleSAM's
// enhanced embedding) on one image (file or `-`) or a batch (files,
// directories, manifests -> -O DIR) through the shared batch layer. The CLI
// (cli/sam_cli.cpp) only parses flags into a SamJob. Torch-free.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rass/core/shard.hpp"

namespace rass::model {

struct SamJob {
  std::string model;                       // SAM model folder (sam.json)
  std::vector<std::string> points, boxes;  // --point X,Y[,L], --box X0,Y0,X1,Y1: one object
  std::string prompts_from;                // a label map (one image) or a directory of <key>.png (batch)
  std::string prompt_type = "box";         // box | points | box+points (with --prompts-from)
  int points_per_object = 3;
  std::string skip = "255";                // label values that are no object; "none"
  uint64_t seed = 0;
  bool multimask = false;
  // --everything: SamAutomaticMaskGenerator's grid of point prompts, no prompt given.
  bool everything = false;
  int points_per_side = 32, points_per_batch = 64;
  std::optional<double> pred_iou_thresh;   // default: the generator's, 0.88 (SAM) or 0.8 (SAM 2)
  double stability_thresh = 0.95, nms_thresh = 0.7;
  int crop_layers = 0, crop_points_downscale = 1;
  double crop_nms_thresh = 0.7, crop_overlap = 512.0 / 1500.0;
  int64_t min_region_area = 0;
  bool m2m = false;                        // SAM 2: SAM2AutomaticMaskGenerator's use_m2m
  std::optional<int> fill;                 // default: 0 with --point/--box, 255 with --prompts-from
  std::string enhance = "auto";            // auto | on | off
  std::string robust = "auto";             // RobustSAM's robust path: auto | on | off
  std::string hq = "auto";                 // HQ-SAM's HQ token: auto | on | off
  bool hq_token_only = false;
  std::string device = "cpu", dtype = "fp32";
  int threads = 0;
  std::vector<std::string> inputs;
  std::string manifest;
  std::string output, output_dir;  // -o FILE | -, -O DIR
  bool json = false, quiet = false, resume = false;
  int jobs = 1;
  Shard shard;
};

int run_sam_tool(const SamJob& job);

}  // namespace rass::model
