// .npy/.npz: round trips, byte-exact agreement with numpy's writer (fixtures
// from tests/fixtures/make_npy_fixtures.py), header parsing, refusals, and
// IEEE half conversion.
#include <doctest/doctest.h>

#include "test_support.hpp"
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/io/npy.hpp"

using namespace rass;

namespace {

std::string fixture(const std::string& name) { return std::string(RASS_FIXTURES) + "/" + name; }

// The value formulas of make_npy_fixtures.py, element i in C order.
double fixture_value(DType t, size_t i) {
  switch (t) {
    case DType::f16:
    case DType::f32:
    case DType::f64: return double(i) * 0.5 - 3;
    case DType::u8: return double((i * 7) % 256);
    case DType::u16: return double((i * 7919) % 65536);
    default: return double(i) * 7 - 20;
  }
}

void check_fixture_values(const NpyArray& a) {
  const std::vector<double> v = npy_to_f64(a);
  REQUIRE(v.size() == a.numel());
  for (size_t i = 0; i < v.size(); ++i) {
    CAPTURE(i);
    CHECK(v[i] == fixture_value(a.dtype, i));
  }
}

NpyArray filled(DType t, std::vector<int64_t> shape) {
  NpyArray a;
  a.dtype = t;
  a.shape = std::move(shape);
  a.data.resize(a.numel() * dtype_size(t));
  for (size_t i = 0; i < a.data.size(); ++i) a.data[i] = static_cast<uint8_t>(i * 37 + 11);
  return a;
}

// A .npy with a hand-written header (no alignment needed for reading).
std::vector<uint8_t> make_npy(const std::string& header, size_t data_bytes, int version = 1) {
  std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', uint8_t(version), 0};
  const size_t len_bytes = version == 1 ? 2 : 4;
  for (size_t i = 0, len = header.size(); i < len_bytes; ++i, len >>= 8)
    out.push_back(uint8_t(len & 0xFF));
  out.insert(out.end(), header.begin(), header.end());
  out.resize(out.size() + data_bytes, 0);
  return out;
}

std::string header_of(const std::vector<uint8_t>& npy) {
  const size_t prefix = npy[6] == 1 ? 10 : 12;
  size_t len = npy[8] | (npy[9] << 8);
  if (prefix == 12) len |= size_t(npy[10]) << 16 | size_t(npy[11]) << 24;
  return std::string(npy.begin() + prefix, npy.begin() + prefix + len);
}

template <class F>
void check_bad_input(F&& f, const std::string& name, const std::string& what) {
  bool threw = false;
  try {
    f();
  } catch (const Error& e) {
    threw = true;
    const std::string msg = e.what();
    INFO("message: " << msg);
    CHECK(e.exit_code() == 3);
    CHECK(msg.find(name) != std::string::npos);
    CHECK(msg.find(what) != std::string::npos);
  }
  CHECK_MESSAGE(threw, "expected an error containing '" << what << "'");
}

void check_refused(const std::vector<uint8_t>& bytes, const std::string& what) {
  check_bad_input([&] { parse_npy(bytes.data(), bytes.size(), "t.npy"); }, "t.npy", what);
}

float f32(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace

TEST_CASE("npy round trips every dtype and shape") {
  for (DType t : {DType::f16, DType::f32, DType::f64, DType::u8, DType::u16, DType::u32,
                  DType::u64, DType::i8, DType::i16, DType::i32, DType::i64, DType::b1})
    for (const std::vector<int64_t>& shape :
         {std::vector<int64_t>{}, {5}, {2, 3, 4}, {0}, {3, 0, 2}}) {
      CAPTURE(dtype_descr(t));
      CAPTURE(shape.size());
      const NpyArray a = filled(t, shape);
      const std::vector<uint8_t> bytes = serialize_npy(a);
      const NpyArray b = parse_npy(bytes.data(), bytes.size(), "rt.npy");
      CHECK(b.dtype == a.dtype);
      CHECK(b.shape == a.shape);
      CHECK(b.data == a.data);
    }
}

TEST_CASE("serialize_npy writes what numpy writes, byte for byte") {
  for (const char* name : {"npy_f2_2x3x4.npy", "npy_f4_2x3x4.npy", "npy_f8_2x3x4.npy",
                           "npy_u1_2x3x4.npy", "npy_u2_2x3x4.npy", "npy_i4_2x3x4.npy",
                           "npy_i8_2x3x4.npy", "npy_f4_scalar.npy", "npy_i8_5.npy"}) {
    CAPTURE(name);
    const std::vector<uint8_t> file = read_file_bytes(fixture(name));
    const NpyArray a = read_npy(fixture(name));
    check_fixture_values(a);
    CHECK(serialize_npy(a) == file);
  }
}

TEST_CASE("npy header layout") {
  auto header = [](std::vector<int64_t> shape) {
    return header_of(serialize_npy(filled(DType::f32, std::move(shape))));
  };
  CHECK(header({3}).find("'shape': (3,), }") != std::string::npos);
  CHECK(header({}).find("'shape': (), }") != std::string::npos);
  CHECK(header({2, 3}).find("'shape': (2, 3), }") != std::string::npos);
  for (const std::vector<int64_t>& shape : {std::vector<int64_t>{}, {7}, {123456, 0}}) {
    const std::vector<uint8_t> bytes = serialize_npy(filled(DType::u8, shape));
    const std::string h = header_of(bytes);
    CHECK(bytes[6] == 1);
    CHECK((10 + h.size()) % 64 == 0);
    CHECK(h.back() == '\n');
  }
}

TEST_CASE("npy switches to version 2.0 when the header outgrows 16 bits") {
  const NpyArray a = filled(DType::i16, std::vector<int64_t>(30000, 1));
  const std::vector<uint8_t> bytes = serialize_npy(a);
  CHECK(bytes[6] == 2);
  CHECK((12 + header_of(bytes).size()) % 64 == 0);
  const NpyArray b = parse_npy(bytes.data(), bytes.size(), "v2.npy");
  CHECK(b.shape == a.shape);
  CHECK(b.data == a.data);
}

TEST_CASE("npy reads big-endian data and version 2.0/3.0 headers") {
  for (const char* code : {"f2", "f4", "f8", "u2", "i4", "i8"}) {
    CAPTURE(code);
    const NpyArray a = read_npy(fixture(std::string("npy_be_") + code + "_2x3.npy"));
    CHECK(a.shape == std::vector<int64_t>{2, 3});
    CHECK(std::string(dtype_descr(a.dtype)).substr(1) == code);
    check_fixture_values(a);
  }
  for (const char* name : {"npy_v2_f4_3x2.npy", "npy_v3_f4_3x2.npy"}) {
    CAPTURE(name);
    const NpyArray a = read_npy(fixture(name));
    CHECK(a.dtype == DType::f32);
    CHECK(a.shape == std::vector<int64_t>{3, 2});
    check_fixture_values(a);
  }
}

TEST_CASE("npy reads Fortran-order arrays into C order") {
  const NpyArray a = read_npy(fixture("npy_fortran_f4_2x3.npy"));
  CHECK(a.shape == std::vector<int64_t>{2, 3});
  check_fixture_values(a);
  const NpyArray b = read_npy(fixture("npy_fortran_be_i8_2x3x4.npy"));
  CHECK(b.dtype == DType::i64);
  CHECK(b.shape == std::vector<int64_t>{2, 3, 4});
  check_fixture_values(b);
  // Writing gives C order, numpy's default.
  CHECK(header_of(serialize_npy(b)).find("'fortran_order': False") != std::string::npos);
}

TEST_CASE("npy header parsing tolerates key order, quotes, spacing and old longs") {
  const std::vector<uint8_t> a = make_npy(
      "{ \"shape\" :(2L,3L) ,'fortran_order':False,\n 'descr' : '<i2' }   \n", 12);
  const NpyArray x = parse_npy(a.data(), a.size(), "odd.npy");
  CHECK(x.dtype == DType::i16);
  CHECK(x.shape == std::vector<int64_t>{2, 3});

  const std::vector<uint8_t> b =
      make_npy("{'descr': '|b1', 'fortran_order': True, 'shape': (4,), 'extra': None}", 4, 3);
  const NpyArray y = parse_npy(b.data(), b.size(), "fortran-1d.npy");  // same bytes as C order
  CHECK(y.dtype == DType::b1);
  CHECK(y.shape == std::vector<int64_t>{4});
}

TEST_CASE("npy refusals name the file and exit with code 3") {
  const std::string ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  check_refused({}, "empty file");
  check_refused(make_npy(ok, 23), "truncated .npy data");
  check_refused(std::vector<uint8_t>(9, 0x93), "not a .npy file");
  check_refused(std::vector<uint8_t>(200, 'x'), "not a .npy file");
  std::vector<uint8_t> v4 = make_npy(ok, 24);
  v4[6] = 4;
  check_refused(v4, "unsupported .npy version 4.0");
  std::vector<uint8_t> short_header = make_npy(ok, 0);
  short_header.resize(30);
  check_refused(short_header, "truncated .npy header");

  check_refused(make_npy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 16),
                "object arrays");
  check_refused(make_npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8),
                "structured");
  check_refused(make_npy("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 16),
                "unsupported dtype '<c8'");
  check_refused(make_npy("{'descr': '<f4', 'shape': (2,), }", 8), "lacks");
  check_refused(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8),
                "non-negative");
  check_refused(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,) ", 8),
                "malformed .npy header");
  check_refused(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': " +
                             std::string(1000, '(') + "}",
                         8),
                "nested too deeply");
  check_refused(make_npy("{'descr': '<f4', 'fortran_order': False, "
                         "'shape': (4294967296, 4294967296, 4294967296), }",
                         8),
                "too large");

  const std::vector<uint8_t> good = read_file_bytes(fixture("npy_f8_2x3x4.npy"));
  check_refused({good.begin(), good.end() - 1}, "truncated .npy data");
}

