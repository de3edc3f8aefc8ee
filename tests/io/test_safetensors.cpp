// safetensors: round trips, a file built byte by byte from the format spec,
// and corrupted or truncated files refused with the tensor named.
#include <doctest/doctest.h>

#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <string>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/io/safetensors.hpp"

#include <unistd.h>

using namespace rass;

static std::vector<uint8_t> make_file(const std::string& header, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out;
  out.reserve(8 + header.size() + data.size());
  for (int i = 0; i < 8; ++i) out.push_back(uint8_t(uint64_t(header.size()) >> (8 * i)));
  for (char c : header) out.push_back(uint8_t(c));
  for (uint8_t b : data) out.push_back(b);
  return out;
}

static std::string error_of(const std::vector<uint8_t>& f) {
  try {
    parse_safetensors(f.data(), f.size(), "w.safetensors");
  } catch (const Error& e) {
    CHECK(e.exit_code() == 3);
    return e.what();
  }
  return "";
}

TEST_CASE("a file written from the spec by hand parses") {
  // Two tensors: "b" F32 [2] at [0, 8), "a" U8 [3] at [8, 11); metadata.
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("a":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}})";
  std::vector<uint8_t> data(11);
  const float fl[2] = {1.5f, -2.0f};
  std::memcpy(data.data(), fl, 8);
  data[8] = 7, data[9] = 8, data[10] = 9;
  auto f = make_file(header, data);
  SafeTensorsHeader h = parse_safetensors(f.data(), f.size(), "x");
  REQUIRE(h.tensors.size() == 2);
  CHECK(h.metadata.at("format") == "pt");
  CHECK(h.tensors[0].name == "b");
  CHECK(h.tensors[0].shape == std::vector<int64_t>{2});
  float back[2];
  std::memcpy(back, h.tensors[0].data, 8);
  CHECK(back[1] == -2.0f);
  CHECK(h.tensors[1].data[2] == 9);
}

TEST_CASE("write then read back through the memory map") {
  char tmpl[] = "/tmp/rass-st-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  std::vector<float> w(6);
  for (int i = 0; i < 6; ++i) w[i] = float(i) * 0.5f;
  std::vector<uint16_t> half = {0x3c00, 0xc000};
  std::vector<int64_t> ids = {1, -2, 3};
  write_safetensors(dir + "/m.safetensors",
                    {{"layer.weight", DType::f32, {2, 3}, w.data(), 24},
                     {"layer.bias", DType::f16, {2}, half.data(), 4},
                     {"ids", DType::i64, {3}, ids.data(), 24},
                     {"empty", DType::f32, {0, 4}, nullptr, 0}},
                    {{"format", "pt"}});
  auto bytes = read_file_bytes(dir + "/m.safetensors");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  CHECK(n % 8 == 0);  // header padded for alignment
  auto f = SafeTensorsFile::open(dir + "/m.safetensors");
  REQUIRE(f->tensors().size() == 4);
  const TensorView* t = f->find("layer.weight");
  REQUIRE(t);
  CHECK(t->shape == std::vector<int64_t>{2, 3});
  CHECK(std::memcmp(t->data, w.data(), 24) == 0);
  CHECK(f->find("ids")->offset % 8 == 0);  // 8-byte dtypes first
  CHECK(f->find("layer.bias")->dtype == DType::f16);
  CHECK(f->find("empty")->numel() == 0);
  CHECK(f->metadata().at("format") == "pt");
  CHECK(f->find("nope") == nullptr);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("every truncation of a valid file is refused cleanly") {
  std::vector<float> w(16, 1.0f);
  char tmpl[] = "/tmp/rass-st-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  write_safetensors(dir + "/m.safetensors", {{"w", DType::f32, {4, 4}, w.data(), 64}});
  auto full = read_file_bytes(dir + "/m.safetensors");
  std::system(("rm -rf " + dir).c_str());
  for (size_t len = 0; len < full.size(); ++len) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + len);
    CHECK(!error_of(cut).empty());
  }
  CHECK(error_of(full).empty());
}

TEST_CASE("corrupt headers are refused with the tensor named") {
  std::vector<uint8_t> d8(8);
  auto msg = [&](const std::string& header, const std::vector<uint8_t>& data) { return error_of(make_file(header, data)); };
  CHECK(msg(R"({"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", d8).find("tensor 'w'") != std::string::npos);
  CHECK(msg(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", d8).find("tensor 'w'") != std::string::npos);
  CHECK(msg(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", d8).find("truncated") != std::string::npos);
  CHECK(msg(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", d8)
            .find("overlaps") != std::string::npos);
  CHECK(msg(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", d8).find("gap") != std::string::npos);
  CHECK(msg(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", d8).find("trailing") != std::string::npos);
  CHECK(msg(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", d8).find("tensor 'a'") != std::string::npos);
  CHECK(msg(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})", d8).find("overflow") != std::string::npos);
  // A tensor named twice: said as such (it read as a gap before the second).
  CHECK(msg(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", d8)
            .find("the key \"a\" appears twice") != std::string::npos);
  CHECK(msg(R"([1,2])", d8).find("JSON object") != std::string::npos);
  CHECK(msg(R"({"a": )", d8).find("JSON") != std::string::npos);
  // Header length field larger than the file.
  std::vector<uint8_t> huge = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, '{', '}'};
  CHECK(!error_of(huge).empty());
  CHECK_THROWS_AS(SafeTensorsFile::open("/nonexistent.safetensors"), Error);
}

TEST_CASE("a file with no tensors is written as {} and reads back empty") {
  char tmpl[] = "/tmp/rass-st-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  write_safetensors(dir + "/e.safetensors", {});
  auto f = SafeTensorsFile::open(dir + "/e.safetensors");
  CHECK(f->tensors().empty());
  write_safetensors(dir + "/m.safetensors", {}, {{"k", "v"}});
  CHECK(SafeTensorsFile::open(dir + "/m.safetensors")->metadata().at("k") == "v");
  std::remove((dir + "/e.safetensors").c_str());
  std::remove((dir + "/m.safetensors").c_str());
  ::rmdir(dir.c_str());
}
