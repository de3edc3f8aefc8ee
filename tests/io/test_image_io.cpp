// Image codecs: exact PNG/PNM round trips, JPEG quality behaviour, decoder
// paths only real-world files use (fixtures from tests/fixtures/
// make_image_fixtures.py), sniffing, and the errors bad input must raise.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/io/image_io.hpp"

using namespace rass;

namespace {

std::string fixture(const std::string& name) { return std::string(RASS_FIXTURES) + "/" + name; }

std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

// The sample formulas of make_image_fixtures.py.
int s8(int x, int y, int c) { return (37 * x + 71 * y + 101 * c) & 0xFF; }
int s16(int x, int y, int c) { return (9001 * x + 4099 * y + 20011 * c) & 0xFFFF; }

Image pattern(int w, int h, int c, int depth) {
  Image img(w, h, c, depth);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k) {
        const size_t i = (static_cast<size_t>(y) * w + x) * c + k;
        if (depth == 16)
          img.u16()[i] = static_cast<uint16_t>(s16(x, y, k));
        else
          img.data[i] = static_cast<uint8_t>(s8(x, y, k));
      }
  return img;
}

// A photo-like image: smooth colour gradients plus mild deterministic texture.
Image smooth_rgb(int w, int h, int channels = 3) {
  Image img(w, h, channels);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < channels; ++k) {
        const double v = 128 + 80 * std::sin(0.07 * x + 0.9 * k) * std::cos(0.05 * y - 0.4 * k) +
                         8 * std::sin(1.3 * x + 0.7 * y);
        img.data[(static_cast<size_t>(y) * w + x) * channels + k] = static_cast<uint8_t>(v);
      }
  return img;
}

double psnr(const Image& a, const Image& b) {
  REQUIRE(a.data.size() == b.data.size());
  double se = 0;
  for (size_t i = 0; i < a.data.size(); ++i) {
    const double d = double(a.data[i]) - double(b.data[i]);
    se += d * d;
  }
  const double mse = se / static_cast<double>(a.data.size());
  return mse == 0 ? 99.0 : 10 * std::log10(255.0 * 255.0 / mse);
}

// Runs `f`, which must throw rass::Error with `code` and a message holding both
// `name` (when given) and `what`.
template <class F>
void check_error(F&& f, ExitCode code, const std::string& name, const std::string& what) {
  bool threw = false;
  try {
    f();
  } catch (const Error& e) {
    threw = true;
    const std::string msg = e.what();
    INFO("message: " << msg);
    CHECK(e.code() == code);
    CHECK(msg.find(name) != std::string::npos);
    CHECK(msg.find(what) != std::string::npos);
  }
  CHECK_MESSAGE(threw, "expected an error containing '" << what << "'");
}

void check_bad_input(const std::vector<uint8_t>& bytes, const std::string& name,
                     const std::string& what) {
  check_error([&] { decode_image(bytes, name); }, ExitCode::bad_input, name, what);
}

// PNG chunk CRC (to forge headers for the tests).
uint32_t crc32_of(const uint8_t* p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
  }
  return ~c;
}

void put_be32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24), p[1] = uint8_t(v >> 16), p[2] = uint8_t(v >> 8), p[3] = uint8_t(v);
}

// The chroma sampling byte of the first component in a baseline JPEG's SOF0.
int luma_sampling(const std::vector<uint8_t>& jpeg) {
  for (size_t i = 2; i + 12 < jpeg.size(); ++i)
    if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xC0) return jpeg[i + 11];
  return -1;
}

struct TempDir {
  std::filesystem::path path = std::filesystem::temp_directory_path() /
                               ("rass-test-image-io-" + std::to_string(::getpid()));
  TempDir() { std::filesystem::create_directories(path); }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

}  // namespace

TEST_CASE("PNG round trip is exact for 8/16-bit and 1-4 channels") {
  for (int depth : {8, 16})
    for (int channels = 1; channels <= 4; ++channels)
      for (int level : {0, 6, 9}) {
        CAPTURE(depth);
        CAPTURE(channels);
        CAPTURE(level);
        const Image img = pattern(17, 9, channels, depth);
        EncodeOptions opt;
        opt.png_compression = level;
        const std::vector<uint8_t> png = encode_image(img, ImageFormat::png, opt);
        CHECK(sniff_format(png.data(), png.size()) == ImageFormat::png);
        const Image back = decode_image(png, "rt.png");
        CHECK(back.width == 17);
        CHECK(back.height == 9);
        CHECK(back.channels == channels);
        CHECK(back.depth == depth);
        CHECK(back.data == img.data);
      }
}

