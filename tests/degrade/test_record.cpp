// Degradation records as input data: every field checked against its valid
// range before any work (exit 3 naming the record file and the field), sizes
// against the pixel limit, old records readable; and one full record pinned
// (golden JSON + SHA-256 of its pixels) so a change to the generator or the
// draw order, which would silently change every dataset users build, fails here.
#include <doctest/doctest.h>

#include <string>

#include "rass/core/error.hpp"
#include "rass/core/json_file.hpp"
#include "sha256.hpp"
#include "rass/degrade/ops.hpp"
#include "rass/degrade/record.hpp"
#include "rass/io/image_io.hpp"

using namespace rass;
using namespace rass::degrade;
using json = nlohmann::ordered_json;

namespace {

Image chelsea() { return read_image(std::string(RASS_SOURCE_DIR) + "/examples/images/chelsea.png"); }

// The record of preset rass, seed 13, key "chelsea" on chelsea.png (451x300):
// plateau_iso and generalized_aniso kernels, down and keep resizes, Gaussian and
// Poisson noise, the final sinc and both JPEG stages.
json good_record() {
  static const Image hq = chelsea();
  return record_to_json(sample_record(make_preset("rass"), 13, "chelsea", hq.width, hq.height, hq.channels));
}

// record_from_json(j) must throw Error(bad_input) naming rec.json and holding every `parts`.
void check_refused(const json& j, std::initializer_list<std::string> parts) {
  bool threw = false;
  try {
    record_from_json(j, "rec.json");
  } catch (const Error& e) {
    threw = true;
    const std::string msg = e.what();
    INFO("message: ", msg);
    CHECK(e.code() == ExitCode::bad_input);
    CHECK(msg.rfind("rec.json: ", 0) == 0);
    for (const std::string& p : parts) CHECK(msg.find(p) != std::string::npos);
  }
  CHECK_MESSAGE(threw, "accepted: ", j.dump());
}

// Index of the first op of `stage` in the good record.
size_t op_index(const json& j, const std::string& stage) {
  for (size_t i = 0; i < j["ops"].size(); ++i)
    if (j["ops"][i]["stage"] == stage) return i;
  FAIL("no op ", stage);
  return 0;
}

}  // namespace

TEST_CASE("a valid record round-trips; records without record_version still read") {
  const json j = good_record();
  CHECK(j["record_version"] == 2);
  const Record rec = record_from_json(j, "rec.json");
  CHECK(record_to_json(rec).dump() == j.dump());
  // No field: a record from before version 1, the same format as 1; it keeps
  // its version when written again (it replays with version 1's filter).
  json old = j;
  old.erase("record_version");
  const Record old_rec = record_from_json(old, "old.json");
  CHECK(old_rec.version == 1);
  json again = record_to_json(old_rec);
  CHECK(again["record_version"] == 1);
  again["record_version"] = 2;
  CHECK(again.dump() == j.dump());
}

TEST_CASE("record-level fields are checked") {
  const json g = good_record();
  auto with = [&](const json::json_pointer& p, const json& v) {
    json j = g;
    j[p] = v;
    return j;
  };
  using P = json::json_pointer;
  check_refused(with(P("/record_version"), 3), {"record_version 3 is newer"});
  check_refused(with(P("/record_version"), -1), {"record_version"});
  check_refused(with(P("/tool"), "rass-eval-iqa"), {"tool"});
  check_refused(with(P("/seed"), -1), {"seed: expected an integer 0..2^64-1"});
  check_refused(with(P("/seed"), 1.5), {"seed"});
  check_refused(with(P("/input/width"), 0), {"input.width: 0 is outside [1, 65535]"});
  check_refused(with(P("/input/height"), 70000), {"input.height"});
  check_refused(with(P("/input/width"), 451.5), {"input.width: expected an integer"});
  check_refused(with(P("/input/width"), "451"), {"input.width: expected an integer"});
  check_refused(with(P("/input/channels"), 2), {"input.channels"});
  check_refused(with(P("/input/channels"), 4), {"input.channels"});
  check_refused(with(P("/output/channels"), 1), {"output.channels"});
  check_refused(with(P("/output/width"), 452), {"output: declares 452x300 but its ops produce 451x300"});
  check_refused(with(P("/scale"), 0), {"scale"});
  // Parsed from text, 0 is an unsigned JSON number: the lower bound must hold for it too.
  check_refused(with(P("/scale"), json::parse("0")), {"scale: 0 is outside [1, 65535]"});
  check_refused(with(P("/input/width"), json::parse("0")), {"input.width: 0 is outside [1, 65535]"});
  check_refused(with(P("/final_order"), "sideways"), {"final_order"});
  check_refused(with(P("/ops"), json::object()), {"ops: missing or not an array"});
  check_refused(with(P("/skipped/0"), json{{"stage", "x"}, {"reason", "whim"}}), {"skipped[0] reason"});
  json no_input = g;
  no_input.erase("input");
  check_refused(no_input, {"input: missing"});
  check_refused(json::array(), {"expected a JSON object"});
}

