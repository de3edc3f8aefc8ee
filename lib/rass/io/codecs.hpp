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

// palette_indices: a palette image decodes to its indices (one 8-bit channel)
// instead of its colours.
Image decode_png(const uint8_t* bytes, size_t size, const std::string& name,
                 bool palette_indices = false);
Image decode_jpeg(const uint8_t* bytes, size_t size, const std::string& name);
Image decode_pnm(const uint8_t* bytes, size_t size, const std::string& name);

std::vector<uint8_t> encode_png(const Image& img, const EncodeOptions& opt);
std::vector<uint8_t> encode_jpeg(const Image& img, const EncodeOptions& opt);
std::vector<uint8_t> encode_pnm(const Image& img);

}  // namespace rass::detail