TEST_CASE("PNG 16-bit samples are big-endian in the file, native in memory") {
  Image img(1, 1, 1, 16);
  img.u16()[0] = 0x1234;
  const Image back = decode_image(encode_image(img, ImageFormat::png), "one.png");
  CHECK(back.u16()[0] == 0x1234);
}

TEST_CASE("PNG decodes Adam7-interlaced images") {
  const Image rgb16 = read_image(fixture("rgb16_adam7.png"));
  REQUIRE(rgb16.width == 13);
  REQUIRE(rgb16.height == 11);
  REQUIRE(rgb16.channels == 3);
  REQUIRE(rgb16.depth == 16);
  CHECK(rgb16.data == pattern(13, 11, 3, 16).data);

  const Image ga8 = read_image(fixture("ga8_adam7.png"));
  REQUIRE(ga8.channels == 2);
  REQUIRE(ga8.depth == 8);
  CHECK(ga8.data == pattern(9, 7, 2, 8).data);
}

TEST_CASE("PNG 1/2/4-bit gray expands to 8-bit") {
  for (int bits : {1, 2, 4}) {
    CAPTURE(bits);
    const Image img = read_image(fixture("gray" + std::to_string(bits) + ".png"));
    REQUIRE(img.width == 13);
    REQUIRE(img.height == 5);
    REQUIRE(img.channels == 1);
    REQUIRE(img.depth == 8);
    const int levels = (1 << bits) - 1;
    for (int y = 0; y < 5; ++y)
      for (int x = 0; x < 13; ++x)
        CHECK(img.data[y * 13 + x] == ((x + 3 * y) % (1 << bits)) * 255 / levels);
  }
}

TEST_CASE("PNG palettes expand to RGB, or RGBA with tRNS") {
  const int palette[5][3] = {{0, 255, 0}, {50, 215, 10}, {100, 175, 40}, {150, 135, 90},
                             {200, 95, 160}};
  const Image trns = read_image(fixture("palette_trns.png"));
  REQUIRE(trns.channels == 4);
  REQUIRE(trns.depth == 8);
  const int alpha[5] = {0, 128, 255, 255, 255};
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 6; ++x) {
      const int idx = (x + y) % 5;
      const uint8_t* px = &trns.data[(y * 6 + x) * 4];
      CHECK(px[0] == palette[idx][0]);
      CHECK(px[1] == palette[idx][1]);
      CHECK(px[2] == palette[idx][2]);
      CHECK(px[3] == alpha[idx]);
    }

  const Image p4 = read_image(fixture("palette4.png"));  // 4-bit indices, no tRNS
  REQUIRE(p4.channels == 3);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 7; ++x)
      for (int c = 0; c < 3; ++c) CHECK(p4.data[(y * 7 + x) * 3 + c] == palette[(x * y) % 5][c]);

  // scikit-image's sample; expected pixels read from its PLTE/IDAT by hand.
  const Image sk = read_image(fixture("palette_color.png"));
  REQUIRE(sk.width == 10);
  REQUIRE(sk.height == 10);
  REQUIRE(sk.channels == 3);
  auto px = [&](int y, int x) {
    const uint8_t* p = &sk.data[(y * 10 + x) * 3];
    return std::vector<int>{p[0], p[1], p[2]};
  };
  CHECK(px(0, 0) == std::vector<int>{51, 0, 255});
  CHECK(px(0, 9) == std::vector<int>{51, 102, 153});
  CHECK(px(5, 5) == std::vector<int>{102, 51, 255});
  CHECK(px(9, 0) == std::vector<int>{51, 255, 51});
  CHECK(px(3, 7) == std::vector<int>{51, 153, 255});
}

