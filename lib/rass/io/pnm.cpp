// Netpbm: reads P1-P6 (bitmaps become 8-bit 0/255 gray), writes P5/P6.
// Samples are scaled to the full 8- or 16-bit range when maxval is not 255 or
// 65535, since a sample means sample/maxval of full intensity.
#include <cctype>
#include <cstring>

#include "rass/core/error.hpp"
#include "rass/io/codecs.hpp"

namespace rass::detail {

namespace {

class PnmParser {
 public:
  PnmParser(const uint8_t* bytes, size_t size, const std::string& name)
      : p_(bytes), size_(size), name_(name) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  void advance(size_t n) { pos_ += n; }
  const uint8_t* here() const { return p_ + pos_; }

  // A decimal number after whitespace and '#' comments.
  uint32_t number(const char* what) {
    skip_space_and_comments();
    if (pos_ == size_) fail_truncated();
    if (!std::isdigit(p_[pos_])) fail(std::string("malformed PNM data (expected ") + what + ")");
    uint64_t v = 0;
    while (pos_ < size_ && std::isdigit(p_[pos_])) {
      v = v * 10 + static_cast<uint64_t>(p_[pos_++] - '0');
      if (v > 0xFFFFFFFFu) fail(std::string("PNM header: ") + what + " is out of range");
    }
    return static_cast<uint32_t>(v);
  }

  // One '0' or '1' of a plain bitmap, where bits need no separator.
  uint8_t bit() {
    skip_space_and_comments();
    if (pos_ == size_) fail_truncated();
    const uint8_t c = p_[pos_++];
    if (c != '0' && c != '1') fail("malformed PNM data (expected 0 or 1)");
    return c == '1';
  }

  // Binary rasters start after exactly one whitespace byte, or after a
  // comment that follows maxval directly ("255#made by x\n"): libnetpbm's
  // pm_getuint reads one character past the digits through pm_getc, which
  // returns a whole comment as its closing '\n' or '\r'.
  void single_whitespace() {
    if (pos_ == size_) fail_truncated();
    if (p_[pos_] == '#') {
      while (pos_ < size_ && p_[pos_] != '\n' && p_[pos_] != '\r') ++pos_;
      if (pos_ == size_) fail_truncated();
    } else if (!std::isspace(p_[pos_])) {
      fail("malformed PNM header");
    }
    ++pos_;
  }

  [[noreturn]] void fail(const std::string& what) const { throw_bad_input(name_, what); }
  [[noreturn]] void fail_truncated() const { fail("truncated PNM data"); }

 private:
  void skip_space_and_comments() {
    while (pos_ < size_) {
      if (p_[pos_] == '#') {
        while (pos_ < size_ && p_[pos_] != '\n' && p_[pos_] != '\r') ++pos_;
      } else if (std::isspace(p_[pos_])) {
        ++pos_;
      } else {
        break;
      }
    }
  }

  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& name_;
};

uint32_t rescale(uint32_t v, uint32_t maxval, uint32_t full) {
  return (v * full + maxval / 2) / maxval;
}

void store(Image& img, size_t i, uint32_t v) {
  if (img.depth == 16)
    img.u16()[i] = static_cast<uint16_t>(v);
  else
    img.data[i] = static_cast<uint8_t>(v);
}

// P4: rows of packed bits, most significant first, 1 = black (255 white,
// 0 black; with `raw` 1 white, 0 black, as Pillow and OpenCV read a PBM).
void read_packed_bits(PnmParser& in, Image& img, bool raw) {
  const size_t row_bytes = (static_cast<size_t>(img.width) + 7) / 8;
  if (in.remaining() / row_bytes < static_cast<size_t>(img.height)) in.fail_truncated();
  for (int y = 0; y < img.height; ++y) {
    const uint8_t* row = in.here() + static_cast<size_t>(y) * row_bytes;
    for (int x = 0; x < img.width; ++x) {
      const bool black = (row[x / 8] >> (7 - x % 8)) & 1;
      img.data[static_cast<size_t>(y) * img.width + x] = black ? 0 : raw ? 1 : 255;
    }
  }
}

// P5/P6: 8-bit samples, or 16-bit big-endian ones when maxval > 255;
// scaled to the full range of the depth, unless `raw`.
void read_binary_samples(PnmParser& in, Image& img, uint32_t maxval, bool raw) {
  const size_t n = img.samples();
  const size_t bytes_per_sample = img.depth / 8;
  if (in.remaining() / bytes_per_sample < n) in.fail_truncated();
  const uint8_t* src = in.here();
  if (maxval == 255) {
    std::memcpy(img.data.data(), src, n);
    return;
  }
  const uint32_t full = img.depth == 16 ? 65535 : 255;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t v = bytes_per_sample == 2 ? (uint32_t{src[2 * i]} << 8) | src[2 * i + 1] : src[i];
    if (v > maxval) in.fail("PNM sample value exceeds maxval");
    store(img, i, maxval == full || raw ? v : rescale(v, maxval, full));
  }
}

// P2/P3: decimal samples (scaled as the binary ones).
void read_ascii_samples(PnmParser& in, Image& img, uint32_t maxval, bool raw) {
  const uint32_t full = img.depth == 16 ? 65535 : 255;
  for (size_t i = 0, n = img.samples(); i < n; ++i) {
    const uint32_t v = in.number("a sample value");
    if (v > maxval) in.fail("PNM sample value exceeds maxval");
    store(img, i, maxval == full || raw ? v : rescale(v, maxval, full));
  }
}

}  // namespace

