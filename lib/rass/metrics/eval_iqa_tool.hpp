// rass-eval-iqa as a library call: full-reference metrics on pairs (two
// directories matched by item key, a manifest, or two files) and
// no-reference metrics on single images, per image and averaged, streamed
// over worker threads (each image is decoded, measured and dropped). Inputs
// and the per-item error policy are the batch layer's (lib/rass/batch).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rass::metrics {

struct IqaJob {
  std::vector<std::string> metrics;  // names from iqa_metrics.hpp or deep_iqa.hpp's registry
  std::vector<std::string> inputs;   // FR: PRED GT (dirs or files); NR: files/dirs/"-"
  std::string manifest;              // rows with pred/gt (or lq/hq) fields, or TSV columns pred<TAB>gt
  bool match_stem = false;           // pair directories by file name instead of relative path
  int crop_border = 0;               // all metrics
  bool y_channel = false;            // BasicSR metrics: limited-range Y
  std::string niqe_params;           // .npz with the pristine model
  // Deep (network) metrics: their weight files' folder, device, intra-op
  // threads (0 = cores / workers), images per network call (same-size images
  // among `batch` consecutive items), seed of keyed randomness.
  std::string weights_dir;
  std::string device = "cpu";
  int threads = 0;
  int batch = 1;
  uint64_t seed = 0;
  // The deep-metric flags given on the command line (--weights, --device,
  // --threads, --batch, --seed): with no deep metric asked they do nothing,
  // which is said once on stderr.
  std::vector<std::string> deep_flags_given;
  // --niqe-params given on the command line (not through RASS_NIQE_PARAMS):
  // with no niqe asked it does nothing, which is said like the above, and so
  // is --y-channel with no BasicSR metric (psnr@basicsr, ssim@basicsr).
  bool niqe_params_given = false;
  int jobs = 0;
  bool quiet = false;
  bool json = false;
  std::string csv;  // write per-image CSV here ("-" = stdout)
  bool no_table = false;
};

// Returns 0; 3 when some inputs were bad (the rest are still measured); 1
// when an item failed at runtime. Usage errors throw Error(usage); a report
// that cannot be written throws Error(runtime).
int run_eval_iqa(const IqaJob& job);

}  // namespace rass::metrics
