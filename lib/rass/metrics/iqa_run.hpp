// rass-eval-iqa as a library call: full-reference metrics on pairs (two
// directories matched by file stem, a manifest, or two files) and
// no-reference metrics on single images, per image and averaged, streamed
// over worker threads (each image is decoded, measured and dropped).
#pragma once
#include <string>
#include <vector>

namespace rass::metrics {

// Metric names: psnr, psnry, ssim, ssimc (pyiqa convention); psnr@basicsr,
// ssim@basicsr (BasicSR convention, --y-channel / --crop-border); niqe (MATLAB/BasicSR).
const std::vector<std::string>& iqa_metric_names();
bool is_full_reference(const std::string& metric);

struct IqaJob {
  std::vector<std::string> metrics;
  std::vector<std::string> inputs;  // FR: PRED GT (dirs or files); NR: files/dirs
  std::string manifest;             // rows with pred/gt (or lq/hq) fields, or TSV columns pred<TAB>gt
  int crop_border = 0;              // all metrics
  bool y_channel = false;           // BasicSR metrics: limited-range Y
  std::string niqe_params;          // .npz with the pristine model
  int jobs = 0;
  bool quiet = false;
  bool json = false;
  std::string csv;     // write per-image CSV here ("-" = stdout)
  bool no_table = false;
};

// Returns 0, or 3 when some images were bad (the rest are still measured).
int run_eval_iqa(const IqaJob& job);

}  // namespace rass::metrics
