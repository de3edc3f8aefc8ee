// rass-eval-miou as a library call on files: pairing of directories (stems,
// suffixes), manifests, bad pairs that must not stop the run, determinism
// across --jobs, per-image lines in input order, the .npy confusion matrix
// and the reports.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../test_support.hpp"
#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/rng.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/npy.hpp"
#include "label_maps.hpp"
#include "rass/metrics/eval_miou_tool.hpp"

using namespace rass;
using namespace rass::metrics;
namespace fs = std::filesystem;
using rass::test::TempDir;

namespace {

// Silences stdout (the reports) for the duration of a scope.
struct QuietStdout {
  int saved;
  QuietStdout() {
    std::fflush(stdout);
    saved = ::dup(1);
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::close(null);
  }
  ~QuietStdout() {
    std::fflush(stdout);
    ::dup2(saved, 1);
    ::close(saved);
  }
};

void write_labels(const std::string& path, int w, int h, const std::vector<int>& v, int depth = 8) {
  const Image img = rass::test::label_map(w, h, v, depth);
  fs::create_directories(fs::path(path).parent_path());
  write_image(path, img, ImageFormat::png);
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string l; std::getline(ss, l);) out.push_back(l);
  return out;
}

LabelLuts luts_for(int c) {
  LabelOptions o;
  o.num_classes = c;
  return make_luts(o);
}

// The hand-made pair of test_miou.cpp, split over two images: mIoU 19/36.
void write_case_a(const TempDir& t, const std::string& pred_dir, const std::string& gt_dir) {
  write_labels(t / (gt_dir + "/a.png"), 4, 1, {0, 0, 1, 1});
  write_labels(t / (pred_dir + "/a.png"), 4, 1, {0, 1, 1, 1});
  write_labels(t / (gt_dir + "/sub/b.png"), 4, 1, {2, 2, 255, 1}, 16);  // 16-bit GT, in a subdirectory
  write_labels(t / (pred_dir + "/b.png"), 4, 1, {2, 0, 2, 1});
}

}  // namespace

TEST_CASE("two directories: pairs by key, 8- and 16-bit PNG, the hand-made numbers") {
  TempDir t;
  write_case_a(t, "pred", "gt");
  MiouJob job;
  job.inputs = {t / "pred", t / "gt"};
  job.num_classes = 3;
  job.quiet = true;
  {
    // Keys are relative paths: gt/sub/b.png ("sub/b") has no partner in pred/b.png ("b").
    const auto by_path = collect_pairs(job);
    REQUIRE(by_path.size() == 3);
    CHECK(by_path[0].key == "a");
    CHECK(by_path[0].error.empty());
    CHECK(by_path[1].key == "b");
    CHECK(by_path[1].error.find("no ground truth with key 'b'") != std::string::npos);
    CHECK(by_path[2].key == "sub/b");
    CHECK(by_path[2].error.find("--match-stem") != std::string::npos);
  }
  job.match_stem = true;  // pair by file name: the layouts may differ
  const auto pairs = collect_pairs(job);
  REQUIRE(pairs.size() == 2);
  CHECK(pairs[0].key == "a");
  CHECK(pairs[1].key == "b");
  CHECK(pairs[1].paths[1] == t / "gt/sub/b.png");
  const MiouResult r = evaluate_pairs(job, pairs, luts_for(3), {"x", "y", "z"});
  CHECK(r.evaluated == 2);
  CHECK(r.failed == 0);
  CHECK(r.metrics.get("mIoU") * 100 == doctest::Approx(100.0 * 19 / 36));
  CHECK(r.metrics.get("aAcc") * 100 == doctest::Approx(100.0 * 5 / 7));
  const std::string table = result_table(job, r);
  CHECK(table.find("52.78") != std::string::npos);
  CHECK(table.find("71.43") != std::string::npos);
  CHECK(table.find("\nz ") != std::string::npos);
  const auto j = result_json(job, r);
  CHECK(j["summary"]["mIoU"].get<double>() == doctest::Approx(100.0 * 19 / 36).epsilon(1e-15));
  CHECK(j["per_class"][1]["name"] == "y");
  CHECK(j["per_class"][1]["union"] == 4);
  CHECK(j["pixels"]["ignored"] == 1);
  const std::string csv = result_csv(r);
  CHECK(csv.find("class,name,IoU,Acc,Dice,Fscore,Precision,Recall,intersect,union,pred_pixels,gt_pixels\n") == 0);
  CHECK(csv.find("\n1,y,75.0,100.0,") != std::string::npos);
}

