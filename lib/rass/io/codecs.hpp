// Private to lib/rass/io: the per-format codecs behind image_io.hpp. Each
// decoder gets a non-empty buffer already sniffed as its format; each encoder
// gets an Image already checked to be well formed (see image_io.cpp).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rass/core/image.hpp"
#include "rass/io/image_io.hpp"

namespace rass::detail {

// Refuses zero or absurd sizes before any pixel buffer is allocated: the pixel
// limit (check_pixel_limit), at most 65535 per side and 2^31 samples. Throws
// Error(bad_input) naming the file.
void check_dimensions(const std::string& name, uint64_t width, uint64_t height,
                      uint64_t channels);

constexpr bool host_is_little_endian() {
  return __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
}

// PNG's file signature and its big-endian chunk lengths and CRCs.
constexpr uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
inline uint32_t load_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// palette_indices: a palette image decodes to its indices (one 8-bit channel)
// instead of its colours. decode_png takes the fast path (png_deflate.cpp:
// libdeflate, for intact non-interlaced 8/16-bit gray/RGB(A) files) and hands
// every other file to decode_png_libpng, so both give the same pixels and,
// for a bad file, the same error.
Image decode_png(const uint8_t* bytes, size_t size, const std::string& name,
                 bool palette_indices = false);
Image decode_png_libpng(const uint8_t* bytes, size_t size, const std::string& name,
                        bool palette_indices = false);
// The fast path alone: true and *out filled when it took the file, false when
// it left it to libpng. Throws only for the checks both paths share (pixel
// limit, IDAT data far too short for the declared size).
bool decode_png_fast(const uint8_t* bytes, size_t size, const std::string& name, Image* out);
// Throws Error(bad_input) "<name>: truncated PNG data" when idat_bytes of
// deflate data cannot hold pixel_bytes (deflate stops near 1032:1).
void check_enough_png_data(const std::string& name, uint64_t idat_bytes, uint64_t pixel_bytes);
Image decode_jpeg(const uint8_t* bytes, size_t size, const std::string& name);
// The header's width and height (libjpeg's jpeg_read_header); {0, 0} when it cannot be read.
std::pair<int, int> jpeg_header_size(const uint8_t* bytes, size_t size);
// `raw`: samples as stored (a label map's class values, whatever maxval),
// not scaled to the depth's full range; PBM white 1, black 0 (Pillow's and
// OpenCV's reading; 255 and 0 otherwise).
Image decode_pnm(const uint8_t* bytes, size_t size, const std::string& name, bool raw = false);
// The header's width and height; {0, 0} when it cannot be read.
std::pair<int, int> pnm_header_size(const uint8_t* bytes, size_t size);
int pnm_header_depth(const uint8_t* bytes, size_t size);  // 8, 16, or 0 when unreadable

// libdeflate at opt.png_compression (0 = stored); filter 'up' at level 1,
// libpng's adaptive choice (least sum of absolute differences) above.
std::vector<uint8_t> encode_png(const Image& img, const EncodeOptions& opt);
// The same with one filter type (0 none, 1 sub, 2 up, 3 average, 4 Paeth) on
// every row, or -1 for encode_png's choice: for the tests of the unfilters.
std::vector<uint8_t> encode_png_with_filter(const Image& img, int level, int filter);
std::vector<uint8_t> encode_jpeg(const Image& img, const EncodeOptions& opt);
std::vector<uint8_t> encode_pnm(const Image& img);

}  // namespace rass::detail
