// image_header_size: the declared size of a PNG (IHDR), JPEG (libjpeg's
// header read) or PNM (its header), without decoding pixels.
#include "rass/io/codecs.hpp"
#include "rass/io/image_io.hpp"

namespace rass {

namespace {

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

std::pair<int, int> checked(uint32_t w, uint32_t h) {
  if (w == 0 || h == 0 || w > 0x7FFFFFFFu || h > 0x7FFFFFFFu) return {0, 0};
  return {int(w), int(h)};
}

// IHDR is the first chunk: signature (8), length (4), "IHDR", width, height.
std::pair<int, int> png_size(const uint8_t* b, size_t n) {
  if (n < 24 || b[12] != 'I' || b[13] != 'H' || b[14] != 'D' || b[15] != 'R') return {0, 0};
  return checked(be32(b + 16), be32(b + 20));
}

}  // namespace

std::pair<int, int> image_header_size(const uint8_t* bytes, size_t size) {
  switch (sniff_format(bytes, size)) {
    case ImageFormat::png: return png_size(bytes, size);
    case ImageFormat::jpeg: return detail::jpeg_header_size(bytes, size);
    case ImageFormat::pnm: return detail::pnm_header_size(bytes, size);
    case ImageFormat::unknown: break;
  }
  return {0, 0};
}

int image_header_depth(const uint8_t* bytes, size_t size) {
  switch (sniff_format(bytes, size)) {
    case ImageFormat::png: return size > 24 ? (bytes[24] == 16 ? 16 : 8) : 0;  // IHDR's bit depth
    case ImageFormat::jpeg: return 8;
    case ImageFormat::pnm: return detail::pnm_header_depth(bytes, size);
    case ImageFormat::unknown: break;
  }
  return 0;
}

}  // namespace rass