TEST_CASE("JPEG round trip: high PSNR at q95, lower at q30, same size") {
  for (int channels : {1, 3}) {
    CAPTURE(channels);
    const Image img = smooth_rgb(96, 64, channels);
    EncodeOptions hi, lo;
    hi.jpeg_quality = 95;
    lo.jpeg_quality = 30;
    const std::vector<uint8_t> jpeg_hi = encode_image(img, ImageFormat::jpeg, hi);
    const std::vector<uint8_t> jpeg_lo = encode_image(img, ImageFormat::jpeg, lo);
    CHECK(sniff_format(jpeg_hi.data(), jpeg_hi.size()) == ImageFormat::jpeg);
    const Image back_hi = decode_image(jpeg_hi, "hi.jpg");
    const Image back_lo = decode_image(jpeg_lo, "lo.jpg");
    for (const Image* b : {&back_hi, &back_lo}) {
      CHECK(b->width == 96);
      CHECK(b->height == 64);
      CHECK(b->channels == channels);
      CHECK(b->depth == 8);
    }
    const double p_hi = psnr(img, back_hi), p_lo = psnr(img, back_lo);
    CAPTURE(p_hi);
    CAPTURE(p_lo);
    CHECK(p_hi > 42);  // about 46-49 dB with libjpeg-turbo 2.1
    CHECK(p_lo > 30);  // about 33-35 dB
    CHECK(p_lo < p_hi - 8);
    // Decoding is deterministic (integer IDCT).
    CHECK(decode_image(jpeg_hi, "again.jpg").data == back_hi.data);
  }
}

TEST_CASE("JPEG size grows with quality") {
  const Image img = smooth_rgb(128, 96);
  size_t previous = 0;
  for (int q : {5, 20, 40, 60, 75, 90, 95, 100}) {
    EncodeOptions opt;
    opt.jpeg_quality = q;
    const size_t size = encode_image(img, ImageFormat::jpeg, opt).size();
    CAPTURE(q);
    CHECK(size > previous);
    previous = size;
  }
}

TEST_CASE("JPEG chroma subsampling: 4:2:0 by default, 4:4:4 on request") {
  const Image img = smooth_rgb(64, 64);
  EncodeOptions opt;
  const std::vector<uint8_t> sub = encode_image(img, ImageFormat::jpeg, opt);
  opt.jpeg_subsample_420 = false;
  const std::vector<uint8_t> full = encode_image(img, ImageFormat::jpeg, opt);
  CHECK(luma_sampling(sub) == 0x22);
  CHECK(luma_sampling(full) == 0x11);
  CHECK(full.size() > sub.size());
  CHECK(psnr(img, decode_image(full, "444.jpg")) > psnr(img, decode_image(sub, "420.jpg")));
}

TEST_CASE("JPEG output larger than the raw image (noise at q100) is complete") {
  Image noise(64, 64, 3);
  uint32_t state = 12345;
  for (uint8_t& v : noise.data) {
    state = state * 1664525u + 1013904223u;
    v = static_cast<uint8_t>(state >> 24);
  }
  EncodeOptions opt;
  opt.jpeg_quality = 100;
  opt.jpeg_subsample_420 = false;
  const std::vector<uint8_t> jpeg = encode_image(noise, ImageFormat::jpeg, opt);
  CHECK(jpeg.size() > noise.data.size() + 4096);  // past the encoder's first buffer
  CHECK(psnr(noise, decode_image(jpeg, "noise.jpg")) > 30);
}

TEST_CASE("JPEG refuses CMYK, and encoding what JPEG cannot hold") {
  check_bad_input(read_file_bytes(fixture("cmyk.jpg")), "cmyk.jpg", "CMYK");
  check_error([] { encode_image(pattern(4, 4, 3, 16), ImageFormat::jpeg); }, ExitCode::usage, "",
              "8-bit");
  check_error([] { encode_image(pattern(4, 4, 4, 8), ImageFormat::jpeg); }, ExitCode::usage, "",
              "gray or RGB");
  EncodeOptions opt;
  opt.jpeg_quality = 0;
  check_error([&] { encode_image(pattern(4, 4, 3, 8), ImageFormat::jpeg, opt); },
              ExitCode::usage, "", "quality");
}

TEST_CASE("PNM round trip is exact for 8/16-bit gray and RGB") {
  for (int depth : {8, 16})
    for (int channels : {1, 3}) {
      CAPTURE(depth);
      CAPTURE(channels);
      const Image img = pattern(11, 7, channels, depth);
      const std::vector<uint8_t> pnm = encode_image(img, ImageFormat::pnm);
      const std::string header = std::string(channels == 1 ? "P5" : "P6") + "\n11 7\n" +
                                 (depth == 16 ? "65535" : "255") + "\n";
      CHECK(std::string(pnm.begin(), pnm.begin() + header.size()) == header);
      const Image back = decode_image(pnm, "rt.pnm");
      CHECK(back.channels == channels);
      CHECK(back.depth == depth);
      CHECK(back.data == img.data);
    }
  check_error([] { encode_image(pattern(2, 2, 2, 8), ImageFormat::pnm); }, ExitCode::usage, "",
              "gray or RGB");
}

