// The libdeflate PNG encoder and the decoder's fast path, against libpng:
// every filter type, bit depth and channel count round trips through libpng;
// the fast path takes the files rass writes and gives libpng's pixels; on
// damaged files decode_png does exactly what libpng does (same pixels or the
// same error).
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/rng.hpp"
#include "rass/io/codecs.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/npy.hpp"

using namespace rass;

namespace {

// Noise over a gradient: every filter type wins somewhere under the adaptive choice.
Image noisy(int w, int h, int c, int depth, uint64_t seed) {
  Image img(w, h, c, depth);
  Rng rng(seed, "png-test", "pixels");
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k) {
        const size_t i = (size_t(y) * w + x) * c + k;
        const uint32_t r = uint32_t(rng.next_u64() & 0xffff);
        if (depth == 16)
          img.u16()[i] = uint16_t(x * 977 + y * 131 + k * 7000 + (r & 0x3ff));
        else
          img.data[i] = uint8_t(x * 3 + y * 2 + k * 60 + (r & 0x1f));
      }
  return img;
}

std::string outcome(const std::vector<uint8_t>& png, bool fast) {
  try {
    const Image img = fast ? detail::decode_png(png.data(), png.size(), "f.png")
                           : detail::decode_png_libpng(png.data(), png.size(), "f.png");
    return std::to_string(img.width) + "x" + std::to_string(img.height) + "x" + std::to_string(img.channels) + "@" +
           std::to_string(img.depth) + ":" + std::string(img.data.begin(), img.data.end());
  } catch (const Error& e) {
    return std::string("error ") + std::to_string(e.exit_code()) + ": " + e.what();
  }
}

}  // namespace

TEST_CASE("PNG encoder: every filter, depth and channel count round trips through libpng and the fast path") {
  for (int depth : {8, 16})
    for (int channels = 1; channels <= 4; ++channels)
      for (int width : {1, 2, 3, 5, 8, 9, 33})
        for (int filter = -1; filter <= 4; ++filter) {
          CAPTURE(depth);
          CAPTURE(channels);
          CAPTURE(width);
          CAPTURE(filter);
          const Image img = noisy(width, 7, channels, depth, uint64_t(width * 10 + channels));
          for (int level : {0, 1, 6}) {
            CAPTURE(level);
            const std::vector<uint8_t> png = detail::encode_png_with_filter(img, level, filter);
            const Image by_libpng = detail::decode_png_libpng(png.data(), png.size(), "rt.png");
            CHECK(by_libpng.data == img.data);
            Image by_fast;
            REQUIRE(detail::decode_png_fast(png.data(), png.size(), "rt.png", &by_fast));
            CHECK(by_fast.width == width);
            CHECK(by_fast.channels == channels);
            CHECK(by_fast.depth == depth);
            CHECK(by_fast.data == img.data);
          }
        }
}

TEST_CASE("PNG encoder: levels 0-9 all decode; level 0 is stored, level 1 near the adaptive size") {
  const Image img = noisy(200, 64, 3, 8, 5);
  size_t stored = 0, fast = 0, adaptive = 0;
  for (int level = 0; level <= 9; ++level) {
    EncodeOptions opt;
    opt.png_compression = level;
    const std::vector<uint8_t> png = encode_image(img, ImageFormat::png, opt);
    CHECK(detail::decode_png_libpng(png.data(), png.size(), "l.png").data == img.data);
    if (level == 0) stored = png.size();
    if (level == 1) fast = png.size();
    if (level == 6) adaptive = png.size();
  }
  CHECK(stored > img.data.size());
  CHECK(fast < stored * 3 / 4);
  CHECK(fast < adaptive * 11 / 10);
  EncodeOptions bad;
  bad.png_compression = 10;
  CHECK_THROWS_AS(encode_image(img, ImageFormat::png, bad), Error);
}