TEST_CASE("every numeric field of every op is checked against its range") {
  const json g = good_record();
  struct Case {
    std::string stage, pointer;  // pointer inside the op
    json value;
    std::string expect;
  };
  const std::vector<Case> cases = {
      // kernels: size, sigmas, theta, beta, sinc cutoff (omega)
      {"blur1", "/kernel/size", 20, "(blur1) kernel size: kernel size 20 is even"},
      {"blur1", "/kernel/size", 203, "kernel size: 203 is outside [1, 201]"},
      {"blur1", "/kernel/size", -1, "kernel size"},
      {"blur1", "/kernel/sigma_x", 0, "(blur1) kernel sigma_x: 0 is outside [0.001, 100]"},
      {"blur1", "/kernel/sigma_x", 1e-300, "(blur1) kernel sigma_x: 1e-300 is outside [0.001, 100]"},
      {"blur1", "/kernel/sigma_y", 1e9, "kernel sigma_y"},
      {"blur1", "/kernel/sigma_x", "wide", "kernel sigma_x: expected a number"},
      {"blur1", "/kernel/beta", 0, "kernel beta: 0 is outside (0, 100]"},
      {"blur1", "/kernel/beta", 1e6, "kernel beta"},
      {"blur1", "/kernel/type", "box", "unknown kernel type 'box'"},
      {"blur2", "/kernel/theta", 4, "(blur2) kernel theta: 4 is outside [-3.14"},
      {"blur2", "/kernel/sigma_y", -2, "kernel sigma_y"},
      {"blur2", "/kernel/beta", -1, "kernel beta"},
      {"final_sinc", "/kernel/cutoff", 0, "(final_sinc) kernel cutoff: 0 is outside (0, 3.14"},
      {"final_sinc", "/kernel/cutoff", 3.2, "kernel cutoff"},
      // resizes: mode, direction, factor, sizes
      {"resize1", "/mode", "lanczos", "(resize1) mode: unknown resize mode 'lanczos'"},
      {"resize1", "/direction", "left", "(resize1) direction"},
      {"resize1", "/factor", 1.2, "(resize1) factor: 1.2 does not go down"},
      {"resize1", "/factor", 0, "(resize1) factor: 0 is outside (0, 100]"},
      {"resize1", "/factor", 1000, "factor"},
      {"resize1", "/use_factor", 1, "use_factor: expected true or false"},
      {"resize1", "/width", 17, "(resize1) size: 17x"},
      {"resize2", "/factor", 0.5, "(resize2) factor: 0.5 does not go keep"},
      {"resize2", "/width", 0, "(resize2) width: 0 is outside [1, 65535]"},
      {"resize2", "/height", 65536, "(resize2) height"},
      {"final_resize", "/width", 2.5, "(final_resize) width: expected an integer"},
      // noise: sigma, scale, gray, seed
      {"noise1", "/sigma", -1, "(noise1) sigma: -1 is outside [0, 1000]"},
      {"noise1", "/sigma", 5000, "sigma"},
      {"noise1", "/gray", "yes", "(noise1) gray: expected true or false"},
      {"noise1", "/seed", "0xZZ", "(noise1) seed: '0xZZ' is not a 64-bit hex number"},
      {"noise1", "/seed", "-1", "seed"},
      {"noise1", "/seed", "0x10000000000000000", "seed"},
      {"noise1", "/seed", 17, "seed: expected a string"},
      {"noise2", "/scale", -0.1, "(noise2) scale"},
      {"noise2", "/scale", 1e4, "(noise2) scale"},
      // JPEG quality
      {"jpeg1", "/quality", 0.5, "(jpeg1) quality: 0.5 is outside [1, 101)"},
      {"jpeg1", "/quality", 101, "quality"},
      {"jpeg2", "/quality_int", 12, "(jpeg2) quality_int"},
      {"jpeg2", "/op", "gif", "unknown op 'gif'"},
  };
  for (const Case& c : cases) {
    json j = g;
    j["ops"][op_index(g, c.stage)][json::json_pointer(c.pointer)] = c.value;
    INFO(c.stage, c.pointer, " = ", c.value.dump());
    check_refused(j, {"invalid degradation record: ops[", c.expect});
  }
  // A missing field is named too.
  json j = g;
  j["ops"][op_index(g, "noise1")].erase("sigma");
  check_refused(j, {"(noise1): missing field 'sigma'"});
  // An isotropic kernel must be isotropic.
  j = g;
  j["ops"][op_index(g, "blur1")]["kernel"]["sigma_y"] = 2.5;
  check_refused(j, {"(blur1) kernel: an isotropic kernel (plateau_iso) needs sigma_y == sigma_x"});
  // USM (not drawn by default): radius, weight, threshold.
  Op usm;
  usm.kind = OpKind::usm;
  usm.stage = "usm";
  json u = op_to_json(usm);
  CHECK_NOTHROW(op_from_json(u));
  for (const char* field : {"radius", "weight", "threshold"}) {
    json bad = u;
    bad[field] = -1;
    CHECK_THROWS_WITH_AS(op_from_json(bad, "ops[0]"), doctest::Contains((std::string("ops[0] (usm) ") + field).c_str()),
                         Error);
  }
}