TEST_CASE("bad pairs are reported and counted; the rest is evaluated") {
  TempDir t;
  write_case_a(t, "pred", "gt");
  write_labels(t / "gt/only_gt.png", 2, 1, {0, 1});      // no prediction
  write_labels(t / "pred/only_pred.png", 2, 1, {0, 1});  // no ground truth
  write_labels(t / "gt/size.png", 2, 2, {0, 1, 1, 0});
  write_labels(t / "pred/size.png", 2, 1, {0, 1});  // size mismatch
  write_labels(t / "gt/rgb.png", 2, 1, {0, 1});
  {
    Image rgb(2, 1, 3, 8);
    write_image(t / "pred/rgb.png", rgb, ImageFormat::png);  // not a label map
  }
  write_labels(t / "gt/cut.png", 2, 1, {0, 1});
  {
    std::ofstream(t / "pred/cut.png") << "\x89PNG\r\n";  // truncated
  }
  MiouJob job;
  job.inputs = {t / "pred", t / "gt"};
  job.num_classes = 3;
  job.quiet = true;
  job.match_stem = true;
  job.per_image = t / "per_image.jsonl";
  const auto pairs = collect_pairs(job);
  CHECK(pairs.size() == 7);
  const MiouResult r = evaluate_pairs(job, pairs, luts_for(3), {});
  CHECK(r.evaluated == 2);
  CHECK(r.failed == 5);
  CHECK(r.metrics.get("mIoU") * 100 == doctest::Approx(100.0 * 19 / 36));
  const auto lines = lines_of(slurp(job.per_image));
  REQUIRE(lines.size() == 7);
  // Input order is key order: a b cut only_gt only_pred rgb size.
  const std::vector<std::string> keys = {"a", "b", "cut", "only_gt", "only_pred", "rgb", "size"};
  for (size_t i = 0; i < keys.size(); ++i) {
    const auto j = nlohmann::json::parse(lines[i]);
    INFO(lines[i]);
    CHECK(j["key"] == keys[i]);
    CHECK(j.contains("error") == (i >= 2));
  }
  CHECK(lines[3].find("no prediction with key 'only_gt'") != std::string::npos);
  CHECK(lines[4].find("no ground truth with key 'only_pred'") != std::string::npos);
  CHECK(lines[5].find("3 channels") != std::string::npos);
  CHECK(lines[6].find("is 2x1 but its ground truth") != std::string::npos);
  CHECK(lines[2].find(t / "pred/cut.png") != std::string::npos);
  CHECK(!fs::exists(job.per_image + ".tmp." + std::to_string(::getpid())));
}

TEST_CASE("results and per-image lines do not depend on --jobs") {
  TempDir t;
  Rng rng(5);
  for (int i = 0; i < 24; ++i) {
    const int w = 31, h = 7 + i % 5;
    std::vector<int> g(w * h), p(w * h);
    for (int k = 0; k < w * h; ++k) {
      g[k] = rng.uniform() < 0.1 ? 255 : int(rng.below(9));
      p[k] = rng.uniform() < 0.5 ? (g[k] == 255 ? 0 : g[k]) : int(rng.below(9));
    }
    char name[32];
    std::snprintf(name, sizeof name, "%03d.png", i);
    write_labels(t / ("gt/" + std::string(name)), w, h, g);
    write_labels(t / ("pred/" + std::string(name)), w, h, p);
  }
  MiouJob job;
  job.inputs = {t / "pred", t / "gt"};
  job.num_classes = 9;
  job.quiet = true;
  const auto pairs = collect_pairs(job);
  job.jobs = 1;
  job.per_image = t / "j1.jsonl";
  const MiouResult r1 = evaluate_pairs(job, pairs, luts_for(9), {});
  job.jobs = 3;
  job.per_image = t / "j3.jsonl";
  const MiouResult r3 = evaluate_pairs(job, pairs, luts_for(9), {});
  CHECK(r1.evaluated == 24);
  const NpyArray a = r1.confusion.to_npy(), b = r3.confusion.to_npy();
  CHECK(a.data == b.data);
  CHECK(r1.metrics.get("mIoU") == r3.metrics.get("mIoU"));
  CHECK(slurp(t / "j1.jsonl") == slurp(t / "j3.jsonl"));
  CHECK(lines_of(slurp(t / "j1.jsonl")).size() == 24);
}

