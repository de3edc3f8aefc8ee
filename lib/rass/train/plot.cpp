// rass-train plot: cairo drawing of the curves read by plot_data.hpp.
#include "rass/train/plot.hpp"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <set>

#include "rass/batch/output_guard.hpp"
#include "rass/batch/report.hpp"
#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/train/plot_data.hpp"

namespace rass::train {

namespace {

// Matplotlib's tab10: distinct, readable on white.
const double kColors[10][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},  {148, 103, 189},
                               {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
void set_color(cairo_t* cr, size_t i, double alpha = 1) {
  const double* c = kColors[i % 10];
  cairo_set_source_rgba(cr, c[0] / 255, c[1] / 255, c[2] / 255, alpha);
}

std::string tick_label(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

void text_at(cairo_t* cr, const std::string& s, double x, double y, double ax, double ay) {
  // (ax, ay): which point of the text's box sits at (x, y): 0 left/top, 0.5 centre, 1 right/bottom.
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  cairo_move_to(cr, x - e.x_advance * ax, y + e.height * (1 - ay));
  cairo_show_text(cr, s.c_str());
}

enum class Format { png, svg, pdf };

Format output_format(const std::string& out) {
  if (names_descriptor(out)) return Format::png;  // stdout, `-o >(...)`: no extension, PNG
  const std::string ext = path_extension_lower(out);
  if (ext == ".png") return Format::png;
  if (ext == ".svg") return Format::svg;
  if (ext == ".pdf") return Format::pdf;
  throw_usage("-o " + out + ": the plot is written as .png, .svg or .pdf (by extension)");
}

cairo_status_t collect(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

// A label for each log: its file name, or the whole path when two share a name.
std::vector<std::string> log_labels(const std::vector<TrainingLog>& logs) {
  std::vector<std::string> names;
  std::set<std::string> seen;
  bool clash = false;
  for (const TrainingLog& l : logs) {
    const size_t slash = l.path.find_last_of('/');
    names.push_back(slash == std::string::npos ? l.path : l.path.substr(slash + 1));
    clash = clash || !seen.insert(names.back()).second;
  }
  if (clash)
    for (size_t i = 0; i < logs.size(); ++i) names[i] = logs[i].path;
  // The same log given twice: numbered, so the legend tells the curves apart.
  std::map<std::string, int> count;
  for (std::string& n : names)
    if (++count[n] > 1) n += " (" + std::to_string(count[n]) + ")";
  return names;
}

void draw_panel(cairo_t* cr, const PlotJob& job, const std::vector<TrainingLog>& logs,
                const std::vector<std::string>& labels, const std::string& term, int panel, int panels, int width,
                int height) {
  const Box b = panel_box(panel, panels, width, height);
  // The curves (smoothed when asked) and their ranges.
  struct Curve {
    size_t log;
    std::vector<double> x, raw, y;
  };
  std::vector<Curve> curves;
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  for (size_t l = 0; l < logs.size(); ++l) {
    const auto it = logs[l].series.find(term);
    if (it == logs[l].series.end() || it->second.x.empty()) continue;
    Curve c{l, it->second.x, it->second.y, {}};
    bool any = false;
    for (double& v : c.raw) {
      if (job.log_y && !(v > 0)) v = std::numeric_limits<double>::quiet_NaN();  // a log axis cannot show <= 0: a gap
      any = any || !std::isnan(v);
    }
    if (!any) continue;
    c.y = moving_average(c.raw, job.smooth);
    for (size_t i = 0; i < c.x.size(); ++i) {
      if (std::isnan(c.raw[i])) continue;
      xmin = std::min(xmin, c.x[i]), xmax = std::max(xmax, c.x[i]);
      for (double v : {c.y[i], c.raw[i]}) ymin = std::min(ymin, v), ymax = std::max(ymax, v);
    }
    curves.push_back(std::move(c));
  }
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_font_size(cr, 14);
  text_at(cr, term + (job.smooth > 1 ? " (moving average of " + std::to_string(job.smooth) + ")" : ""),
          (b.left + b.right) / 2, b.top - 10, 0.5, 1);
  if (curves.empty()) {
    cairo_set_font_size(cr, 12);
    text_at(cr, job.log_y ? "no positive values (log scale)" : "no values", (b.left + b.right) / 2,
            (b.top + b.bottom) / 2, 0.5, 0.5);
    return;
  }
  const Axis ax = nice_axis(xmin, xmax, false), ay = nice_axis(ymin, ymax, job.log_y);
  // Grid, frame, ticks and tick labels.
  cairo_set_line_width(cr, 1);
  cairo_set_font_size(cr, 11);
  for (double t : ax.ticks) {
    const double px = std::round(axis_to_pixel(ax, t, b.left, b.right)) + 0.5;
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    cairo_move_to(cr, px, b.top);
    cairo_line_to(cr, px, b.bottom);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_move_to(cr, px, b.bottom);
    cairo_line_to(cr, px, b.bottom + 5);
    cairo_stroke(cr);
    text_at(cr, tick_label(t), px, b.bottom + 8, 0.5, 0);
  }
  for (double t : ay.ticks) {
    const double py = std::round(axis_to_pixel(ay, t, b.bottom, b.top)) + 0.5;
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    cairo_move_to(cr, b.left, py);
    cairo_line_to(cr, b.right, py);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_move_to(cr, b.left - 5, py);
    cairo_line_to(cr, b.left, py);
    cairo_stroke(cr);
    text_at(cr, tick_label(t), b.left - 8, py, 1, 0.5);
  }
  text_at(cr, "step", (b.left + b.right) / 2, b.bottom + 24, 0.5, 0);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_rectangle(cr, b.left + 0.5, b.top + 0.5, b.right - b.left - 1, b.bottom - b.top - 1);
  cairo_stroke(cr);
  // The curves, clipped to the plot area: the raw values faint under the smoothed ones.
  cairo_save(cr);
  cairo_rectangle(cr, b.left, b.top, b.right - b.left, b.bottom - b.top);
  cairo_clip(cr);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  for (const Curve& c : curves) {
    // One sub-path per stretch between gaps (NaN: a null in the log, e.g.
    // grad_norm at a skipped fp16 step), so no line bridges a gap. Within
    // a pixel column only the first, lowest, highest and last points are
    // kept, in their order (the stroke covers the same pixels): a log of a
    // million steps is a path of a few thousand points (cairo took minutes
    // to rasterise 460000).
    auto path = [&](const std::vector<double>& y) {
      size_t run = 0;  // points in the current stretch
      struct Pt {
        size_t i;
        double px, py;
      };
      std::vector<Pt> column;  // the current column's points (first, min, max, last kept)
      double column_x = std::numeric_limits<double>::quiet_NaN();
      auto emit = [&](double px, double py) {
        if (run++ == 0) cairo_move_to(cr, px, py);
        else cairo_line_to(cr, px, py);
      };
      auto flush_column = [&] {
        if (column.empty()) return;
        const auto [lo, hi] = std::minmax_element(column.begin(), column.end(),
                                                  [](const Pt& a, const Pt& b) { return a.py < b.py; });
        std::vector<Pt> keep{column.front(), *lo, *hi, column.back()};
        std::sort(keep.begin(), keep.end(), [](const Pt& a, const Pt& b) { return a.i < b.i; });
        for (size_t k = 0; k < keep.size(); ++k)
          if (k == 0 || keep[k].i != keep[k - 1].i) emit(keep[k].px, keep[k].py);
        column.clear();
      };
      auto end_run = [&] {
        flush_column();
        if (run == 1) {  // a point alone between gaps: a dot of about 5 pixels
          double px, py;
          cairo_get_current_point(cr, &px, &py);
          cairo_new_sub_path(cr);
          cairo_arc(cr, px, py, 1.5, 0, 2 * M_PI);
        }
        run = 0;
      };
      for (size_t i = 0; i < c.x.size(); ++i) {
        if (std::isnan(y[i])) {
          end_run();
          continue;
        }
        const double px = axis_to_pixel(ax, c.x[i], b.left, b.right), py = axis_to_pixel(ay, y[i], b.bottom, b.top);
        if (std::floor(px) != column_x) {
          flush_column();
          column_x = std::floor(px);
        }
        column.push_back({i, px, py});
      }
      end_run();
    };
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    if (job.smooth > 1) {
      set_color(cr, c.log, 0.25);
      cairo_set_line_width(cr, 1);
      path(c.raw);
      cairo_stroke(cr);
    }
    set_color(cr, c.log);
    cairo_set_line_width(cr, 2);
    path(c.y);
    cairo_stroke(cr);
  }
  cairo_restore(cr);
  // Legend (several logs): a swatch and the log's name per curve, top right.
  if (logs.size() > 1) {
    cairo_set_font_size(cr, 11);
    double wmax = 0;
    for (const Curve& c : curves) {
      cairo_text_extents_t e;
      cairo_text_extents(cr, labels[c.log].c_str(), &e);
      wmax = std::max(wmax, e.x_advance);
    }
    const double lx = b.right - wmax - 40, ly = b.top + 8, row = 16;
    cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
    cairo_rectangle(cr, lx - 6, ly - 4, wmax + 40, row * curves.size() + 8);
    cairo_fill(cr);
    for (size_t k = 0; k < curves.size(); ++k) {
      set_color(cr, curves[k].log);
      cairo_set_line_width(cr, 2);
      cairo_move_to(cr, lx, ly + row * k + row / 2);
      cairo_line_to(cr, lx + 22, ly + row * k + row / 2);
      cairo_stroke(cr);
      cairo_set_source_rgb(cr, 0, 0, 0);
      text_at(cr, labels[curves[k].log], lx + 28, ly + row * k + row / 2, 0, 0.5);
    }
  }
}

}  // namespace

void plot_training_log(const PlotJob& job) {
  if (job.logs.empty()) throw_usage("no training log to plot");
  if (std::count(job.logs.begin(), job.logs.end(), std::string("-")) > 1)
    throw_usage("- (standard input) is given more than once: stdin holds one log");
  if (job.output.empty()) throw_usage("no output: pass -o FILE.png (or .svg, .pdf, or - for PNG on stdout)");
  if (job.width < 200 || job.width > 20000) throw_usage("--width must be in 200..20000");
  if (job.height != 0 && (job.height < 100 || job.height > 20000)) throw_usage("--height must be 0 or in 100..20000");
  if (job.smooth < 0) throw_usage("--smooth must be >= 0");
  const Format fmt = output_format(job.output);
  batch::OutputGuard guard;  // never over a log, however its path is spelled
  for (const std::string& l : job.logs) guard.add_input(l);
  guard.check_output_file(job.output, "-o");

  std::vector<TrainingLog> logs;
  for (const std::string& p : job.logs) logs.push_back(read_training_log(p));
  // The terms: those asked for (each must be in some log), else every term in order of appearance.
  std::vector<std::string> terms;
  for (const std::string& t : job.terms)  // --terms loss,loss: one panel
    if (std::find(terms.begin(), terms.end(), t) == terms.end()) terms.push_back(t);
  if (terms.empty()) {
    for (const TrainingLog& l : logs)
      for (const std::string& t : l.terms)
        if (std::find(terms.begin(), terms.end(), t) == terms.end()) terms.push_back(t);
    if (terms.empty()) throw_bad_input(job.logs[0], "has no numeric terms besides \"step\"");
  } else {
    for (const std::string& t : terms) {
      bool found = false;
      for (const TrainingLog& l : logs) found = found || l.series.count(t);
      if (!found) {
        std::string have;
        for (const TrainingLog& l : logs) {
          for (const std::string& h : l.terms) have += (have.empty() ? "" : ", ") + h;
          for (const std::string& h : l.flags) have += (have.empty() ? "" : ", ") + h + " (0/1)";
        }
        throw_bad_input(job.logs.size() == 1 ? job.logs[0] : "the logs",
                        "no term \"" + t + "\" (the log has: " + (have.empty() ? "none" : have) + ")");
      }
    }
  }
  const int panels = int(terms.size());
  // The automatic height stays within --height's own bound (16384; a log of
  // 300 terms asked cairo for a 90000-pixel image and failed).
  const int width = job.width, height = job.height > 0 ? job.height : std::min(300 * panels, 16384);
  if (height / panels < int(kPlotTop + kPlotBottom + 40))
    throw_usage((job.height > 0 ? "--height " + std::to_string(height) : "the largest height, " + std::to_string(height) + ",") +
                " leaves too little room for " + std::to_string(panels) + " panels (pick fewer terms with --terms" +
                (job.height > 0 ? " or a larger height)" : ")"));

  std::string bytes;
  cairo_surface_t* surface =
      fmt == Format::png ? cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height)
      : fmt == Format::svg ? cairo_svg_surface_create_for_stream(collect, &bytes, width, height)
                           : cairo_pdf_surface_create_for_stream(collect, &bytes, width, height);
  std::unique_ptr<cairo_surface_t, void (*)(cairo_surface_t*)> hold(surface, cairo_surface_destroy);
  if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS)
    throw_runtime(std::string("cairo: cannot create the surface: ") + cairo_status_to_string(cairo_surface_status(surface)));
  cairo_t* cr = cairo_create(surface);
  std::unique_ptr<cairo_t, void (*)(cairo_t*)> hold_cr(cr, cairo_destroy);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  const std::vector<std::string> labels = log_labels(logs);
  for (int p = 0; p < panels; ++p) draw_panel(cr, job, logs, labels, terms[size_t(p)], p, panels, width, height);
  if (cairo_status(cr) != CAIRO_STATUS_SUCCESS)
    throw_runtime(std::string("cairo: drawing failed: ") + cairo_status_to_string(cairo_status(cr)));
  hold_cr.reset();
  if (fmt == Format::png) {
    const cairo_status_t st = cairo_surface_write_to_png_stream(surface, collect, &bytes);
    if (st != CAIRO_STATUS_SUCCESS) throw_runtime(std::string("cairo: PNG encoding failed: ") + cairo_status_to_string(st));
  } else {
    cairo_surface_finish(surface);  // flushes the SVG/PDF stream into `bytes`
    if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS)
      throw_runtime(std::string("cairo: ") + cairo_status_to_string(cairo_surface_status(surface)));
  }
  // Whole or nothing: a temporary file renamed into place (stdout: one checked write).
  batch::write_report(job.output, bytes);
  if (!job.quiet && job.output != "-")
    std::fprintf(stderr, "rass-train plot: %d panel(s), %zu log(s) -> %s\n", panels, logs.size(), printable_message(job.output).c_str());
}

}  // namespace rass::train