Image decode_pnm(const uint8_t* bytes, size_t size, const std::string& name, bool raw) {
  PnmParser in(bytes, size, name);
  const char kind = static_cast<char>(bytes[1]);  // '1'..'6', checked by the sniffer
  in.advance(2);
  const bool bitmap = kind == '1' || kind == '4';
  const bool ascii = kind <= '3';
  const int channels = (kind == '3' || kind == '6') ? 3 : 1;

  const uint32_t width = in.number("the width");
  const uint32_t height = in.number("the height");
  const uint32_t maxval = bitmap ? 255 : in.number("maxval");
  if (maxval == 0 || maxval > 65535) in.fail("PNM maxval must be 1..65535");
  if (!ascii) in.single_whitespace();
  check_dimensions(name, width, height, static_cast<uint64_t>(channels));

  // Each sample takes at least one byte in every variant but P4, so short data
  // is refused before the pixel buffer is allocated.
  const uint64_t samples = uint64_t{width} * height * channels;
  if (kind != '4' && in.remaining() < samples) in.fail_truncated();

  Image img(static_cast<int>(width), static_cast<int>(height), channels, maxval > 255 ? 16 : 8);
  if (kind == '4') {
    read_packed_bits(in, img, raw);
  } else if (kind == '1') {
    for (size_t i = 0; i < img.samples(); ++i) {
      const bool black = in.bit();
      img.data[i] = black ? 0 : raw ? 1 : 255;
    }
  } else if (ascii) {
    read_ascii_samples(in, img, maxval, raw);
  } else {
    read_binary_samples(in, img, maxval, raw);
  }
  return img;
}

std::pair<int, int> pnm_header_size(const uint8_t* bytes, size_t size) {
  if (size < 2) return {0, 0};
  const std::string name;
  PnmParser in(bytes, size, name);
  in.advance(2);
  try {
    const uint32_t width = in.number("the width"), height = in.number("the height");
    if (width == 0 || height == 0 || width > 0x7FFFFFFFu || height > 0x7FFFFFFFu) return {0, 0};
    return {int(width), int(height)};
  } catch (const Error&) {
    return {0, 0};
  }
}

int pnm_header_depth(const uint8_t* bytes, size_t size) {
  if (size < 2 || bytes[0] != 'P') return 0;
  const char kind = char(bytes[1]);
  if (kind == '1' || kind == '4') return 8;  // bitmaps: read as 8-bit 0/255
  if (kind != '2' && kind != '3' && kind != '5' && kind != '6') return 0;
  const std::string name;
  PnmParser in(bytes, size, name);
  in.advance(2);
  try {
    in.number("the width");
    in.number("the height");
    return in.number("the maximum value") > 255 ? 16 : 8;
  } catch (const Error&) {
    return 0;
  }
}

std::vector<uint8_t> encode_pnm(const Image& img) {
  if (img.channels != 1 && img.channels != 3)
    throw_usage("PNM needs a gray or RGB image (got " + std::to_string(img.channels) +
                " channels); write PNG to keep alpha");
  const std::string header = std::string(img.channels == 1 ? "P5" : "P6") + "\n" +
                             std::to_string(img.width) + " " + std::to_string(img.height) +
                             "\n" + (img.depth == 16 ? "65535" : "255") + "\n";
  std::vector<uint8_t> out(header.begin(), header.end());
  if (img.depth == 8) {
    out.insert(out.end(), img.data.begin(), img.data.end());
    return out;
  }
  out.reserve(out.size() + img.data.size());
  const uint16_t* s = img.u16();
  for (size_t i = 0, n = img.samples(); i < n; ++i) {  // big-endian in the file
    out.push_back(static_cast<uint8_t>(s[i] >> 8));
    out.push_back(static_cast<uint8_t>(s[i] & 0xFF));
  }
  return out;
}

}  // namespace rass::detail