TEST_CASE("manifests (JSON lines and TSV, paths relative to the manifest) and suffixes") {
  TempDir t;
  write_case_a(t, "data/pred", "data/gt");
  {
    std::ofstream(t / "data/list.jsonl") << "{\"pred\": \"pred/a.png\", \"gt\": \"gt/a.png\", \"key\": \"first\"}\n"
                                         << "pred/b.png\tgt/sub/b.png\n"
                                         << "{\"pred\": \"pred/a.png\"}\n";
  }
  MiouJob job;
  job.manifest = t / "data/list.jsonl";
  job.num_classes = 3;
  job.quiet = true;
  const auto pairs = collect_pairs(job);
  REQUIRE(pairs.size() == 3);
  CHECK(pairs[0].key == "first");
  CHECK(pairs[1].paths[1] == t / "data/gt/sub/b.png");
  CHECK(pairs[2].error.find("line 3") != std::string::npos);
  const MiouResult r = evaluate_pairs(job, pairs, luts_for(3), {});
  CHECK(r.evaluated == 2);
  CHECK(r.failed == 1);
  CHECK(r.metrics.get("mIoU") * 100 == doctest::Approx(100.0 * 19 / 36));

  // Cityscapes-style names: only files with the suffix are taken, the suffix is stripped.
  write_labels(t / "cs/gt/aachen/aachen_0_gtFine_labelTrainIds.png", 2, 1, {0, 1});
  write_labels(t / "cs/gt/aachen/aachen_0_gtFine_color.png", 2, 1, {9, 9});
  write_labels(t / "cs/pred/aachen_0_leftImg8bit.png", 2, 1, {0, 1});
  MiouJob cs;
  cs.inputs = {t / "cs/pred", t / "cs/gt"};
  cs.gt_suffix = "_gtFine_labelTrainIds.png";
  cs.match_stem = true;  // GT in city folders, predictions flat
  cs.pred_suffix = "_leftImg8bit.png";
  const auto cs_pairs = collect_pairs(cs);
  REQUIRE(cs_pairs.size() == 1);
  CHECK(cs_pairs[0].key == "aachen_0");
  CHECK(cs_pairs[0].error.empty());
}

TEST_CASE("run_eval_miou: exit codes, outputs, usage errors") {
  TempDir t;
  write_case_a(t, "pred", "gt");
  MiouJob job;
  job.inputs = {t / "pred", t / "gt"};
  job.match_stem = true;
  job.num_classes = 3;
  job.quiet = true;
  job.confusion = t / "cm.npy";
  job.csv = t / "classes.csv";
  {
    QuietStdout q;
    CHECK(run_eval_miou(job) == 0);
  }
  const NpyArray cm = read_npy(job.confusion);
  REQUIRE(cm.shape == std::vector<int64_t>{3, 3});
  CHECK(cm.dtype == DType::i64);
  // (gt, pred) cells of the hand-made pair: (0,0) (0,1) (1,1)x3 (2,2) (2,0).
  const std::vector<int64_t> want = {1, 1, 0, 0, 3, 0, 1, 0, 1};
  CHECK(std::vector<int64_t>(cm.as<int64_t>(), cm.as<int64_t>() + 9) == want);
  CHECK(slurp(job.csv).find("\n2,2,50.0,50.0,") != std::string::npos);

  // An out-of-range value is evaluated as the convention says, and exits 3.
  write_labels(t / "pred/c.png", 2, 1, {0, 7});
  write_labels(t / "gt/c.png", 2, 1, {0, 1});
  {
    QuietStdout q;
    CHECK(run_eval_miou(job) == 3);
  }

  MiouJob bad = job;
  bad.num_classes = 0;
  CHECK_THROWS_AS(run_eval_miou(bad), Error);  // no class count
  bad.classes = "cityscapes";
  bad.num_classes = 3;
  try {
    run_eval_miou(bad);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::usage);
    CHECK(std::string(e.what()).find("19 names") != std::string::npos);
  }
  bad = job;
  bad.json = true;
  bad.csv = "-";
  CHECK_THROWS_AS(run_eval_miou(bad), Error);
  bad = job;
  bad.inputs = {t / "pred", t / "gt/a.png"};
  try {
    run_eval_miou(bad);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::usage);
  }
}