TEST_CASE("npy file round trip through write_npy/read_npy") {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("rass-test-npy-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const NpyArray a = filled(DType::f64, {3, 4});
  const std::string path = (dir / "a.npy").string();
  write_npy(path, a);
  const NpyArray b = read_npy(path);
  CHECK(b.shape == a.shape);
  CHECK(b.data == a.data);
  // npy_file_complete: a whole file (3 * 4 * 8 data bytes after the
  // header), not one a byte short or long, not another kind of file.
  CHECK(npy_file_complete(path));
  CHECK(std::filesystem::file_size(path) == 128 + 3 * 4 * 8);  // numpy pads the header to 128 bytes here
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  const std::string cut = (dir / "cut.npy").string(), more = (dir / "more.npy").string(), text = (dir / "t.npy").string();
  write_file_atomic(cut, std::vector<uint8_t>(bytes.begin(), bytes.end() - 1));
  std::vector<uint8_t> longer = bytes;
  longer.push_back(0);
  write_file_atomic(more, longer);
  write_file_atomic(text, std::vector<uint8_t>{'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '!'});
  CHECK_FALSE(npy_file_complete(cut));
  CHECK_FALSE(npy_file_complete(more));
  CHECK_FALSE(npy_file_complete(text));
  CHECK_FALSE(npy_file_complete((dir / "missing.npy").string()));
  std::filesystem::remove_all(dir);
  check_bad_input([&] { read_npy(path); }, path, "cannot open");
}

TEST_CASE("half <-> float") {
  CHECK(half_to_float(0x3C00) == 1.0f);
  CHECK(half_to_float(0xC000) == -2.0f);
  CHECK(half_to_float(0x7BFF) == 65504.0f);
  CHECK(half_to_float(0x0400) == std::ldexp(1.0f, -14));
  CHECK(half_to_float(0x0001) == std::ldexp(1.0f, -24));
  CHECK(half_to_float(0x03FF) == std::ldexp(1023.0f, -24));
  CHECK(std::signbit(half_to_float(0x8000)));
  CHECK(half_to_float(0x7C00) == std::numeric_limits<float>::infinity());
  CHECK(half_to_float(0xFC00) == -std::numeric_limits<float>::infinity());
  CHECK(std::isnan(half_to_float(0x7E00)));

  CHECK(float_to_half(1.0f) == 0x3C00);
  CHECK(float_to_half(-0.0f) == 0x8000);
  CHECK(float_to_half(65504.0f) == 0x7BFF);
  CHECK(float_to_half(65519.0f) == 0x7BFF);                // rounds down
  CHECK(float_to_half(65520.0f) == 0x7C00);                // tie rounds to even: overflow
  CHECK(float_to_half(1e10f) == 0x7C00);
  CHECK(float_to_half(-1e10f) == 0xFC00);
  CHECK(float_to_half(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);      // tie, to even
  CHECK(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3C02);  // tie, to even (up)
  CHECK(float_to_half(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)) == 0x3C01);
  CHECK(float_to_half(std::ldexp(1.0f, -25)) == 0x0000);             // tie, to even
  CHECK(float_to_half(std::ldexp(1.5f, -25)) == 0x0001);
  CHECK(float_to_half(std::ldexp(3.0f, -25)) == 0x0002);             // 1.5 units, to even
  CHECK(float_to_half(std::ldexp(1023.5f, -24)) == 0x0400);          // subnormal -> normal
  CHECK(float_to_half(std::ldexp(1.0f, -30)) == 0x0000);
  CHECK(float_to_half(f32(0x00000001)) == 0x0000);                   // float subnormal
  CHECK(float_to_half(std::numeric_limits<float>::infinity()) == 0x7C00);
  const uint16_t nan = float_to_half(std::numeric_limits<float>::quiet_NaN());
  CHECK((nan & 0x7C00) == 0x7C00);
  CHECK((nan & 0x03FF) != 0);
  CHECK((float_to_half(f32(0x7F800001)) & 0x03FF) != 0);  // signalling nan stays nan

  for (uint32_t h = 0; h <= 0xFFFF; ++h) {  // every half survives the round trip
    const float f = half_to_float(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    CAPTURE(h);
    REQUIRE(float_to_half(f) == h);
  }
}

TEST_CASE("npy_to_f64 / npy_to_f32 convert every dtype") {
  NpyArray a = filled(DType::i16, {2});
  a.as<int16_t>()[0] = -300;
  a.as<int16_t>()[1] = 7;
  CHECK(npy_to_f64(a) == std::vector<double>{-300, 7});
  NpyArray h = filled(DType::f16, {2});
  h.as<uint16_t>()[0] = 0x3555;  // 0.333251953125
  h.as<uint16_t>()[1] = 0xC000;
  CHECK(npy_to_f64(h) == std::vector<double>{0.333251953125, -2});
  NpyArray b = filled(DType::b1, {3});
  b.data = {0, 1, 2};
  CHECK(npy_to_f32(b) == std::vector<float>{0, 1, 1});
  NpyArray u = filled(DType::u64, {1});
  u.as<uint64_t>()[0] = 1ull << 40;
  CHECK(npy_to_f32(u) == std::vector<float>{std::ldexp(1.0f, 40)});
}

TEST_CASE("npz: stored and deflated archives") {
  for (const char* name : {"npz_stored.npz", "npz_deflated.npz"}) {
    CAPTURE(name);
    const NpzFile npz = read_npz(fixture(name));
    REQUIRE(npz.arrays.size() == 2);
    const NpyArray& a = npz.arrays.at("a");
    const NpyArray& b = npz.arrays.at("b");
    CHECK(a.dtype == DType::f32);
    CHECK(a.shape == std::vector<int64_t>{2, 3});
    check_fixture_values(a);
    CHECK(b.dtype == DType::i64);
    CHECK(b.shape == std::vector<int64_t>{4});
    check_fixture_values(b);
  }
}

TEST_CASE("serialize_npz: numpy's stored archive read back, and the ZIP fields worked by hand") {
  const NpzFile ref = read_npz(fixture("npz_stored.npz"));  // np.savez
  const std::vector<uint8_t> z = serialize_npz({{"a", ref.arrays.at("a")}, {"b", ref.arrays.at("b")}});
  const NpzFile back = parse_npz(z.data(), z.size(), "w.npz");
  REQUIRE(back.arrays.size() == 2);
  for (const char* k : {"a", "b"}) {
    CHECK(back.arrays.at(k).dtype == ref.arrays.at(k).dtype);
    CHECK(back.arrays.at(k).shape == ref.arrays.at(k).shape);
    CHECK(back.arrays.at(k).data == ref.arrays.at(k).data);
  }
  auto u16 = [&](size_t at) { return unsigned(z[at]) | unsigned(z[at + 1]) << 8; };
  auto u32 = [&](size_t at) { return u16(at) | u16(at + 2) << 16; };
  const std::vector<uint8_t> a = serialize_npy(ref.arrays.at("a"));
  CHECK(u32(0) == 0x04034b50u);  // local header
  CHECK(u16(8) == 0);            // stored
  CHECK(u32(18) == a.size());    // compressed size = size
  CHECK(u16(26) == 5);           // "a.npy"
  CHECK(std::string(z.begin() + 30, z.begin() + 35) == "a.npy");
  CHECK(std::equal(a.begin(), a.end(), z.begin() + 35));
  const size_t end = z.size() - 22;
  CHECK(u32(end) == 0x06054b50u);  // end of central directory
  CHECK(u16(end + 10) == 2);       // two entries
  CHECK(u32(u32(end + 16)) == 0x02014b50u);  // the directory starts where it says
  // Same arrays, same bytes (no timestamps).
  CHECK(serialize_npz({{"a", ref.arrays.at("a")}, {"b", ref.arrays.at("b")}}) == z);
}

TEST_CASE("npz: an entry inflating past the caller's limit is refused before it inflates") {
  const std::vector<uint8_t> deflated = read_file_bytes(fixture("npz_deflated.npz"));
  // Entry "a" ([2, 3] float32) inflates to 128 header + 24 data = 152 bytes, "b" ([4] int64) to 128 + 32 = 160.
  CHECK(parse_npz(deflated.data(), deflated.size(), "t.npz", 160).arrays.size() == 2);
  check_bad_input([&] { parse_npz(deflated.data(), deflated.size(), "t.npz", 159); }, "t.npz:b.npy",
                  "inflates to 160 bytes");
}

TEST_CASE("npz: damaged archives are refused") {
  const std::vector<uint8_t> stored = read_file_bytes(fixture("npz_stored.npz"));
  const std::vector<uint8_t> deflated = read_file_bytes(fixture("npz_deflated.npz"));
  auto refuse = [](const std::vector<uint8_t>& bytes, const std::string& what) {
    check_bad_input([&] { parse_npz(bytes.data(), bytes.size(), "t.npz"); }, "t.npz", what);
  };
  refuse({}, "empty file");
  refuse(std::vector<uint8_t>(100, 'x'), "not a ZIP archive");
  refuse({stored.begin(), stored.begin() + stored.size() / 2}, "not a ZIP archive");
  std::vector<uint8_t> flipped = stored;
  flipped[120] ^= 0x01;  // inside the first member's data
  refuse(flipped, "CRC mismatch");
  std::vector<uint8_t> bad_deflate = deflated;
  for (size_t i = 60; i < 90; ++i) bad_deflate[i] = 0xFF;
  refuse(bad_deflate, "t.npz:");
  // Every truncation and every single-byte corruption fails cleanly.
  for (size_t n = 0; n < deflated.size(); ++n) {
    CAPTURE(n);
    CHECK_THROWS_AS(parse_npz(deflated.data(), n, "cut.npz"), Error);
    std::vector<uint8_t> c = deflated;
    c[n] ^= 0xA5;
    try {
      parse_npz(c.data(), c.size(), "c.npz");  // some bytes (timestamps) do not matter
    } catch (const Error& e) {
      CHECK(e.exit_code() == 3);
    }
  }
}

// Its own CTest entry (unit.io.npz_niqe_params); skipped (exit 77) without the file.
TEST_CASE("npz: NIQE pristine parameters") {
  const std::string path = rass::test::require_niqe_params();
  const NpzFile npz = read_npz(path);
  REQUIRE(npz.arrays.count("mu_pris_param"));
  REQUIRE(npz.arrays.count("cov_pris_param"));
  REQUIRE(npz.arrays.count("gaussian_window"));
  const NpyArray& mu = npz.arrays.at("mu_pris_param");
  const NpyArray& cov = npz.arrays.at("cov_pris_param");
  const NpyArray& window = npz.arrays.at("gaussian_window");
  CHECK(mu.dtype == DType::f64);
  CHECK(mu.shape == std::vector<int64_t>{1, 36});
  CHECK(cov.shape == std::vector<int64_t>{36, 36});
  CHECK(window.shape == std::vector<int64_t>{7, 7});
  const std::vector<double> w = npy_to_f64(window);
  CHECK(std::accumulate(w.begin(), w.end(), 0.0) == doctest::Approx(1.0).epsilon(1e-9));
  const std::vector<double> c = npy_to_f64(cov);
  CHECK(c[1] == c[36]);  // covariance is symmetric
}