TEST_CASE("PNM reads big-endian 16-bit, ASCII variants, bitmaps, and scales maxval") {
  std::vector<uint8_t> p5 = bytes_of("P5 2 1 1000\n");
  p5.insert(p5.end(), {0x01, 0x02, 0x03, 0xE8});  // 258 and 1000
  const Image wide = decode_image(p5, "wide.pgm");
  REQUIRE(wide.depth == 16);
  CHECK(wide.u16()[0] == (258 * 65535 + 500) / 1000);
  CHECK(wide.u16()[1] == 65535);

  const Image p2 = decode_image(bytes_of("P2\n# a comment\n3 2 # trailing\n15\n0 15 7\n1 2 3\n"),
                                "ascii.pgm");
  REQUIRE(p2.width == 3);
  REQUIRE(p2.height == 2);
  CHECK(p2.data == std::vector<uint8_t>{0, 255, 119, 17, 34, 51});

  const Image p3 = decode_image(bytes_of("P3 1 1 65535 1 300 65535"), "ascii.ppm");
  REQUIRE(p3.channels == 3);
  REQUIRE(p3.depth == 16);
  CHECK(p3.u16()[0] == 1);
  CHECK(p3.u16()[1] == 300);
  CHECK(p3.u16()[2] == 65535);

  const Image p1 = decode_image(bytes_of("P1\n3 2\n0 1 0\n101"), "plain.pbm");
  CHECK(p1.data == std::vector<uint8_t>{255, 0, 255, 0, 255, 0});

  std::vector<uint8_t> p4 = bytes_of("P4\n10 2\n");
  p4.insert(p4.end(), {0xA0, 0x40, 0xFF, 0xC0});  // rows padded to whole bytes
  const Image bits = decode_image(p4, "raw.pbm");
  CHECK(bits.data == std::vector<uint8_t>{0, 255, 0, 255, 255, 255, 255, 255, 255, 0,  //
                                          0, 0, 0, 0, 0, 0, 0, 0, 0, 0});

  // A comment right after maxval (or a P4's height) ends the header at its
  // line end, as libnetpbm reads it (checked with Debian's netpbm 11:
  // pnmtoplainpnm prints "10 1 2", "11 22" and "10101010" for these).
  const Image c1 = decode_image(bytes_of("P5 3 1 255#c\r\n\x01\x02"), "cr.pgm");
  CHECK(c1.data == std::vector<uint8_t>{10, 1, 2});
  const Image c2 = decode_image(bytes_of("P5 2 1 255#c\n\x0b\x16"), "lf.pgm");
  CHECK(c2.data == std::vector<uint8_t>{11, 22});
  const Image c3 = decode_image(bytes_of("P4 8 1#c\n\xAA"), "c.pbm");
  CHECK(c3.data == std::vector<uint8_t>{0, 255, 0, 255, 0, 255, 0, 255});
  check_bad_input(bytes_of("P5 2 1 255#no line end"), "open.pgm", "truncated");

  check_bad_input(bytes_of("P2 2 1 10 3 11"), "over.pgm", "exceeds maxval");
  check_bad_input(bytes_of("P5 2 1 0\n\x01\x02"), "zero.pgm", "maxval");
  check_bad_input(bytes_of("P5 x 1 255\n"), "bad.pgm", "malformed");
}

