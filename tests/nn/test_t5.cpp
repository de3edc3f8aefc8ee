// T5 caption features against the reference path of tests/nn/make_t5_fixture.py
// (PixArt's T5Embedder: clean_caption twice, transformers' T5 tokenizer, a tiny
// transformers T5EncoderModel in float32) on DreamClear's caption files.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/io/npy.hpp"
#include "rass/model/t5_model.hpp"
#include "rass/model/t5_tool.hpp"
#include "rass/nn/t5.hpp"

namespace fs = std::filesystem;
using namespace rass;

namespace {
const std::string kNN = std::string(RASS_FIXTURES) + "/nn";
const std::string kSpm = std::string(RASS_FIXTURES) + "/text/t5_tiny_spiece.model";

model::T5EncoderOptions options(const std::string& dtype = "fp32") {
  model::T5EncoderOptions o;
  o.dir = kNN + "/t5_tiny";
  o.tokenizer = kSpm;
  o.dtype = dtype;
  return o;
}

struct Golden {
  std::vector<float> features;
  std::vector<double> mask;
  std::vector<int64_t> shape;
};
Golden golden(const std::string& key) {
  const NpzFile z = read_npz(kNN + "/t5_golden/" + key + ".npz");
  Golden g;
  g.features = npy_to_f32(z.arrays.at("caption_feature"));
  g.shape = z.arrays.at("caption_feature").shape;
  g.mask = npy_to_f64(z.arrays.at("attention_mask"));
  return g;
}
}  // namespace

TEST_CASE("T5 relative position buckets: values worked by hand (32 buckets, max distance 128)") {
  // bucket(memory - query): 8 exact buckets each way, then log bins up to 128,
  // positive offsets in the upper half: 8 + int(log(d / 8) / log(16) * 8).
  const torch::Tensor b = nn::t5_relative_position_bucket(1, 402, 32, 128);  // query 0, memory 0..401
  const torch::Tensor r = nn::t5_relative_position_bucket(402, 1, 32, 128);  // queries 0..401, memory 0
  CHECK(r[1][0].item<int64_t>() == 1);     // -1
  CHECK(b[0][1].item<int64_t>() == 17);    // +1
  CHECK(r[8][0].item<int64_t>() == 8);     // -8: log(1) = 0
  CHECK(r[20][0].item<int64_t>() == 10);   // -20: 8 + int(2.64)
  CHECK(r[200][0].item<int64_t>() == 15);  // -200: past 128, the last bucket
  CHECK(b[0][200].item<int64_t>() == 31);  // +200
  CHECK(b[0][0].item<int64_t>() == 0);
}

TEST_CASE("rass-t5's features equal the reference's on every golden caption") {
  const model::T5TextEncoder enc(options());
  int n = 0;
  for (const auto& e : fs::directory_iterator(kNN + "/t5_captions")) {
    const std::string key = e.path().stem().string();
    CAPTURE(key);
    const std::string caption = model::caption_from_file_bytes(read_file_bytes(e.path().string()), key);
    const model::T5Features f = enc.encode(model::clean_caption(caption, model::CaptionClean::pixart));
    const Golden g = golden(key);
    REQUIRE(bool(std::vector<int64_t>(f.features.sizes().begin(), f.features.sizes().end()) == g.shape));
    const float* p = f.features.data_ptr<float>();
    double worst = 0, scale = 0;
    for (size_t i = 0; i < g.features.size(); ++i) {
      worst = std::max(worst, std::abs(double(p[i]) - double(g.features[i])));
      scale = std::max(scale, std::abs(double(g.features[i])));
    }
    CHECK(worst < 2e-5 * std::max(1.0, scale));
    for (size_t i = 0; i < g.mask.size(); ++i) CHECK(f.mask[0][int64_t(i)].item<int64_t>() == int64_t(g.mask[i]));
    ++n;
  }
  CHECK(n == 4);
}

TEST_CASE("rass-t5 bf16 stays within bfloat16's precision of the float32 reference") {
  const model::T5TextEncoder enc(options("bf16"));
  const std::string caption = model::caption_from_file_bytes(read_file_bytes(kNN + "/t5_captions/cat.caption"), "cat");
  const model::T5Features f = enc.encode(model::clean_caption(caption, model::CaptionClean::pixart));
  const Golden g = golden("cat");
  const float* p = f.features.data_ptr<float>();
  double worst = 0;
  for (size_t i = 0; i < g.features.size(); ++i) worst = std::max(worst, std::abs(double(p[i]) - double(g.features[i])));
  CHECK(worst > 0);     // it did run in bfloat16
  CHECK(worst < 0.15);  // values up to 3.4: a few bfloat16 steps (2^-7 relative)
}

TEST_CASE("caption files are read as extract_t5_features.py reads them: the first line, stripped") {
  auto cap = [](const std::string& s) {
    return model::caption_from_file_bytes(std::vector<uint8_t>(s.begin(), s.end()), "c.caption");
  };
  CHECK(cap("  a cat \nsecond line\n") == "a cat");
  CHECK(cap("a cat\r\nb") == "a cat");
  CHECK(cap("a cat\rb") == "a cat");
  CHECK(cap("\xe2\x80\x83" "a\xc2\xa0") == "a");  // em space, no-break space: str.isspace
  CHECK(cap("") == "");
  try {
    cap("bad \xff byte");
    FAIL("invalid UTF-8 accepted");
  } catch (const Error& e) {
    CHECK(e.exit_code() == 3);
    CHECK(std::string(e.what()).find("c.caption") != std::string::npos);
  }
}

TEST_CASE("T5 folders that do not match are refused naming the file") {
  const fs::path dir = fs::temp_directory_path() / "rass-test-t5-config";
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(kNN + "/t5_tiny/model.safetensors", dir / "model.safetensors");
  auto refused = [&](const std::string& config, const std::string& needle) {
    {
      std::ofstream(dir / "config.json") << config;
    }
    model::T5EncoderOptions o = options();
    o.dir = dir.string();
    try {
      model::T5TextEncoder enc(o);
      FAIL("accepted: " << config);
    } catch (const Error& e) {
      CHECK(e.exit_code() == 3);
      CAPTURE(e.what());
      CHECK(std::string(e.what()).find(needle) != std::string::npos);
    }
  };
  refused(R"({"d_kv": 8, "d_ff": 48, "num_layers": 2, "num_heads": 4, "vocab_size": 256})", "has no d_model");
  refused(R"({"d_model": 32, "d_kv": 8, "d_ff": 48, "num_layers": 2, "num_heads": 4, "vocab_size": 100})",
          "more than the model's vocabulary");
  refused(R"({"d_model": 32, "d_kv": 8, "d_ff": 48, "num_layers": 3, "num_heads": 4, "vocab_size": 256,
              "feed_forward_proj": "gated-gelu"})", "encoder.block.2");
  refused(R"({"d_model": 32, "d_kv": 8, "d_ff": 48, "num_layers": 2, "num_heads": 4, "vocab_size": 256,
              "feed_forward_proj": "relu"})", "wi");
  refused(R"({"d_model": 32, "d_kv": 8, "d_ff": 48, "num_layers": 2, "num_heads": 4, "vocab_size": 256,
              "feed_forward_proj": "gated-tanh"})", "feed_forward_proj");
  refused(R"({"d_model": 1e9, "d_kv": 8, "d_ff": 48, "num_layers": 2, "num_heads": 4, "vocab_size": 256})", "d_model");
  fs::remove_all(dir);
}
