// rass-eval-iqa's deep-metric plumbing, torch-free: the refusal when no
// network layer registered any metric (a build without LibTorch), then the
// driver's batching with a test double registered as a deep metric: same-size
// images grouped among --batch consecutive items, a failing batch retried
// image by image so only the bad image fails, values and order independent
// of --batch and --jobs.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "../test_support.hpp"
#include "rass/core/error.hpp"
#include "rass/io/image_io.hpp"
#include "rass/metrics/deep_iqa.hpp"
#include "rass/metrics/eval_iqa_tool.hpp"

using namespace rass;
using namespace rass::metrics;
using rass::test::TempDir;

namespace {

std::mutex calls_mu;
std::vector<size_t> calls;  // batch sizes the double was called with

// Mean absolute byte difference; refuses images 33 pixels wide (bad input)
// and batches of more than 2 (a runtime failure, as running out of memory).
class MeanDiffScorer : public DeepIqaScorer {
 public:
  std::vector<IqaValue> score(const std::vector<const Image*>& pred, const std::vector<const Image*>& gt,
                              const std::vector<std::string>& keys) const override {
    {
      std::lock_guard<std::mutex> lock(calls_mu);
      calls.push_back(pred.size());
    }
    REQUIRE(gt.size() == pred.size());
    REQUIRE(keys.size() == pred.size());
    if (pred.size() > 2) throw Error(ExitCode::runtime, "batch too large");
    std::vector<IqaValue> out;
    for (size_t i = 0; i < pred.size(); ++i) {
      if (pred[i]->width == 33) throw Error(ExitCode::bad_input, "33 pixels wide");
      REQUIRE(pred[i]->width == pred[0]->width);
      out.push_back({mean_diff(*pred[i], *gt[i]), ""});
    }
    return out;
  }
  static double mean_diff(const Image& a, const Image& b) {
    double s = 0;
    for (size_t k = 0; k < a.data.size(); ++k) s += std::abs(int(a.data[k]) - int(b.data[k]));
    return s / double(a.data.size());
  }
};

Image pattern(int w, int h, int seed) {
  Image im(w, h, 3);
  for (size_t k = 0; k < im.data.size(); ++k) im.data[k] = uint8_t((k * 7 + size_t(seed) * 31 + k / 5) % 251);
  return im;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("eval-iqa deep metrics: no network layer, then batching with a registered double") {
  TempDir t;
  std::filesystem::create_directories(t / "pred");
  std::filesystem::create_directories(t / "gt");
  const int sizes[6][2] = {{40, 30}, {40, 30}, {33, 30}, {40, 30}, {50, 20}, {40, 30}};
  std::vector<double> want;
  for (int i = 0; i < 6; ++i) {
    const Image p = pattern(sizes[i][0], sizes[i][1], i), g = pattern(sizes[i][0], sizes[i][1], 100 + i);
    write_image(t / ("pred/k" + std::to_string(i) + ".png"), p);
    write_image(t / ("gt/k" + std::to_string(i) + ".png"), g);
    want.push_back(MeanDiffScorer::mean_diff(p, g));
  }
  IqaJob job;
  job.inputs = {t / "pred", t / "gt"};
  job.metrics = {"psnr", "meandiff"};
  job.quiet = true;
  job.no_table = true;
  job.weights_dir = t / "weights";  // (the reports below go beside it, not into it: it is an input)

  REQUIRE(deep_iqa_metrics().empty());  // this binary has no network layer
  try {
    run_eval_iqa(job);
    FAIL("an unregistered deep metric must be refused");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::usage);
    const std::string msg = e.what();
    CHECK(msg.find("unknown metric 'meandiff'") != std::string::npos);
    CHECK(msg.find("built without LibTorch") != std::string::npos);
    CHECK(msg.find("psnr") != std::string::npos);
  }

  register_deep_iqa_metric({"meandiff", true, "test double", "none.safetensors", false,
                            [](const DeepIqaOptions&) -> std::unique_ptr<DeepIqaScorer> {
                              return std::make_unique<MeanDiffScorer>();
                            }});
  job.batch = 4;
  job.jobs = 1;
  job.csv = t / "batched.csv";
  CHECK(run_eval_iqa(job) == 3);  // k2 is bad input, the rest measured
  std::sort(calls.begin(), calls.end());
  // Group k0-k3: the three 40x30 in one call (refused, too large), retried one
  // by one; k2 (33x30) alone, refused; group k4-k5: two sizes, one call each.
  CHECK(calls == std::vector<size_t>{1, 1, 1, 1, 1, 1, 3});
  const std::string csv = slurp(job.csv);
  for (int i = 0; i < 6; ++i) {
    const std::string key = "\nk" + std::to_string(i) + ",";
    const size_t at = csv.find(key);
    if (i == 2) {
      CHECK(at == std::string::npos);
      continue;
    }
    REQUIRE(at != std::string::npos);
    const std::string row = csv.substr(at + 1, csv.find('\n', at + 1) - at - 1);
    const double got = std::atof(row.substr(row.rfind(',') + 1).c_str());
    CHECK(got == doctest::Approx(want[size_t(i)]).epsilon(1e-9));
  }
  CHECK(csv.find("k0,") < csv.find("k1,"));
  CHECK(csv.find("k4,") < csv.find("k5,"));

  // One image at a time on two workers: the same report.
  job.batch = 1;
  job.jobs = 2;
  job.csv = t / "single.csv";
  CHECK(run_eval_iqa(job) == 3);
  CHECK(slurp(t / "single.csv") == csv);

  // --crop-border applies to the deep metrics too: the double sees the
  // images without 3 pixels on each side.
  job.crop_border = 3;
  job.csv = t / "crop.csv";
  CHECK(run_eval_iqa(job) == 0);  // k2 is now 27 pixels wide: accepted
  const std::string cropped = slurp(job.csv);
  const Image p0 = pattern(40, 30, 0), g0 = pattern(40, 30, 100);
  Image pc(34, 24, 3), gc(34, 24, 3);
  for (int y = 0; y < 24; ++y)
    for (int x = 0; x < 34 * 3; ++x) {
      pc.data[size_t(y) * 102 + size_t(x)] = p0.data[size_t(y + 3) * 120 + 9 + size_t(x)];
      gc.data[size_t(y) * 102 + size_t(x)] = g0.data[size_t(y + 3) * 120 + 9 + size_t(x)];
    }
  const size_t at = cropped.find("\nk0,");
  REQUIRE(at != std::string::npos);
  const std::string row = cropped.substr(at + 1, cropped.find('\n', at + 1) - at - 1);
  CHECK(std::atof(row.substr(row.rfind(',') + 1).c_str()) ==
        doctest::Approx(MeanDiffScorer::mean_diff(pc, gc)).epsilon(1e-9));
  CHECK(MeanDiffScorer::mean_diff(pc, gc) != doctest::Approx(want[0]).epsilon(1e-6));
}