TEST_CASE("format sniffing, extensions and names") {
  const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  const uint8_t jpeg[] = {0xFF, 0xD8, 0xFF, 0xE0};
  CHECK(sniff_format(png, sizeof png) == ImageFormat::png);
  CHECK(sniff_format(png, 7) == ImageFormat::unknown);
  CHECK(sniff_format(jpeg, sizeof jpeg) == ImageFormat::jpeg);
  CHECK(sniff_format(jpeg, 2) == ImageFormat::unknown);
  for (const char* magic : {"P1", "P2", "P3", "P4", "P5", "P6"})
    CHECK(sniff_format(reinterpret_cast<const uint8_t*>(magic), 2) == ImageFormat::pnm);
  CHECK(sniff_format(reinterpret_cast<const uint8_t*>("P7"), 2) == ImageFormat::unknown);
  CHECK(sniff_format(reinterpret_cast<const uint8_t*>("GIF89a"), 6) == ImageFormat::unknown);
  CHECK(sniff_format(nullptr, 0) == ImageFormat::unknown);

  CHECK(format_from_extension("a/b.PNG") == ImageFormat::png);
  CHECK(format_from_extension("x.jpg") == ImageFormat::jpeg);
  CHECK(format_from_extension("x.JPEG") == ImageFormat::jpeg);
  CHECK(format_from_extension("x.pgm") == ImageFormat::pnm);
  CHECK(format_from_extension("x.ppm") == ImageFormat::pnm);
  CHECK(format_from_extension("x.pnm") == ImageFormat::pnm);
  CHECK(format_from_extension("x.tif") == ImageFormat::unknown);
  CHECK(format_from_extension("dir.png/file") == ImageFormat::unknown);
  CHECK(format_from_extension("-") == ImageFormat::unknown);

  CHECK(parse_format("png") == ImageFormat::png);
  CHECK(parse_format("JPG") == ImageFormat::jpeg);
  CHECK(parse_format("jpeg") == ImageFormat::jpeg);
  CHECK(parse_format("ppm") == ImageFormat::pnm);
  CHECK(parse_format("pgm") == ImageFormat::pnm);
  check_error([] { parse_format("gif"); }, ExitCode::usage, "gif", "expected png, jpeg or pnm");
  for (ImageFormat f : {ImageFormat::png, ImageFormat::jpeg, ImageFormat::pnm})
    CHECK(parse_format(format_name(f)) == f);
}

TEST_CASE("bad input throws Error(bad_input) naming the file") {
  check_bad_input({}, "empty.png", "empty file");
  check_bad_input(bytes_of("GIF89a...."), "anim.gif",
                  "unsupported image format (expected PNG, JPEG or PNM)");

  const std::vector<uint8_t> png = encode_image(pattern(32, 32, 3, 8), ImageFormat::png);
  check_bad_input({png.begin(), png.begin() + png.size() / 2}, "half.png", "truncated PNG data");
  check_bad_input({png.begin(), png.begin() + 20}, "head.png", "truncated PNG data");
  std::vector<uint8_t> flipped = png;
  flipped[png.size() / 2] ^= 0x55;  // inside IDAT: CRC error
  check_bad_input(flipped, "flipped.png", "corrupt PNG data");

  const std::vector<uint8_t> jpeg = encode_image(smooth_rgb(64, 64), ImageFormat::jpeg);
  check_bad_input({jpeg.begin(), jpeg.begin() + jpeg.size() / 2}, "half.jpg",
                  "truncated JPEG data");
  check_bad_input({jpeg.begin(), jpeg.end() - 2}, "no-eoi.jpg", "truncated JPEG data");
  check_bad_input({jpeg.begin(), jpeg.begin() + 4}, "head.jpg", "truncated JPEG data");

  check_bad_input(bytes_of("P5\n4 4\n255\nabc"), "short.pgm", "truncated PNM data");
  check_bad_input(bytes_of("P6 4"), "header.ppm", "truncated PNM data");
  check_bad_input(bytes_of("P5 0 4 255\n"), "zero.pgm", "zero width or height");
  check_bad_input(bytes_of("P5 70000 1 255\n"), "wide.pgm", "too large");
  check_bad_input(bytes_of("P6 40000 40000 255\n"), "big.ppm", "too large");
}

TEST_CASE("absurd PNG headers are refused before allocating") {
  std::vector<uint8_t> png = encode_image(pattern(4, 4, 1, 8), ImageFormat::png);
  auto forge = [&](uint32_t w, uint32_t h) {
    std::vector<uint8_t> f = png;
    put_be32(&f[16], w);  // IHDR data starts at 16; its CRC covers type + data
    put_be32(&f[20], h);
    put_be32(&f[29], crc32_of(&f[12], 17));
    return f;
  };
  check_bad_input(forge(70000, 4), "wide.png", "too large");
  check_bad_input(forge(0, 4), "zero.png", "corrupt PNG data");  // libpng refuses it itself
  check_bad_input(forge(60000, 60000), "huge.png", "too large");
  // 4e8 pixels: over the default pixel limit of 2^28, refused from the header.
  check_bad_input(forge(20000, 20000), "claims.png", "20000x20000 = 400000000 pixels; the pixel limit is 268435456");
  check_bad_input(forge(20000, 20000), "claims.png", "--max-pixels");
  // Without a limit the same header is still refused, by the compressed-data check.
  set_max_pixels(0);
  check_bad_input(forge(20000, 20000), "claims.png", "truncated PNG data");
  set_max_pixels(kDefaultMaxPixels);
}