TEST_CASE("declared sizes are checked against the pixel limit before any work") {
  // A record asking for a 30000x30000 resize (which grew to 18 GB before) is
  // refused while it is read, naming the op; its output size must match too.
  json j = good_record();
  const size_t r2 = op_index(j, "resize2");
  j["ops"][r2]["width"] = 30000;
  j["ops"][r2]["height"] = 30000;
  check_refused(j, {"ops[" + std::to_string(r2) + "] (resize2) size is 30000x30000 = 900000000 pixels, over the "
                    "pixel limit of 268435456 (raise it with --max-pixels"});
  // With the limit raised the record passes the size walk (and is not applied here).
  set_max_pixels(0);
  CHECK_NOTHROW(record_from_json(j, "rec.json"));
  set_max_pixels(1000);
  check_refused(good_record(), {"input is 451x300 = 135300 pixels, over the pixel limit of 1000"});
  set_max_pixels(kDefaultMaxPixels);

  // apply_record runs the same walk: a record built in code is checked too.
  const Image hq = chelsea();
  Record rec = record_from_json(good_record(), "rec.json");
  rec.out_width += 1;
  CHECK_THROWS_WITH_AS(apply_record(hq, rec, "chelsea.png"), doctest::Contains("output: declares 452x300"), Error);
}

// Golden record: tests/fixtures/degrade/golden_record_rass_s13.json, written by
//   rass-degrade examples/images/chelsea.png -o lq.png --record golden_record_rass_s13.json -s 13
// when the record format was fixed (record_version 1). If this test fails, the
// generator, the keying or the draw order changed: every dataset built with an
// earlier version would no longer regenerate. Bump kRecordVersion only when
// that is intended (and keep the old version's arithmetic for old records).
TEST_CASE("golden record: rass preset, seed 13, chelsea.png") {
  const Image hq = chelsea();
  json golden = read_json_file(std::string(RASS_FIXTURES) + "/degrade/golden_record_rass_s13.json");
  json now = record_to_json(sample_record(make_preset("rass"), 13, "chelsea", hq.width, hq.height, hq.channels));
  CHECK(golden["record_version"] == 1);
  CHECK(now["record_version"] == kRecordVersion);
  for (json* j : {&golden, &now}) {
    j->erase("version");  // the tool's version may change, the draws may not
    j->erase("record_version");
  }
  CHECK(now.dump(2) == golden.dump(2));

  // The SHA-256 of the LQ pixels (451x300x3 bytes, row-major RGB) the version-1
  // record makes: the hash written when the fixture was made, so version 1's
  // arithmetic (OpenCV's DFT filter for its 13 and 15 px kernels) still replays.
  golden["record_version"] = 1;
  const Image lq1 = apply_record(hq, record_from_json(golden, "golden.json"), "chelsea.png");
  REQUIRE(lq1.width == 451);
  REQUIRE(lq1.height == 300);
  REQUIRE(lq1.channels == 3);
  CHECK(sha256_hex(lq1.data.data(), lq1.data.size()) == "80acb917733eaad1c63e0efd7d25478f5d539d3a4ef8164145756f2d51425621");

  // Version 2 (the direct filter, checked against PyTorch and OpenCV in
  // test_torch_golden.cpp) moves the 13 and 15 px blurs' floats by up to about
  // 2e-7; the last JPEG absorbs that here: the same bytes.
  golden["record_version"] = 2;
  const Image lq2 = apply_record(hq, record_from_json(golden, "golden.json"), "chelsea.png");
  CHECK(lq2.data == lq1.data);

  // Without that JPEG the record ends with the sinc filter and the rounding
  // reaches a few bytes, by one level: the hashes pinned when version 2 was made.
  golden["ops"].erase(golden["ops"].size() - 1);
  REQUIRE(golden["ops"].back()["stage"] == "final_sinc");
  golden["record_version"] = 1;
  const Image sinc1 = apply_record(hq, record_from_json(golden, "golden.json"), "chelsea.png");
  golden["record_version"] = 2;
  const Image sinc2 = apply_record(hq, record_from_json(golden, "golden.json"), "chelsea.png");
  size_t differ = 0;
  int worst = 0;
  for (size_t i = 0; i < sinc1.data.size(); ++i) {
    const int d = std::abs(int(sinc1.data[i]) - int(sinc2.data[i]));
    differ += d != 0;
    worst = std::max(worst, d);
  }
  CHECK(differ == 3);  // of 405900
  CHECK(worst == 1);
  CHECK(sha256_hex(sinc1.data.data(), sinc1.data.size()) == "938d7679c643651c0a1d947fe0b66ed5a0f9915b8c1b63800fea9ea6eb4c98b8");
  CHECK(sha256_hex(sinc2.data.data(), sinc2.data.size()) == "f456af3861e1cf6b3c2a68694035401b90fea478bfebe43c8ca0c9755f13ef74");
}
