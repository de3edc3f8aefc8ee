#include "rass/metrics/iqa_run.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/parallel.hpp"
#include "rass/core/progress.hpp"
#include "rass/io/image_files.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/manifest.hpp"
#include "rass/metrics/niqe.hpp"
#include "rass/metrics/psnr_ssim.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace rass::metrics {

const std::vector<std::string>& iqa_metric_names() {
  static const std::vector<std::string> names = {"psnr", "psnry", "ssim", "ssimc", "psnr@basicsr", "ssim@basicsr", "niqe"};
  return names;
}

bool is_full_reference(const std::string& m) { return m != "niqe"; }

namespace {

struct Item {
  std::string name;  // key shown in the output (file stem or relative path)
  std::string pred, gt;
};

struct Result {
  std::vector<double> values;   // per metric
  std::vector<std::string> notes;
  std::string error;
};

// Images under a directory keyed by relative path without extension.
std::map<std::string, std::string> list_dir(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const std::string& p : list_files(dir, has_image_extension))
    out[fs::path(p).lexically_relative(dir).replace_extension().string()] = p;
  return out;
}

std::string fmt(double v, int prec) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

json num(double v) {
  if (std::isfinite(v)) return v;
  return fmt(v, 0);  // "inf", "-inf", "nan": JSON has no literal for them
}

Image load(const std::string& path) {
  Image img = read_image(path);
  if (img.depth != 8)
    throw_bad_input(path, "is a 16-bit image; the PSNR/SSIM/NIQE conventions are defined on 8-bit data: convert it first");
  return drop_alpha(std::move(img));  // as PIL's convert('RGB') in pyiqa
}

}  // namespace