namespace {
// Restores the default pixel limit when a test case ends, pass or fail.
struct PixelLimit {
  explicit PixelLimit(uint64_t n) { set_max_pixels(n); }
  ~PixelLimit() { set_max_pixels(kDefaultMaxPixels); }
};
}  // namespace

TEST_CASE("the pixel limit is checked from PNG, JPEG and PNM headers") {
  CHECK(kDefaultMaxPixels == 268435456u);
  CHECK(max_pixels() == kDefaultMaxPixels);  // RASS_MAX_PIXELS is not set under ctest

  // JPEG: a real 16x16 baseline file whose SOF0 is rewritten to claim 20000x20000.
  std::vector<uint8_t> jpeg = encode_image(smooth_rgb(16, 16), ImageFormat::jpeg);
  size_t sof = 0;
  for (size_t i = 2; i + 9 < jpeg.size() && !sof; ++i)
    if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xC0) sof = i;
  REQUIRE(sof > 0);
  jpeg[sof + 5] = 20000 >> 8, jpeg[sof + 6] = 20000 & 0xFF;  // height
  jpeg[sof + 7] = 20000 >> 8, jpeg[sof + 8] = 20000 & 0xFF;  // width
  check_bad_input(jpeg, "claims.jpg", "image too large (20000x20000 = 400000000 pixels; the pixel limit is 268435456");
  check_bad_input(bytes_of("P5\n20000 20000\n255\n"), "claims.pgm",
                  "20000x20000 = 400000000 pixels; the pixel limit is 268435456: raise it with --max-pixels N "
                  "or RASS_MAX_PIXELS=N");
  check_bad_input(bytes_of("P4 16385 16385\n"), "claims.pbm", "16385x16385 = 268468225 pixels");

  // A lower limit refuses real, complete images of every format above it...
  const Image img = pattern(16, 16, 3, 8);
  const std::vector<std::vector<uint8_t>> files = {encode_image(img, ImageFormat::png),
                                                   encode_image(img, ImageFormat::jpeg),
                                                   encode_image(img, ImageFormat::pnm)};
  {
    PixelLimit limit(255);
    CHECK(max_pixels() == 255);
    for (const auto& f : files) check_bad_input(f, "16.img", "16x16 = 256 pixels; the pixel limit is 255");
    check_bad_input(encode_image(pattern(16, 16, 1, 8), ImageFormat::png), "gray.png", "pixel limit is 255");
  }
  {
    PixelLimit limit(256);  // ...and accepts them at the limit
    for (const auto& f : files) CHECK(decode_image(f, "16.img").width == 16);
  }
  {
    PixelLimit limit(0);  // 0 = no limit
    for (const auto& f : files) CHECK(decode_image(f, "16.img").width == 16);
    check_pixel_limit("any", 60000, 60000);
  }
  PixelLimit limit(100);
  check_error([] { check_pixel_limit("rec.json", 11, 10); }, ExitCode::bad_input, "rec.json",
              "11x10 = 110 pixels; the pixel limit is 100");
  check_error([] { check_pixel_limit("rec.json", uint64_t{1} << 40, 1); }, ExitCode::bad_input, "rec.json",
              "1099511627776x1; the pixel limit is 100");
  check_pixel_limit("rec.json", 10, 10);
}

