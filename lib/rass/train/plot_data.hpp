// The data side of `rass-train plot` (plot.hpp), kept apart from the cairo
// drawing so it can be tested with hand values: reading a training log,
// moving-average smoothing, axis limits and ticks, and the mapping of values
// to pixels. Torch-free and cairo-free.
//
// Layout of a figure (width W, height H, n panels stacked top to bottom, each
// H / n pixels tall): panel i's plot area spans x from kPlotLeft to
// W - kPlotRight and y from i*H/n + kPlotTop to (i+1)*H/n - kPlotBottom (the
// margins hold the title, the tick labels and the legend).
// A value v is drawn at x = left + (v - lo) / (hi - lo) * (right - left) and
// y = bottom - (v - lo) / (hi - lo) * (bottom - top), with log10 of v, lo
// and hi on a log axis; lo and hi are the axis limits of nice_axis().
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace rass::train {

struct Series {
  std::vector<double> x, y;  // step, value; y is NaN where the log has null (a gap in the curve)
};

struct TrainingLog {
  std::string path;
  std::vector<std::string> terms;       // numeric keys other than "step", in order of first appearance
  std::vector<std::string> flags;       // boolean keys (e.g. "skipped"), 0/1 series; drawn only when asked for
  std::map<std::string, Series> series;  // per term and flag
  size_t records = 0;
};

// Reads JSON lines (empty lines skipped): each an object with a numeric
// "step"; every other numeric value is a point of its term, null is a gap
// (a NaN point: the curve breaks there, as at fp16's skipped steps, whose
// grad_norm is null), a boolean a 0/1 point of a flag; other values
// (strings, arrays, objects) are not terms. Throws
// Error(bad_input) "<path>:<line>: <what>" for a line that is not a JSON
// object, lacks a numeric step or has a non-finite number, and "<path>: ..."
// for an unreadable or empty log.
TrainingLog read_training_log(const std::string& path);

// Trailing moving average over `window` points (the first points average
// what exists so far); window <= 1 returns y. A NaN (a gap) stays NaN and
// starts the average afresh after it: each stretch between gaps is smoothed
// on its own.
std::vector<double> moving_average(const std::vector<double>& y, int64_t window);

struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  std::vector<double> ticks;  // values inside [lo, hi]
};
// Limits rounded outwards to a multiple of a 1-2-5 tick step (about 5 ticks);
// min == max is widened by 10% of |min| (1 when 0) on each side first. On a
// log axis (min > 0 required) limits are powers of ten and ticks decades
// (with 2x and 5x when the axis spans at most two decades).
Axis nice_axis(double min, double max, bool log);
// The pixel of value v on an axis drawn from pixel p0 (at lo) to p1 (at hi).
double axis_to_pixel(const Axis& a, double v, double p0, double p1);

constexpr double kPlotLeft = 80, kPlotRight = 24, kPlotTop = 34, kPlotBottom = 46;
struct Box {
  double left, top, right, bottom;
};
Box panel_box(int panel, int panels, int width, int height);

}  // namespace rass::train
