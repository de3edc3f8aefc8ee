// The sampled pipeline: defaults, sizes, replay, stage switches, JPEG, inputs.
#include <doctest/doctest.h>

#include <cmath>
#include <map>

#include "rass/core/error.hpp"
#include "rass/degrade/ops.hpp"
#include "rass/degrade/record.hpp"
#include "rass/degrade/degrade_tool.hpp"
#include "rass/io/image_io.hpp"

using namespace rass;
using namespace rass::degrade;

static Image example(const char* name) { return read_image(std::string(RASS_SOURCE_DIR) + "/examples/images/" + name); }

static double psnr(const Planes& a, const Planes& b) {
  double mse = 0;
  for (size_t i = 0; i < a.data.size(); ++i) mse += std::pow(double(a.data[i]) - b.data[i], 2);
  mse /= a.data.size();
  return 10 * std::log10(1.0 / mse);
}

TEST_CASE("output sizes of the presets") {
  struct Case {
    const char* preset;
    int w, h;
  } cases[] = {{"rass", 451, 300}, {"realesrgan-x4", 112, 75}, {"lqseg-1", 451, 300},
               {"lqseg-2", 451, 300}, {"lqseg-3", 451, 300}, {"glesam", 451, 300}, {"blur", 451, 300},
               {"downsample", 451, 300}};
  for (const Case& c : cases) {
    for (uint64_t seed = 0; seed < 5; ++seed) {
      Record r = sample_record(make_preset(c.preset), seed, "k", 451, 300, 3);
      CHECK(r.out_width == c.w);
      CHECK(r.out_height == c.h);
    }
  }
  PipelineConfig native = make_preset("lqseg-3");
  native.lq_at_hq_size = false;
  Record r = sample_record(native, 1, "k", 451, 300, 3);
  CHECK(r.out_width == 112);
  CHECK(r.out_height == 75);
}

TEST_CASE("glesam: a scale drawn per image from its list, the second resize at 1/scale, the LQ at the HQ size") {
  const PipelineConfig cfg = make_preset("glesam");
  std::map<int, int> seen;
  for (uint64_t seed = 0; seed < 64; ++seed) {
    const Record r = sample_record(cfg, seed, "img", 400, 333, 3);
    REQUIRE((r.scale >= 1 && r.scale <= 4));
    ++seen[r.scale];
    CHECK(r.out_width == 400);
    CHECK(r.out_height == 333);
    for (const Op& op : r.ops) {
      CHECK(op.stage != "to_hq_size");
      if (op.stage == "resize2") CHECK(op.width == int(400.0 / r.scale * op.factor));
      if (op.stage == "final_resize") CHECK((op.width == 400 && op.height == 333));
    }
    // The same key and seed draw the same scale; the pipeline's draws are a
    // fixed scale's (the scale has its own stream).
    CHECK(sample_record(cfg, seed, "img", 400, 333, 3).scale == r.scale);
    PipelineConfig fixed = cfg;
    fixed.scale_choices.clear();
    fixed.scale = r.scale;
    const Record f = sample_record(fixed, seed, "img", 400, 333, 3);
    REQUIRE(f.ops.size() == r.ops.size());
    for (size_t i = 0; i < f.ops.size(); ++i) CHECK(f.ops[i].width == r.ops[i].width);
  }
  // Its list 1, 2, 3, 3, 4, 4, 4, 4: every scale, 4 the commonest.
  CHECK(seen.size() == 4);
  CHECK(seen[4] > seen[1]);
}

TEST_CASE("first resize uses floor(n * factor) and the second int(n / scale * factor)") {
  PipelineConfig cfg = make_preset("realesrgan-x4");
  for (uint64_t seed = 0; seed < 50; ++seed) {
    Record r = sample_record(cfg, seed, "img", 400, 333, 3);
    for (const Op& op : r.ops) {
      if (op.stage == "resize1") {
        CHECK(op.use_factor);
        CHECK(op.width == int(std::floor(400 * op.factor)));
        CHECK(op.height == int(std::floor(333 * op.factor)));
      }
      if (op.stage == "resize2") {
        CHECK(!op.use_factor);
        CHECK(op.width == int(400.0 / 4 * op.factor));
        CHECK(op.height == int(333.0 / 4 * op.factor));
      }
      if (op.stage == "final_resize") {
        CHECK(op.width == 100);
        CHECK(op.height == 83);
      }
    }
  }
}