TEST_CASE("label maps: palette PNGs decode to their indices, gray images as they are") {
  // VOC-style: 8-bit palette with VOC's colour map, class indices and 255 borders
  // (formula in make_image_fixtures.py).
  const Image voc = read_label_image(fixture("label_voc.png"));
  REQUIRE(voc.width == 11);
  REQUIRE(voc.height == 7);
  REQUIRE(voc.channels == 1);
  REQUIRE(voc.depth == 8);
  for (int y = 0; y < 7; ++y)
    for (int x = 0; x < 11; ++x) {
      const int expected = (x == 0 || y == 0 || x == 10 || y == 6) ? 255 : (x + 5 * y) % 21;
      CHECK(voc.data[size_t(y) * 11 + x] == expected);
    }
  // read_image still gives the colours: index (1 + 5) % 21 = 6 at (1, 1), VOC's
  // "bus", (0, 128, 128) in the VOC colour map.
  const Image colours = read_image(fixture("label_voc.png"));
  REQUIRE(colours.channels == 3);
  const uint8_t* px = &colours.data[(1 * 11 + 1) * 3];
  CHECK(px[0] == 0);
  CHECK(px[1] == 128);
  CHECK(px[2] == 128);

  // 4-bit indices unpack to one byte each; tRNS does not add a channel.
  const Image p4 = read_label_image(fixture("palette4.png"));
  REQUIRE(p4.channels == 1);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 7; ++x) CHECK(p4.data[size_t(y) * 7 + x] == (x * y) % 5);
  const Image trns = read_label_image(fixture("palette_trns.png"));
  REQUIRE(trns.channels == 1);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 6; ++x) CHECK(trns.data[size_t(y) * 6 + x] == (x + y) % 5);

  // Gray label maps (8/16-bit PNG, 8-bit PGM, low bit depths) read as read_image reads them.
  TempDir dir;
  Image gray16 = pattern(5, 4, 1, 16);
  write_image(dir.file("l16.png"), gray16);
  CHECK(read_label_image(dir.file("l16.png")).data == gray16.data);
  CHECK(read_label_image(dir.file("l16.png")).depth == 16);
  write_image(dir.file("l8.pgm"), pattern(5, 4, 1, 8));
  CHECK(read_label_image(dir.file("l8.pgm")).data == pattern(5, 4, 1, 8).data);
  CHECK(read_label_image(fixture("gray2.png")).data == read_image(fixture("gray2.png")).data);
  // A PGM's samples are class values whatever its maxval (read_image scales
  // them to the full range, as an image's): maxval 2 keeps 0, 1, 2; an ASCII
  // map with maxval 1000 keeps 300 and 600 at depth 16; a PBM reads white 1,
  // black 0, as Pillow reads it (read_image: 255 and 0).
  {
    const std::string pgm = std::string("P5\n3 1\n2\n") + char(0) + char(1) + char(2);
    const Image l = decode_label_image(reinterpret_cast<const uint8_t*>(pgm.data()), pgm.size(), "m2.pgm");
    CHECK(l.depth == 8);
    CHECK(l.data == std::vector<uint8_t>{0, 1, 2});
    CHECK(decode_image(reinterpret_cast<const uint8_t*>(pgm.data()), pgm.size(), "m2.pgm").data ==
          std::vector<uint8_t>{0, 128, 255});
    const std::string p2 = "P2\n2 1\n1000\n300 600\n";
    const Image w = decode_label_image(reinterpret_cast<const uint8_t*>(p2.data()), p2.size(), "m1000.pgm");
    REQUIRE(w.depth == 16);
    CHECK(w.u16()[0] == 300);
    CHECK(w.u16()[1] == 600);
    const std::string p1 = "P1\n3 1\n1 0 1\n";
    CHECK(decode_label_image(reinterpret_cast<const uint8_t*>(p1.data()), p1.size(), "b.pbm").data ==
          std::vector<uint8_t>{0, 1, 0});
    CHECK(decode_image(reinterpret_cast<const uint8_t*>(p1.data()), p1.size(), "b.pbm").data ==
          std::vector<uint8_t>{0, 255, 0});
    const std::string p4 = std::string("P4\n3 1\n") + char(0xA0);  // bits 1 0 1
    CHECK(decode_label_image(reinterpret_cast<const uint8_t*>(p4.data()), p4.size(), "b4.pbm").data ==
          std::vector<uint8_t>{0, 1, 0});
  }
  // Any palette PNG gives indices; a colour image keeps its channels (the caller
  // refuses it); bad input stays bad input.
  CHECK(read_label_image(fixture("palette_color.png")).channels == 1);
  write_image(dir.file("rgb.png"), pattern(5, 4, 3, 8));
  CHECK(read_label_image(dir.file("rgb.png")).channels == 3);
  check_error([&] { read_label_image(dir.file("missing.png")); }, ExitCode::bad_input, "missing.png", "cannot open");
  const std::vector<uint8_t> voc_bytes = read_file_bytes(fixture("label_voc.png"));
  check_error([&] { decode_label_image(voc_bytes.data(), voc_bytes.size() - 20, "cut.png"); },
              ExitCode::bad_input, "cut.png", "truncated PNG data");
  PixelLimit limit(50);
  check_error([&] { read_label_image(fixture("label_voc.png")); }, ExitCode::bad_input, "label_voc.png",
              "11x7 = 77 pixels; the pixel limit is 50");
}

TEST_CASE("every truncation of a valid file is refused cleanly") {
  const std::vector<std::vector<uint8_t>> files = {
      encode_image(pattern(9, 5, 4, 16), ImageFormat::png),
      encode_image(smooth_rgb(24, 16), ImageFormat::jpeg),
      encode_image(pattern(9, 5, 3, 16), ImageFormat::pnm),
  };
  for (const auto& file : files)
    for (size_t n = 1; n < file.size(); ++n) {
      CAPTURE(n);
      CHECK_THROWS_AS(decode_image(file.data(), n, "cut"), Error);
    }
}

