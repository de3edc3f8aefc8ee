#include "rass/metrics/eval_iqa_tool.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <thread>

#include "rass/batch/inputs.hpp"
#include "rass/batch/output_guard.hpp"
#include "rass/batch/report.hpp"
#include "rass/batch/run.hpp"
#include "rass/core/error.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/parallel.hpp"
#include "rass/io/image_io.hpp"
#include "rass/metrics/color.hpp"
#include "rass/metrics/deep_iqa.hpp"
#include "rass/metrics/iqa_metrics.hpp"
#include "rass/metrics/iqa_report.hpp"

namespace rass::metrics {

namespace {

constexpr char kProg[] = "rass-eval-iqa";

Image load(const std::string& path) {
  Image img = read_image(path);
  if (img.depth != 8)
    throw_bad_input(path == "-" ? "<stdin>" : path,
                    "is a 16-bit image; the PSNR/SSIM/NIQE conventions are defined on 8-bit data: convert it first");
  return drop_alpha(std::move(img));  // as PIL's convert('RGB') in pyiqa
}

// One requested metric: a classical one (iqa_metrics.hpp) or a deep one
// (deep_iqa.hpp's registry, empty in a build without LibTorch).
struct Metric {
  const IqaMetric* classical = nullptr;
  const DeepIqaMetric* deep = nullptr;
  std::string name() const { return classical ? classical->name : deep->name; }
  bool full_reference() const { return classical ? classical->full_reference : deep->full_reference; }
};

std::string known_metrics() {
  std::string s = iqa_metric_list();
  for (const DeepIqaMetric& d : deep_iqa_metrics()) s += ", " + d.name;
  return s;
}

std::vector<Metric> resolve_metrics(const std::vector<std::string>& names) {
  if (names.empty()) throw_usage("--metrics is empty");
  std::vector<Metric> out;
  for (const std::string& n : names) {
    Metric m;
    m.classical = find_iqa_metric(n);
    if (!m.classical) m.deep = find_deep_iqa_metric(n);
    if (!m.classical && !m.deep) {
      std::string msg = "unknown metric '" + n + "' (known: " + known_metrics() + ")";
      if (deep_iqa_metrics().empty())
        msg += "; the deep metrics (lpips, dists, musiq, maniqa, clipiqa) need the network layer, which this build "
               "does not have (built without LibTorch)";
      throw_usage(msg);
    }
    for (const Metric& seen : out)
      if (seen.name() == m.name()) throw_usage("metric '" + n + "' is named twice in --metrics");
    out.push_back(m);
  }
  return out;
}

// `img` without `border` pixels on each side (the deep metrics' --crop-border;
// the classical ones crop internally).
Image crop_border(const Image& img, int border) {
  check_crop(img.width, img.height, border);
  Image out(img.width - 2 * border, img.height - 2 * border, img.channels, img.depth);
  const size_t px = size_t(img.channels) * (img.depth / 8), row = size_t(out.width) * px;
  for (int y = 0; y < out.height; ++y)
    std::memcpy(out.data.data() + size_t(y) * row,
                img.data.data() + (size_t(y + border) * size_t(img.width) + size_t(border)) * px, row);
  return out;
}

std::string weights_path(const std::string& dir, const std::string& file) {
  return dir.empty() || dir.back() == '/' ? dir + file : dir + "/" + file;
}

batch::InputSpec input_spec(const IqaJob& job, bool fr) {
  batch::InputSpec spec;
  spec.roles = {{"prediction", {"pred", "lq"}, true, ""}};
  // Two folders (`restored/ gt/`) are pairs by key whatever the metrics:
  // no-reference ones score the first of each pair (the README's table
  // runs all metrics so). Listed as one set, the second folder's images
  // were scored too, and each key in both was a duplicate.
  std::error_code ec;
  const bool two_folders = job.inputs.size() == 2 && std::filesystem::is_directory(job.inputs[0], ec) &&
                           std::filesystem::is_directory(job.inputs[1], ec);
  if (fr || !job.manifest.empty() || two_folders) spec.roles.push_back({"ground truth", {"gt", "hq"}, fr, ""});
  spec.inputs = job.inputs;
  spec.manifest = job.manifest;
  spec.match_stem = job.match_stem;
  if (!fr && job.manifest.empty() && job.inputs.empty()) throw_usage("no input images");
  if (!fr && !job.manifest.empty() && !job.inputs.empty()) throw_usage("give images or --manifest, not both");
  return spec;
}

// Options that only some metrics read, given on the command line while -m asks
// for none of those metrics: they would change nothing without a word.
void warn_unused_options(const IqaJob& job, const std::vector<Metric>& metrics, bool any_deep, bool any_niqe) {
  std::string asked;
  for (const std::string& x : job.metrics) asked += (asked.empty() ? "" : ",") + x;
  asked = printable_message(asked);
  auto warn = [&](const std::string& flags, const char* whose) {
    std::fprintf(stderr, "rass-eval-iqa: warning: %s: %s, and -m %s asks for none; %s nothing\n", flags.c_str(), whose,
                 asked.c_str(), flags.find(',') == std::string::npos ? "it changes" : "they change");
  };
  if (!any_deep && !job.deep_flags_given.empty()) {
    std::string flags;
    for (const std::string& f : job.deep_flags_given) flags += (flags.empty() ? "" : ", ") + f;
    warn(flags, "options of the deep metrics");
  }
  bool any_basicsr = false;
  for (const Metric& m : metrics) any_basicsr = any_basicsr || m.name().find("@basicsr") != std::string::npos;
  if (job.y_channel && !any_basicsr) warn("--y-channel", "option of the BasicSR metrics (psnr@basicsr, ssim@basicsr)");
  if (job.niqe_params_given && !any_niqe) warn("--niqe-params", "option of niqe");
}

}  // namespace

int run_eval_iqa(const IqaJob& job) {
  const std::vector<Metric> metrics = resolve_metrics(job.metrics);
  bool fr = false, want_niqe = false, fr_deep = false;
  std::vector<size_t> deep;  // indices of the deep metrics in `metrics`
  for (size_t m = 0; m < metrics.size(); ++m) {
    fr = fr || metrics[m].full_reference();
    want_niqe = want_niqe || (metrics[m].classical && !metrics[m].full_reference());
    if (metrics[m].deep) deep.push_back(m), fr_deep = fr_deep || metrics[m].full_reference();
  }
  if (fr && job.manifest.empty() && job.inputs.size() != 2)
    throw_usage("full-reference metrics need PRED and GT (two directories or two files), or --manifest");
  batch::claim_stdout({{"--json", job.json}, {"--csv -", job.csv == "-"}});
  batch::claim_stdin(job.inputs, {{"--manifest -", job.manifest == "-"}, {"--niqe-params -", job.niqe_params == "-"}});
  if (!job.quiet) warn_unused_options(job, metrics, !deep.empty(), want_niqe);
  if (job.jobs < 0) throw_usage("--jobs must be >= 0");
  if (job.batch < 1) throw_usage("--batch must be >= 1");
  if (job.threads < 0) throw_usage("--threads must be >= 0");
  if (!deep.empty() && job.weights_dir.empty())
    throw_usage(metrics[deep[0]].name() + " needs its weights: --weights DIR (or RASS_IQA_WEIGHTS), a folder holding " +
                metrics[deep[0]].deep->weights_file + "; see the README for the converters");
  IqaSettings settings{job.crop_border, job.y_channel, nullptr};
  NiqeParams params;
  if (want_niqe) {
    if (job.niqe_params.empty())
      throw_usage("niqe needs the pristine model: --niqe-params FILE.npz (or RASS_NIQE_PARAMS); see the README");
    params = load_niqe_params(job.niqe_params);
    settings.niqe = &params;
  }

  const std::vector<batch::Item> items = batch::collect_items(input_spec(job, fr));
  batch::OutputGuard guard;
  for (const std::string& in : job.inputs) guard.add_input(in);
  guard.add_input(job.manifest);
  guard.add_input(job.niqe_params);
  for (size_t m : deep) guard.add_input(weights_path(job.weights_dir, metrics[m].deep->weights_file));
  // The weights folder's other files too (CLIPIQA's tokenizer folder, a
  // file hard-linked there): --csv onto vocab.json, or stdout appended to
  // merges.txt, wrote over them with exit 0.
  if (!deep.empty()) guard.add_folder_files(job.weights_dir);
  for (const batch::Item& it : items)
    for (const std::string& p : it.paths) guard.add_input(p);
  guard.check_output_file(job.csv, "--csv");
  if (!deep.empty() && !job.csv.empty() && job.csv != "-" &&
      batch::OutputGuard::path_within(batch::OutputGuard::normalised_path(job.csv),
                                      batch::OutputGuard::normalised_path(job.weights_dir)))
    throw_usage("--csv " + job.csv + " is inside the weights folder " + job.weights_dir +
                ": refusing to write into an input; choose a path outside it");

  // Networks are loaded once; every worker calls the same const scorers.
  const size_t group = deep.empty() ? 1 : size_t(job.batch);
  const int workers = group_workers(job.jobs, items.size(), group);
  DeepIqaOptions dopt;
  dopt.weights_dir = job.weights_dir;
  dopt.device = job.device;
  dopt.threads = job.threads > 0 ? job.threads : std::max(1, int(std::thread::hardware_concurrency()) / workers);
  dopt.seed = job.seed;
  std::vector<std::unique_ptr<DeepIqaScorer>> scorers(metrics.size());
  for (size_t m : deep) scorers[m] = metrics[m].deep->load(dopt);

  std::vector<IqaImageResult> results(items.size());
  batch::Reporter reporter(kProg);
  const batch::Tally tally = batch::run_item_groups(
      items, group, {job.jobs, job.quiet}, reporter,
      [&](const std::vector<size_t>& idx, int, std::vector<std::exception_ptr>& errors) {
        const size_t n = idx.size();
        std::vector<Image> pred(n), gt(n);
        std::vector<std::vector<IqaValue>> values(n, std::vector<IqaValue>(metrics.size()));
        // Decoding and the classical metrics, item by item.
        for (size_t k = 0; k < n; ++k) {
          const batch::Item& it = items[idx[k]];
          try {
            pred[k] = load(it.paths[0]);
            if (fr) gt[k] = load(it.paths[1]);
            if (fr_deep && (pred[k].width != gt[k].width || pred[k].height != gt[k].height))
              throw_bad_input(it.paths[0], "is " + std::to_string(pred[k].width) + "x" + std::to_string(pred[k].height) +
                                               " but its ground truth " + it.paths[1] + " is " +
                                               std::to_string(gt[k].width) + "x" + std::to_string(gt[k].height));
            for (size_t m = 0; m < metrics.size(); ++m)
              if (metrics[m].classical) values[k][m] = metrics[m].classical->compute(pred[k], gt[k], settings);
            if (!deep.empty() && job.crop_border > 0) {
              pred[k] = crop_border(pred[k], job.crop_border);
              if (fr) gt[k] = crop_border(gt[k], job.crop_border);
            }
          } catch (...) {
            errors[k] = std::current_exception();
            pred[k] = gt[k] = Image();
          }
        }
        // The deep metrics, one network call per metric and image size. When
        // a batch fails its items are retried one by one, so the error is
        // charged to the image that caused it and the others keep their values.
        std::vector<bool> grouped(n, false);
        for (size_t k = 0; k < n && !deep.empty(); ++k) {
          if (errors[k] || grouped[k]) continue;
          std::vector<size_t> same;
          for (size_t k2 = k; k2 < n; ++k2)
            if (!errors[k2] && !grouped[k2] && pred[k2].width == pred[k].width && pred[k2].height == pred[k].height)
              same.push_back(k2), grouped[k2] = true;
          for (size_t m : deep) {
            auto score = [&](const std::vector<size_t>& ks) {
              std::vector<const Image*> p, g;
              std::vector<std::string> keys;
              for (size_t q : ks) {
                p.push_back(&pred[q]);
                if (metrics[m].full_reference()) g.push_back(&gt[q]);
                keys.push_back(items[idx[q]].key);
              }
              const std::vector<IqaValue> v = scorers[m]->score(p, g, keys);
              if (v.size() != ks.size()) throw_runtime(metrics[m].name() + ": the network returned a wrong count");
              // A network's NaN is no property of the image (NIQE's of a flat
              // image is): weights or settings that overflow. It failed
              // nothing and wrote null with exit 0.
              for (size_t j = 0; j < ks.size(); ++j)
                if (!std::isfinite(v[j].value))
                  throw_runtime(metrics[m].name() + ": the network gave a non-finite score (NaN or infinity): its "
                                "weights in " + job.weights_dir + " overflow (damaged weights?)");
              for (size_t j = 0; j < ks.size(); ++j) values[ks[j]][m] = v[j];
            };
            std::vector<size_t> live;
            for (size_t q : same)
              if (!errors[q]) live.push_back(q);
            if (live.empty()) break;
            try {
              score(live);
            } catch (...) {
              if (live.size() == 1) errors[live[0]] = std::current_exception();
              else
                for (size_t q : live) {
                  try {
                    score({q});
                  } catch (...) {
                    errors[q] = std::current_exception();
                  }
                }
            }
          }
        }
        for (size_t k = 0; k < n; ++k)
          if (!errors[k]) results[idx[k]].values = std::move(values[k]);
      },
      [&](size_t i, batch::Outcome o, const std::string& msg) {
        if (o != batch::Outcome::ok) results[i].error = msg;
      });

  std::vector<IqaColumn> columns;
  for (const Metric& m : metrics)
    columns.push_back({m.name(), m.classical ? std::string(m.classical->convention) : m.deep->convention});
  const IqaSummary s = summarize(columns, results);
  if (!job.csv.empty()) batch::write_report(job.csv, iqa_csv(s, items, results));
  if (job.json) batch::write_report("-", json_text(iqa_json(job, s, items, results, fr), 2) + "\n");
  else if (job.csv != "-" && !job.no_table) batch::write_report("-", iqa_table(s, items, results));
  if (!job.quiet) {
    for (size_t m = 0; m < metrics.size(); ++m)
      if (s.nan_count[m])
        std::fprintf(stderr, "%s: %s is NaN for %zu image(s), left out of the mean (see the --json reasons)\n", kProg,
                     columns[m].name.c_str(), s.nan_count[m]);
    // Bad input (exit 3) and failures (exit 1) said apart, as the other batch tools say them.
    if (s.failed)
      std::fprintf(stderr, "%s: %zu of %zu input(s) not scored: %zu bad, %zu failed\n", kProg, s.failed, items.size(),
                   tally.bad, tally.failed);
  }
  return tally.exit_code();
}

}  // namespace rass::metrics
