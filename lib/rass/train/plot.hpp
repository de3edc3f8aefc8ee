// `rass-train plot LOG -o curves.png`: the loss curves of a training log
// (the JSON lines the loop writes: one object per logged step with "step",
// every loss term, "lr", "grad_norm", ...) drawn with cairo, one panel per
// term (or the terms named), x = step, optional moving-average smoothing.
// Torch-free.
#pragma once
#include <string>
#include <vector>

namespace rass::train {

struct PlotJob {
  std::vector<std::string> logs;   // one or more log.jsonl files (curves overlaid, labelled by file)
  std::string output;              // .png (or .svg / .pdf by extension); "-" for PNG on stdout
  std::vector<std::string> terms;  // keys to draw; empty: every numeric key except step
  int width = 1200, height = 0;    // height 0: from the panel count
  int64_t smooth = 0;              // moving-average window in logged points (0: none)
  bool log_y = false;
  bool quiet = false;
};

// Throws rass::Error: bad_input naming the log file and line for malformed
// lines or a log without the terms asked for; runtime for write failures.
// The output is written atomically.
void plot_training_log(const PlotJob& job);

}  // namespace rass::train