TEST_CASE("PNG encoder: large images are split into IDAT chunks that libpng reads") {
  const Image img = noisy(1200, 700, 4, 8, 9);  // 3.4 MB of samples, over 1 MiB compressed
  EncodeOptions opt;
  opt.png_compression = 0;
  const std::vector<uint8_t> png = encode_image(img, ImageFormat::png, opt);
  size_t idat_chunks = 0;
  for (size_t pos = 8; pos + 8 <= png.size();) {
    const size_t len = (size_t(png[pos]) << 24) | (size_t(png[pos + 1]) << 16) | (size_t(png[pos + 2]) << 8) | png[pos + 3];
    if (std::memcmp(&png[pos + 4], "IDAT", 4) == 0) ++idat_chunks;
    pos += 12 + len;
  }
  CHECK(idat_chunks >= 3);
  CHECK(detail::decode_png_libpng(png.data(), png.size(), "big.png").data == img.data);
  CHECK(decode_image(png, "big.png").data == img.data);
}

TEST_CASE("PNG fast path: files written by other encoders decode as libpng decodes them") {
  // Fixtures from PIL (make_image_fixtures.py, make_images.py) and the examples:
  // what the fast path takes must match libpng; the rest goes to libpng anyway.
  int taken = 0, files = 0;
  for (const std::string& dir : {std::string(RASS_FIXTURES), std::string(RASS_FIXTURES) + "/images",
                                std::string(RASS_SOURCE_DIR) + "/examples/images"})
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (entry.path().extension() != ".png") continue;
      CAPTURE(entry.path().string());
      const std::vector<uint8_t> bytes = read_file_bytes(entry.path().string());
      ++files;
      Image fast;
      if (detail::decode_png_fast(bytes.data(), bytes.size(), "x.png", &fast)) {
        ++taken;
        const Image ref = detail::decode_png_libpng(bytes.data(), bytes.size(), "x.png");
        CHECK(fast.width == ref.width);
        CHECK(fast.height == ref.height);
        CHECK(fast.channels == ref.channels);
        CHECK(fast.depth == ref.depth);
        CHECK(fast.data == ref.data);
      }
      CHECK(outcome(bytes, true) == outcome(bytes, false));
    }
  CHECK(files >= 10);
  CHECK(taken >= 5);  // the 8/16-bit gray/RGB(A) fixtures and the examples
}

TEST_CASE("PNG fast path: damaged files give libpng's pixels or libpng's error") {
  std::vector<std::vector<uint8_t>> files = {
      detail::encode_png_with_filter(noisy(13, 6, 3, 8, 1), 6, -1),
      detail::encode_png_with_filter(noisy(7, 5, 2, 16, 2), 1, 4),
  };
  Rng rng(3, "damage", "bytes");
  int differing = 0, cases = 0;
  for (const auto& good : files) {
    // Every single-byte change at every position (header, CRCs, zlib stream, IEND) ...
    for (size_t pos = 0; pos < good.size(); ++pos)
      for (uint8_t flip : {uint8_t(0x01), uint8_t(0x80), uint8_t(0xff)}) {
        std::vector<uint8_t> bad = good;
        bad[pos] ^= flip;
        ++cases;
        if (outcome(bad, true) != outcome(bad, false)) {
          ++differing;
          CAPTURE(pos);
          CAPTURE(int(flip));
          CHECK(outcome(bad, true) == outcome(bad, false));
        }
      }
    // ... every truncation, and a few random multi-byte changes.
    for (size_t n = 1; n < good.size(); ++n) {
      std::vector<uint8_t> cut(good.begin(), good.begin() + long(n));
      CHECK(outcome(cut, true) == outcome(cut, false));
    }
    for (int k = 0; k < 300; ++k) {
      std::vector<uint8_t> bad = good;
      for (int j = 0; j < 4; ++j) bad[rng.next_u64() % bad.size()] = uint8_t(rng.next_u64());
      CHECK(outcome(bad, true) == outcome(bad, false));
    }
  }
  CHECK(cases > 1000);
  CHECK(differing == 0);
}