TEST_CASE("sampling frequencies follow the reference defaults") {
  PipelineConfig cfg = make_preset("rass");
  const int n = 4000;
  int sinc1 = 0, blur2 = 0, final_sinc = 0, gauss1 = 0, gray1 = 0, resize_first = 0, down1 = 0;
  std::map<int, int> sizes;
  std::map<std::string, int> types;
  for (int i = 0; i < n; ++i) {
    Record r = sample_record(cfg, 0, "item" + std::to_string(i), 256, 256, 3);
    resize_first += r.final_order == "resize_sinc_then_jpeg";
    for (const Op& op : r.ops) {
      if (op.stage == "blur1") {
        sizes[op.kernel.size]++;
        types[kernel_type_name(op.kernel.type)]++;
        sinc1 += op.kernel.type == KernelType::sinc;
      }
      blur2 += op.stage == "blur2";
      final_sinc += op.stage == "final_sinc";
      if (op.stage == "noise1") {
        gauss1 += op.kind == OpKind::gaussian_noise;
        gray1 += op.gray;
      }
      if (op.stage == "resize1") down1 += op.direction == "down";
    }
  }
  auto near = [&](int count, double p) { return std::fabs(double(count) / n - p) < 4 * std::sqrt(p * (1 - p) / n); };
  CHECK(near(sinc1, 0.1));
  CHECK(near(blur2, 0.8));
  CHECK(near(final_sinc, 0.8));
  CHECK(near(gauss1, 0.5));
  CHECK(near(gray1, 0.4));
  CHECK(near(resize_first, 0.5));
  CHECK(near(down1, 0.7));
  CHECK(near(types["iso"], 0.9 * 0.45));
  CHECK(near(types["aniso"], 0.9 * 0.25));
  CHECK(near(types["plateau_iso"], 0.9 * 0.12));
  CHECK(sizes.size() == 8);
  for (auto [size, count] : sizes) {
    CHECK(size % 2 == 1);
    CHECK(near(count, 1.0 / 8));
  }
}

TEST_CASE("the first-order blur probability is drawn apart from the reference's draws") {
  const PipelineConfig ref = make_preset("rass");  // first order: always blurred, as the reference
  PipelineConfig half = ref, none = ref;
  half.first.blur_prob = 0.5;
  none.first.blur_prob = 0;
  const int n = 2000;
  int blurred = 0;
  for (int i = 0; i < n; ++i) {
    const std::string key = "item" + std::to_string(i);
    const Record a = sample_record(ref, 3, key, 64, 64, 3), h = sample_record(half, 3, key, 64, 64, 3),
                 z = sample_record(none, 3, key, 64, 64, 3);
    std::vector<std::string> ra, rh, rz;
    for (const Op& op : a.ops)
      if (op.stage != "blur1") ra.push_back(op_to_json(op).dump());
    for (const Op& op : h.ops) {
      blurred += op.stage == "blur1";
      if (op.stage != "blur1") rh.push_back(op_to_json(op).dump());
    }
    for (const Op& op : z.ops) {
      CHECK(op.stage != "blur1");
      rz.push_back(op_to_json(op).dump());
    }
    CHECK(a.ops.front().stage == "blur1");
    CHECK(ra == rh);  // every other draw unchanged
    CHECK(ra == rz);
    CHECK(z.skipped.front().stage == "blur1");
    CHECK(z.skipped.front().reason == "probability");
  }
  CHECK(std::fabs(double(blurred) / n - 0.5) < 4 * std::sqrt(0.25 / n));
}

TEST_CASE("replay from the JSON record regenerates the same bytes") {
  Image hq = example("chelsea.png");
  for (const char* preset : {"rass", "realesrgan-x4", "lqseg-2", "noise", "jpeg"}) {
    for (uint64_t seed : {1, 2, 3}) {
      Record rec = sample_record(make_preset(preset), seed, "chelsea", hq.width, hq.height, hq.channels);
      Image a = apply_record(hq, rec, "chelsea.png");
      const std::string text = record_to_json(rec).dump();
      Record back = record_from_json(nlohmann::ordered_json::parse(text), "rec.json");
      Image b = apply_record(hq, back, "chelsea.png");
      CHECK(a.data == b.data);
      CHECK(record_to_json(back).dump() == text);
    }
  }
}

