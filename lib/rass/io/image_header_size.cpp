// image_header_size: the declared size of a PNG (IHDR), JPEG (the first
// start-of-frame marker) or PNM (its header), without decoding pixels.
#include "rass/io/codecs.hpp"
#include "rass/io/image_io.hpp"

namespace rass {

namespace {

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }
uint32_t be16(const uint8_t* p) { return uint32_t(p[0]) << 8 | p[1]; }

std::pair<int, int> checked(uint32_t w, uint32_t h) {
  if (w == 0 || h == 0 || w > 0x7FFFFFFFu || h > 0x7FFFFFFFu) return {0, 0};
  return {int(w), int(h)};
}

// IHDR is the first chunk: signature (8), length (4), "IHDR", width, height.
std::pair<int, int> png_size(const uint8_t* b, size_t n) {
  if (n < 24 || b[12] != 'I' || b[13] != 'H' || b[14] != 'D' || b[15] != 'R') return {0, 0};
  return checked(be32(b + 16), be32(b + 20));
}

// Markers after SOI: each FF xx (fill FFs allowed) with a 2-byte length,
// except RSTn/TEM, which stand alone. SOF0..SOF15 but DHT (C4), JPG (C8) and
// DAC (CC) hold [precision, height, width].
std::pair<int, int> jpeg_size(const uint8_t* b, size_t n) {
  size_t i = 2;
  while (i + 1 < n) {
    if (b[i] != 0xFF) return {0, 0};
    while (i + 1 < n && b[i + 1] == 0xFF) ++i;
    if (i + 1 >= n) break;
    const uint8_t m = b[i + 1];
    i += 2;
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;
    if (m == 0xD9 || m == 0xDA || i + 2 > n) return {0, 0};  // end or scan data before any frame
    const uint32_t len = be16(b + i);
    if (len < 2) return {0, 0};
    if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
      if (i + 7 > n) return {0, 0};
      return checked(be16(b + i + 5), be16(b + i + 3));
    }
    i += len;
  }
  return {0, 0};
}

}  // namespace

std::pair<int, int> image_header_size(const uint8_t* bytes, size_t size) {
  switch (sniff_format(bytes, size)) {
    case ImageFormat::png: return png_size(bytes, size);
    case ImageFormat::jpeg: return jpeg_size(bytes, size);
    case ImageFormat::pnm: return detail::pnm_header_size(bytes, size);
    case ImageFormat::unknown: break;
  }
  return {0, 0};
}

}  // namespace rass