TEST_CASE("PNG fast path: a file with valid CRCs but a bad filter byte is libpng's error") {
  // Level 0 with filter 'none' stores the rows as they are, so row 1's filter
  // byte can be set to 5 in place; adler32 and the chunk CRC are then
  // recomputed here, so only the unfilter can notice. The fast path must leave
  // the file to libpng, and libpng must refuse it.
  const Image img = noisy(4, 3, 1, 8, 4);
  std::vector<uint8_t> png = detail::encode_png_with_filter(img, 0, 0);
  size_t pos = 8;
  while (std::memcmp(&png[pos + 4], "IDAT", 4) != 0)
    pos += 12 + ((size_t(png[pos]) << 24) | (size_t(png[pos + 1]) << 16) | (size_t(png[pos + 2]) << 8) | png[pos + 3]);
  const size_t len = (size_t(png[pos]) << 24) | (size_t(png[pos + 1]) << 16) | (size_t(png[pos + 2]) << 8) | png[pos + 3];
  uint8_t* z = &png[pos + 8];
  // zlib header (2) + stored block header (5) + row 0 (1 + 4) -> row 1's filter byte.
  REQUIRE(len == 2 + 5 + 3 * 5 + 4);
  REQUIRE(z[2 + 5 + 5] == 0);
  z[2 + 5 + 5] = 5;
  // adler32 of the raw data, then the chunk CRC (zlib's rules, computed here).
  uint32_t s1 = 1, s2 = 0;
  for (size_t i = 0; i < 15; ++i) {
    s1 = (s1 + z[7 + i]) % 65521;
    s2 = (s2 + s1) % 65521;
  }
  const uint32_t adler = (s2 << 16) | s1;
  for (int i = 0; i < 4; ++i) z[22 + i] = uint8_t(adler >> (24 - 8 * i));
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < 4 + len; ++i) {
    crc ^= png[pos + 4 + i];
    for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
  }
  crc ^= 0xffffffffu;
  for (int i = 0; i < 4; ++i) png[pos + 8 + len + i] = uint8_t(crc >> (24 - 8 * i));
  Image unused;
  CHECK_FALSE(detail::decode_png_fast(png.data(), png.size(), "f5.png", &unused));
  const std::string libpng = outcome(png, false);
  CHECK(libpng.rfind("error", 0) == 0);
  CHECK(outcome(png, true) == libpng);
}

// Low-bit-depth gray label maps, against what mmseg reads from the same
// files (np.array of Pillow's image; tests/fixtures/make_label_bitdepth_fixtures.py):
// a 1-bit mask holds classes 0 and 1 (it was read as 0/255, so class 1
// became the ignore index); 4-bit gray is scaled as Pillow's "L;4".
TEST_CASE("label maps: 1-bit gray gives 0/1 and 4-bit gray Pillow's levels") {
  for (const char* stem : {"label_gray1", "label_gray4"}) {
    CAPTURE(stem);
    const std::string dir = std::string(RASS_FIXTURES) + "/io/";
    const Image got = read_label_image(dir + stem + ".png");
    const NpyArray want = read_npy(dir + stem + ".npy");
    REQUIRE(want.shape.size() == 2);
    REQUIRE(got.channels == 1);
    REQUIRE(got.depth == 8);
    REQUIRE(got.height == want.shape[0]);
    REQUIRE(got.width == want.shape[1]);
    for (size_t i = 0; i < want.data.size(); ++i) CHECK(int(got.u8()[i]) == int(want.data[i]));
  }
  // As an image (not a label map) a 1-bit gray PNG stays 0/255, as Pillow's convert("L").
  const Image img = read_image(std::string(RASS_FIXTURES) + "/io/label_gray1.png");
  CHECK(int(img.u8()[1]) == 255);
}