TEST_CASE("switching a stage off changes nothing else") {
  PipelineConfig on = make_preset("rass");
  PipelineConfig off = on;
  apply_stages(off, "-noise");
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Record a = sample_record(on, seed, "x", 300, 200, 3), b = sample_record(off, seed, "x", 300, 200, 3);
    std::vector<std::string> sa, sb;
    for (auto& op : a.ops)
      if (op.stage != "noise1" && op.stage != "noise2") sa.push_back(op_to_json(op).dump());
    for (auto& op : b.ops) {
      CHECK(op.kind != OpKind::gaussian_noise);
      CHECK(op.kind != OpKind::poisson_noise);
      sb.push_back(op_to_json(op).dump());
    }
    CHECK(sa == sb);
  }
  PipelineConfig keep = make_preset("rass");
  apply_stages(keep, "blur");
  Record k = sample_record(keep, 4, "x", 300, 200, 3);
  for (auto& op : k.ops) CHECK((op.kind == OpKind::blur || op.stage == "final_resize"));
  CHECK_THROWS_AS(apply_stages(keep, "-warp"), Error);
}

TEST_CASE("JPEG round trip: quality is monotone in fidelity") {
  Planes hq = to_planes(example("astronaut.png"));
  double last = 0;
  for (int q : {10, 30, 50, 70, 90, 98}) {
    Planes p = hq;
    jpeg_roundtrip(p, q);
    const double v = psnr(hq, p);
    INFO("quality ", q, " psnr ", v);
    CHECK(v > last);
    last = v;
  }
  CHECK(last > 38);
}

TEST_CASE("bad inputs are refused with exit code 3 and the file name") {
  PipelineConfig cfg = make_preset("rass");
  auto code_of = [&](Image img, bool drop_alpha = false, bool accept16 = false) {
    try {
      prepare_input(img, "in.png", &cfg, drop_alpha, accept16);
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("in.png") != std::string::npos);
      return e.exit_code();
    }
    return 0;
  };
  CHECK(code_of(Image(64, 64, 4)) == 3);
  CHECK(code_of(Image(64, 64, 4), true) == 0);
  CHECK(code_of(Image(64, 64, 2)) == 3);
  CHECK(code_of(Image(64, 64, 3, 16)) == 3);
  CHECK(code_of(Image(64, 64, 3, 16), false, true) == 0);
  CHECK(code_of(Image(20, 64, 3)) == 3);  // smaller than the 21x21 kernel
  CHECK(code_of(Image(21, 21, 1)) == 0);
  // Kernels that cannot be applied do not count: blur1 by probability 0,
  // blur2 and the final sinc by --stages.
  cfg.first.blur_prob = 0;
  apply_stages(cfg, "-blur2,-final_sinc");
  CHECK(code_of(Image(5, 3, 3)) == 0);
  cfg.scale = 4;
  CHECK(code_of(Image(5, 3, 3)) == 3);  // smaller than the scale
  cfg = make_preset("rass");
  apply_stages(cfg, "-blur1,-blur2");
  CHECK(code_of(Image(20, 64, 3)) == 3);  // the final sinc may still be applied
  Record rec = sample_record(cfg, 0, "k", 64, 64, 3);
  CHECK_THROWS_AS(apply_record(Image(65, 64, 3), rec, "x.png"), Error);
}

TEST_CASE("gray and 16-bit inputs run through the model") {
  PipelineConfig cfg = make_preset("rass");
  Image gray(64, 48, 1);
  for (size_t i = 0; i < gray.data.size(); ++i) gray.data[i] = uint8_t(i * 7);
  Record r = sample_record(cfg, 9, "g", 64, 48, 1);
  Image out = apply_record(gray, r, "g.png");
  CHECK(out.channels == 1);
  CHECK(out.width == 64);
  Image deep(64, 48, 3, 16);
  Record r16 = sample_record(cfg, 9, "d", 64, 48, 3);
  CHECK(apply_record(deep, r16, "d.png").depth == 8);
}
