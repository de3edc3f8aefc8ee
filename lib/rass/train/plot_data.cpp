#include "rass/train/plot_data.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/file.hpp"

namespace rass::train {

TrainingLog read_training_log(const std::string& path) {
  std::vector<uint8_t> bytes;
  try {
    bytes = read_text_file_bytes(path);
  } catch (const Error& e) {
    throw_bad_input(path, std::string("cannot read the training log: ") + e.what());
  }
  TrainingLog log;
  log.path = path;
  // Per key, in order of first appearance: whether any value was a number,
  // any a boolean (a flag only if never a number).
  std::vector<std::string> keys;
  std::map<std::string, std::pair<bool, bool>> kinds;
  const std::string text(bytes.begin(), bytes.end());
  size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    nlohmann::ordered_json j;  // keeps the log's key order: panels in the order terms appear
    try {
      j = parse_json_bounded<nlohmann::ordered_json>(line);
    } catch (const std::exception& e) {
      throw_bad_input(where, std::string("not JSON (") + e.what() + "); a training log has one JSON object per line");
    }
    if (!j.is_object()) throw_bad_input(where, "expected a JSON object per line");
    const auto st = j.find("step");
    if (st == j.end() || !st->is_number()) throw_bad_input(where, "no numeric \"step\"");
    const double step = st->get<double>();
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "step") continue;
      if (!it->is_number() && !it->is_null() && !it->is_boolean()) continue;
      if (!kinds.count(it.key())) keys.push_back(it.key());
      auto& kind = kinds[it.key()];
      kind.first = kind.first || it->is_number();
      kind.second = kind.second || it->is_boolean();
      Series& s = log.series[it.key()];
      if (!std::isfinite(step)) throw_bad_input(where, "\"step\" is not a finite number");
      double v = std::numeric_limits<double>::quiet_NaN();  // null: a gap
      if (it->is_boolean()) v = it->get<bool>() ? 1 : 0;
      else if (it->is_number()) v = it->get<double>();
      if (!it->is_null() && !std::isfinite(v)) throw_bad_input(where, "\"" + it.key() + "\" is not a finite number");
      s.x.push_back(step);
      s.y.push_back(v);
    }
    ++log.records;
  }
  if (log.records == 0) throw_bad_input(path, "no log lines (expected JSON objects with \"step\" and loss terms)");
  for (const std::string& k : keys) {
    const auto [number, boolean] = kinds.at(k);
    (boolean && !number ? log.flags : log.terms).push_back(k);
  }
  return log;
}

std::vector<double> moving_average(const std::vector<double>& y, int64_t window) {
  if (window <= 1) return y;
  std::vector<double> out(y.size());
  double sum = 0;
  size_t start = 0;  // the first point of the stretch since the last gap
  for (size_t i = 0; i < y.size(); ++i) {
    if (std::isnan(y[i])) {
      out[i] = y[i];
      sum = 0;
      start = i + 1;
      continue;
    }
    sum += y[i];
    if (i - start >= size_t(window)) sum -= y[i - size_t(window)];
    out[i] = sum / double(std::min<size_t>(i - start + 1, size_t(window)));
  }
  return out;
}

namespace {

// The 1-2-5 step nearest above span / target.
double nice_step(double span, int target) {
  const double raw = span / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag * (1 + 1e-9)) return m * mag;
  return 10 * mag;
}

// A linear axis for values near the double range (|v| > 1e307): the span,
// the padding and the rounded limits pass it (an infinite step left the
// panel empty; an infinite limit made the tick loop endless), so they are
// worked out on halves and doubled, a limit past the range held at the
// largest double and ticks past it left out.
Axis huge_axis(double min, double max) {
  Axis a;
  double lo = min * 0.5, hi = max * 0.5;
  if (hi - lo <= std::abs(lo) * 1e-12) {
    const double pad = std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const double step = nice_step(hi - lo, 5);
  const double klo = std::floor(lo / step + 1e-9), khi = std::ceil(hi / step - 1e-9);  // at most a dozen apart
  auto doubled = [](double v) { return std::isfinite(2 * v) ? 2 * v : std::copysign(DBL_MAX, v); };
  a.lo = doubled(klo * step);
  a.hi = doubled(khi * step);
  for (double k = klo; k <= khi; ++k)
    if (std::isfinite(2 * k * step)) a.ticks.push_back(k == 0 ? 0.0 : 2 * k * step);
  return a;
}

}  // namespace

Axis nice_axis(double min, double max, bool log) {
  Axis a;
  a.log = log;
  if (log) {
    if (!(min > 0)) throw_runtime("a log axis needs positive values");
    // Decades whose powers of ten are normal doubles (10^-307..10^308: 10^-324
    // is 0 and 10^309 infinite, which left the panel empty); a value beyond
    // them is drawn past the edge, clipped.
    double lo = std::clamp(std::floor(std::log10(min) + 1e-9), -307.0, 307.0);
    double hi = std::clamp(std::ceil(std::log10(max) - 1e-9), -307.0, 308.0);
    if (hi <= lo) hi = lo + 1;
    a.lo = std::pow(10.0, lo);
    a.hi = std::pow(10.0, hi);
    // Decades (every k-th over many, at most about a dozen ticks); over one
    // or two decades also 2x and 5x, so the axis is readable.
    const double stride = std::max(1.0, std::ceil((hi - lo) / 12));
    for (double e = lo; e <= hi + 1e-9; e += stride)
      for (double m : {1.0, 2.0, 5.0})
        if ((m == 1 || hi - lo <= 2) && m * std::pow(10.0, e) <= a.hi * (1 + 1e-9)) a.ticks.push_back(m * std::pow(10.0, e));
    return a;
  }
  if (std::abs(min) > 1e307 || std::abs(max) > 1e307) return huge_axis(min, max);
  // Values this close together (or this near 0: a span under 1e-305, where
  // a 1-2-5 step leaves the normal doubles and underflowed to 0, leaving the
  // panel empty) are drawn as a constant.
  if (max - min <= std::abs(min) * 1e-12 || max == min || max - min < 1e-305) {
    double pad = std::max(std::abs(min), std::abs(max)) * 0.1;
    if (pad < 1e-305) pad = 1;
    const double mid = min * 0.5 + max * 0.5;
    min = mid - pad;
    max = mid + pad;
  }
  const double step = nice_step(max - min, 5);
  a.lo = std::floor(min / step + 1e-9) * step;
  a.hi = std::ceil(max / step - 1e-9) * step;
  for (int64_t k = int64_t(std::llround(a.lo / step)); k * step <= a.hi + step * 1e-9; ++k) {
    const double t = double(k) * step;
    a.ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  }
  return a;
}

double axis_to_pixel(const Axis& a, double v, double p0, double p1) {
  const double t = a.log ? (std::log10(v) - std::log10(a.lo)) / (std::log10(a.hi) - std::log10(a.lo))
                         : (v * 0.5 - a.lo * 0.5) / (a.hi * 0.5 - a.lo * 0.5);  // halves: no overflow near 1e308
  return p0 + t * (p1 - p0);
}

Box panel_box(int panel, int panels, int width, int height) {
  const double ph = double(height) / panels;
  return {kPlotLeft, panel * ph + kPlotTop, width - kPlotRight, (panel + 1) * ph - kPlotBottom};
}

}  // namespace rass::train