int run_eval_iqa(const IqaJob& job) {
  if (job.metrics.empty()) throw_usage("--metrics is empty");
  bool fr = false;
  for (const auto& m : job.metrics) {
    if (std::find(iqa_metric_names().begin(), iqa_metric_names().end(), m) == iqa_metric_names().end())
      throw_usage("unknown metric '" + m + "' (known: psnr, psnry, ssim, ssimc, psnr@basicsr, ssim@basicsr, niqe)");
    fr = fr || is_full_reference(m);
  }
  const bool want_niqe = std::find(job.metrics.begin(), job.metrics.end(), "niqe") != job.metrics.end();
  NiqeParams params;
  if (want_niqe) {
    if (job.niqe_params.empty())
      throw_usage("niqe needs the pristine model: --niqe-params FILE.npz (or RASS_NIQE_PARAMS); see the README");
    params = load_niqe_params(job.niqe_params);
  }

  // Pair up the inputs.
  std::vector<Item> items;
  std::vector<std::string> unpaired;
  if (!job.manifest.empty()) {
    for (const ManifestRow& row : read_manifest(job.manifest)) {
      auto field = [&](const char* a, const char* b) {
        if (row.fields.count(a)) return row.fields.at(a);
        if (row.fields.count(b)) return row.fields.at(b);
        return std::string();
      };
      Item it;
      it.pred = !row.columns.empty() ? row.columns[0] : field("pred", "lq");
      it.gt = row.columns.size() > 1 ? row.columns[1] : field("gt", "hq");
      if (it.pred.empty() || (fr && it.gt.empty()))
        throw_bad_input(job.manifest, "line " + std::to_string(row.line) + ": needs pred and gt (or lq and hq) paths");
      it.pred = resolve_manifest_path(job.manifest, it.pred);
      if (!it.gt.empty()) it.gt = resolve_manifest_path(job.manifest, it.gt);
      it.name = row.fields.count("key") ? row.fields.at("key") : path_stem(it.pred);
      items.push_back(it);
    }
  } else if (fr) {
    if (job.inputs.size() != 2)
      throw_usage("full-reference metrics need PRED and GT (two directories or two files), or --manifest");
    std::error_code ec;
    const bool d1 = fs::is_directory(job.inputs[0], ec), d2 = fs::is_directory(job.inputs[1], ec);
    if (d1 != d2) throw_usage("PRED and GT must both be directories or both files");
    if (d1) {
      auto pred = list_dir(job.inputs[0]), gt = list_dir(job.inputs[1]);
      for (auto& [k, p] : pred) {
        auto g = gt.find(k);
        if (g == gt.end()) unpaired.push_back(p + ": no ground truth with the same name in " + job.inputs[1]);
        else items.push_back({k, p, g->second});
      }
      for (auto& [k, g] : gt)
        if (!pred.count(k)) unpaired.push_back(g + ": no prediction with the same name in " + job.inputs[0]);
    } else {
      items.push_back({path_stem(job.inputs[0]), job.inputs[0], job.inputs[1]});
    }
  } else {
    if (job.inputs.empty()) throw_usage("no input images");
    for (const auto& in : job.inputs) {
      std::error_code ec;
      if (fs::is_directory(in, ec))
        for (auto& [k, p] : list_dir(in)) items.push_back({k, p, ""});
      else
        items.push_back({in == "-" ? "stdin" : path_stem(in), in, ""});
    }
  }

  std::vector<Result> results(items.size());
  std::mutex log_mu;
  auto report = [&](const std::string& msg) {
    std::lock_guard<std::mutex> lock(log_mu);
    std::fprintf(stderr, "rass-eval-iqa: %s\n", msg.c_str());
  };
  for (const auto& u : unpaired) report(u);

  Progress progress(items.size(), "rass-eval-iqa", job.quiet);
  parallel_for(items.size(), worker_count(job.jobs, items.size()), [&](size_t i, int) {
      const Item& it = items[i];
      Result& r = results[i];
      std::string current = it.pred;
      try {
        Image a = load(it.pred);
        Image b;
        if (fr) {
          current = it.gt;
          b = load(it.gt);
          current = it.pred + " vs " + it.gt;
        }
        for (const auto& m : job.metrics) {
          double v = 0;
          if (m == "psnr") v = psnr_pyiqa(a, b, false, job.crop_border);
          else if (m == "psnry") v = psnr_pyiqa(a, b, true, job.crop_border);
          else if (m == "ssim") v = ssim_pyiqa(a, b, true, job.crop_border);
          else if (m == "ssimc") v = ssim_pyiqa(a, b, false, job.crop_border);
          else if (m == "psnr@basicsr") v = psnr_basicsr(a, b, job.crop_border, job.y_channel);
          else if (m == "ssim@basicsr") v = ssim_basicsr(a, b, job.crop_border, job.y_channel);
          else {
            current = it.pred;
            NiqeResult n = niqe(a, params, job.crop_border);
            v = n.value;
            if (!n.reason.empty()) r.notes.push_back("niqe: " + n.reason);
          }
          r.values.push_back(v);
        }
      } catch (const Error& e) {
        // Messages from the codecs already start with the file name.
        const std::string what = e.what();
        r.error = what.rfind(it.pred, 0) == 0 || (!it.gt.empty() && what.rfind(it.gt, 0) == 0) ? what : current + ": " + what;
        report(r.error);
      } catch (const std::exception& e) {  // e.g. bad_alloc or an OpenCV exception: a bad image, not a dead run
        r.error = current + ": " + e.what();
        report(r.error);
      }
      progress.tick();
  });
  progress.finish();

  // Means: NaN values (NIQE of flat images) are left out and counted; inf stays inf.
  const size_t nm = job.metrics.size();
  std::vector<double> sum(nm, 0);
  std::vector<size_t> count(nm, 0), nan_count(nm, 0);
  size_t bad = unpaired.size(), ok = 0;
  for (const Result& r : results) {
    if (!r.error.empty()) {
      ++bad;
      continue;
    }
    ++ok;
    for (size_t m = 0; m < nm; ++m) {
      if (std::isnan(r.values[m])) ++nan_count[m];
      else sum[m] += r.values[m], ++count[m];
    }
  }
  std::vector<double> mean(nm);
  for (size_t m = 0; m < nm; ++m) mean[m] = count[m] ? sum[m] / count[m] : std::nan("");

  const char* conventions[] = {"psnr: pyiqa, RGB in [0,1], 10 log10(1/(mse+1e-8))",
                               "psnry: pyiqa, Y = 0.299R+0.587G+0.114B (full range), data range 1",
                               "ssim: pyiqa, on round(255 Y) of YIQ, ReLU on contrast-structure",
                               "ssimc: pyiqa, on RGB x 255, ReLU on contrast-structure",
                               "psnr@basicsr: BasicSR, [0,255] float64, 255^2/mse, inf when equal",
                               "ssim@basicsr: BasicSR, 11x11 Gaussian sigma 1.5, valid region, mean over channels",
                               "niqe: MATLAB/BasicSR, rounded limited-range Y, 96x96 blocks"};
  if (job.json) {
    json out;
    out["metrics"] = job.metrics;
    json conv = json::object();
    for (const auto& m : job.metrics)
      for (size_t k = 0; k < iqa_metric_names().size(); ++k)
        if (iqa_metric_names()[k] == m) conv[m] = conventions[k];
    out["conventions"] = conv;
    out["crop_border"] = job.crop_border;
    out["y_channel"] = job.y_channel;
    out["images"] = json::array();
    for (size_t i = 0; i < items.size(); ++i) {
      json row;
      row["name"] = items[i].name;
      row["pred"] = items[i].pred;
      if (fr) row["gt"] = items[i].gt;
      if (!results[i].error.empty()) row["error"] = results[i].error;
      else
        for (size_t m = 0; m < nm; ++m) row[job.metrics[m]] = num(results[i].values[m]);
      if (!results[i].notes.empty()) row["notes"] = results[i].notes;
      out["images"].push_back(row);
    }
    json mj;
    for (size_t m = 0; m < nm; ++m) mj[job.metrics[m]] = num(mean[m]);
    out["mean"] = mj;
    out["count"] = ok;
    out["failed"] = bad;
    std::printf("%s\n", out.dump(2).c_str());
  }
  if (!job.csv.empty()) {
    std::ostringstream c;
    c << "name";
    for (const auto& m : job.metrics) c << "," << m;
    c << "\n";
    for (size_t i = 0; i < items.size(); ++i) {
      if (!results[i].error.empty()) continue;
      c << '"' << items[i].name << '"';
      for (double v : results[i].values) c << "," << fmt(v, 10);
      c << "\n";
    }
    c << "mean";
    for (double v : mean) c << "," << fmt(v, 10);
    c << "\n";
    if (job.csv == "-") std::fputs(c.str().c_str(), stdout);
    else write_file_atomic(job.csv, c.str());
  }
  if (!job.json && job.csv != "-" && !job.no_table) {
    size_t w = 4;
    for (const auto& it : items) w = std::max(w, it.name.size());
    std::printf("%-*s", int(w), "name");
    for (const auto& m : job.metrics) std::printf("  %12s", m.c_str());
    std::printf("\n");
    for (size_t i = 0; i < items.size(); ++i) {
      if (!results[i].error.empty()) continue;
      std::printf("%-*s", int(w), items[i].name.c_str());
      for (size_t m = 0; m < nm; ++m) std::printf("  %12s", fmt(results[i].values[m], 4).c_str());
      std::printf("\n");
    }
    std::printf("%-*s", int(w), "mean");
    for (double v : mean) std::printf("  %12s", fmt(v, 4).c_str());
    std::printf("\n");
  }
  if (!job.quiet) {
    for (size_t m = 0; m < nm; ++m)
      if (nan_count[m]) std::fprintf(stderr, "rass-eval-iqa: %s is NaN for %zu image(s), left out of the mean (see --json notes)\n", job.metrics[m].c_str(), nan_count[m]);
    if (bad) std::fprintf(stderr, "rass-eval-iqa: %zu of %zu input(s) failed\n", bad, items.size() + unpaired.size());
  }
  return bad ? int(ExitCode::bad_input) : 0;
}

}  // namespace rass::metrics