TEST_CASE("read_image / write_image through files") {
  TempDir dir;
  const Image rgb = smooth_rgb(40, 30);
  write_image(dir.file("a.png"), rgb);
  CHECK(read_image(dir.file("a.png")).data == rgb.data);
  write_image(dir.file("a.ppm"), rgb);
  CHECK(read_image(dir.file("a.ppm")).data == rgb.data);
  write_image(dir.file("a.jpg"), rgb);
  CHECK(psnr(rgb, read_image(dir.file("a.jpg"))) > 38);
  // An explicit format wins over the extension.
  write_image(dir.file("really-a.png.out"), rgb, ImageFormat::jpeg);
  const std::vector<uint8_t> bytes = read_file_bytes(dir.file("really-a.png.out"));
  CHECK(sniff_format(bytes.data(), bytes.size()) == ImageFormat::jpeg);

  check_error([&] { write_image(dir.file("a.tiff"), rgb); }, ExitCode::usage, "a.tiff",
              "cannot tell the image format");
  CHECK_FALSE(file_exists(dir.file("a.tiff")));
  check_error([&] { read_image(dir.file("missing.png")); }, ExitCode::bad_input, "missing.png",
              "cannot open");
  // Only the finished files are left, no temporaries.
  size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path)) n += entry.is_regular_file();
  CHECK(n == 4);
}

TEST_CASE("image_header_size gives the decoded size without decoding") {
  const std::string dir = std::string(RASS_SOURCE_DIR) + "/examples/images/";
  for (const char* name : {"astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"}) {
    CAPTURE(name);
    const std::vector<uint8_t> bytes = read_image_bytes(dir + name);
    const Image img = decode_image(bytes, name);
    CHECK(image_header_size(bytes.data(), bytes.size()) == std::pair<int, int>{img.width, img.height});
  }
  // Encoded here: 8/16-bit PNG, gray and RGB JPEG, PNM with comments.
  for (int channels : {1, 3})
    for (int depth : {8, 16}) {
      const Image img(37, 11, channels, depth);
      for (ImageFormat f : {ImageFormat::png, ImageFormat::jpeg, ImageFormat::pnm}) {
        if (f == ImageFormat::jpeg && depth == 16) continue;
        const std::vector<uint8_t> bytes = encode_image(img, f);
        CHECK(image_header_size(bytes.data(), bytes.size()) == std::pair<int, int>{37, 11});
        CHECK(image_header_depth(bytes.data(), bytes.size()) == decode_image(bytes, "x").depth);
      }
    }
  const std::vector<uint8_t> pnm = bytes_of("P6\n# w\n5 # h\n3\n255\n");
  CHECK(image_header_size(pnm.data(), pnm.size()) == std::pair<int, int>{5, 3});
  // A JPEG whose frame header follows an APP1 segment holding FF bytes.
  std::vector<uint8_t> jpeg = encode_image(Image(9, 4, 3), ImageFormat::jpeg);
  const std::vector<uint8_t> app1{0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xC0, 0xFF, 0xD9};
  jpeg.insert(jpeg.begin() + 2, app1.begin(), app1.end());
  CHECK(image_header_size(jpeg.data(), jpeg.size()) == std::pair<int, int>{9, 4});
  CHECK(decode_image(jpeg, "app1.jpg").width == 9);
  // Stray bytes between markers (libjpeg skips them with a warning, common in
  // camera files): the size is still the decoder's.
  const std::vector<uint8_t> stray{0x00, 0x13, 0x37};
  jpeg.insert(jpeg.begin() + 2 + app1.size(), stray.begin(), stray.end());
  CHECK(image_header_size(jpeg.data(), jpeg.size()) == std::pair<int, int>{9, 4});
  CHECK(decode_image(jpeg, "stray.jpg").width == 9);
  // Unreadable headers: {0, 0}.
  for (const std::string& bad : {std::string("\x89PNG\r\n\x1a\n", 8), std::string("\xFF\xD8\xFF\xDA", 4), std::string("P5 7"),
                                 std::string("GIF89a")}) {
    const std::vector<uint8_t> b = bytes_of(bad);
    CHECK(image_header_size(b.data(), b.size()) == std::pair<int, int>{0, 0});
  }
}
