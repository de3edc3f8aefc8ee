// The in-memory HDF5 writer and the reader: values written come back equal,
// empty datasets and UTF-8 strings included; damaged files are named.
#include <doctest/doctest.h>

#include "test_support.hpp"

#include <cmath>
#include <fstream>
#include <limits>
#include <thread>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/io/hdf5_file.hpp"

using rass::io::Hdf5Reader;
using rass::io::Hdf5Writer;

namespace {

std::string write_sample(const std::string& dir, const std::string& name) {
  Hdf5Writer w;
  w.attribute("title", std::string("caf\xc3\xa9 \xe6\xb0\xb4"));
  w.attribute("count", int64_t{-7});
  w.attribute_double("threshold", 0.5);
  std::vector<uint8_t> u8(2 * 3 * 4);
  for (size_t i = 0; i < u8.size(); ++i) u8[i] = static_cast<uint8_t>(i * 11);
  w.dataset_u8("masks", {2, 3, 4}, u8.data(), true);
  w.dataset_u8("empty", {0, 3, 4}, nullptr, true);
  const int32_t i32[] = {-1, 0, 2147483647};
  w.dataset_i32("ids", {3}, i32);
  const double f64[] = {1.0, std::numeric_limits<double>::quiet_NaN(), -0.25};
  w.dataset_f64("score", {3}, f64);
  w.dataset_strings("names", {"wall", "", "traffic light", "\xc3\xa9t\xc3\xa9"});
  w.dataset_strings("none", {});
  const std::vector<uint8_t> bytes = w.finish();
  const std::string path = dir + "/" + name;
  rass::write_file_atomic(path, bytes);
  return path;
}

}  // namespace

TEST_CASE("HDF5: what the writer writes, the reader reads") {
  rass::test::TempDir tmp;
  const std::string path = write_sample(tmp.path, "a.h5");
  Hdf5Reader r(path);
  CHECK(r.attribute_string("title") == "caf\xc3\xa9 \xe6\xb0\xb4");
  CHECK(r.attribute_int("count") == -7);
  CHECK(r.attribute_double("threshold") == 0.5);
  CHECK(r.dims("masks") == std::vector<uint64_t>{2, 3, 4});
  const std::vector<uint8_t> m = r.read_u8("masks");
  REQUIRE(m.size() == 24);
  for (size_t i = 0; i < m.size(); ++i) CHECK(m[i] == static_cast<uint8_t>(i * 11));
  CHECK(r.dims("empty") == std::vector<uint64_t>{0, 3, 4});
  CHECK(r.read_u8("empty").empty());
  CHECK(r.read_i32("ids") == std::vector<int32_t>{-1, 0, 2147483647});
  const std::vector<double> s = r.read_f64("score");
  REQUIRE(s.size() == 3);
  CHECK(s[0] == 1.0);
  CHECK(std::isnan(s[1]));
  CHECK(s[2] == -0.25);
  CHECK(r.read_strings("names") == std::vector<std::string>{"wall", "", "traffic light", "\xc3\xa9t\xc3\xa9"});
  CHECK(r.read_strings("none").empty());
  CHECK(r.has("masks"));
  CHECK_FALSE(r.has("nothing"));
  CHECK_THROWS_WITH_AS(r.read_u8("nothing"), doctest::Contains("no dataset 'nothing'"), rass::Error);
  CHECK_THROWS_WITH_AS(r.read_f64("ids"), doctest::Contains("another type"), rass::Error);
  CHECK_THROWS_WITH_AS(r.attribute_int("title"), doctest::Contains("another type"), rass::Error);
}

TEST_CASE("HDF5: writers on several threads (the library itself is not thread-safe)") {
  rass::test::TempDir tmp;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int k = 0; k < 5; ++k) write_sample(tmp.path, std::to_string(t) + "_" + std::to_string(k) + ".h5");
    });
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < 4; ++t) CHECK(Hdf5Reader(tmp.path + "/" + std::to_string(t) + "_4.h5").read_i32("ids").size() == 3);
}

TEST_CASE("HDF5: files that are not HDF5, or cut short, are named") {
  rass::test::TempDir tmp;
  const std::string text = tmp.path + "/text.h5";
  std::ofstream(text) << "not hdf5\n";
  const std::string want = text + ": is not an HDF5 file";
  CHECK_THROWS_WITH_AS(Hdf5Reader{text}, doctest::Contains(want.c_str()), rass::Error);
  const std::string path = write_sample(tmp.path, "whole.h5");
  const std::vector<uint8_t> bytes = rass::read_file_bytes(path);
  const std::string cut = tmp.path + "/cut.h5";
  rass::write_file_atomic(cut, bytes.data(), bytes.size() / 2);
  try {
    Hdf5Reader r(cut);
    r.read_u8("masks");
    r.read_strings("names");
    FAIL("a truncated file read without error");
  } catch (const rass::Error& e) {
    CHECK(e.exit_code() == 3);
    CHECK(std::string(e.what()).find(cut) != std::string::npos);
  }
}
