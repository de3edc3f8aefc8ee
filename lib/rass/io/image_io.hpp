// Image codecs: PNG (libpng), JPEG (libjpeg-turbo), PNM (P5/P6, also P2/P3 on
// input). The input format is sniffed from magic bytes, never the extension;
// the output format comes from the extension or an explicit choice.
// Every decode error names the file and what was wrong (exit code 3).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rass/core/image.hpp"

namespace rass {

enum class ImageFormat { unknown, png, jpeg, pnm };

const char* format_name(ImageFormat f);
// Magic bytes: PNG \x89PNG\r\n\x1a\n, JPEG FF D8 FF, PNM 'P' + '1'..'6'.
ImageFormat sniff_format(const uint8_t* bytes, size_t size);
// From a path's extension (.png, .jpg/.jpeg, .ppm/.pgm/.pnm); unknown otherwise.
ImageFormat format_from_extension(const std::string& path);
// "png", "jpeg"/"jpg", "pnm"/"ppm"/"pgm"; throws Error(usage) otherwise.
ImageFormat parse_format(const std::string& name);

// Decodes PNG (8/16-bit; gray, gray+alpha, RGB, RGBA; palette expanded to RGB
// or RGBA when it has transparency), JPEG (gray or RGB; CMYK refused), PNM.
// `name` is used in messages only. Truncated or corrupt data, zero size and
// unsupported formats throw Error(bad_input) "<name>: <what>".
Image decode_image(const uint8_t* bytes, size_t size, const std::string& name);
inline Image decode_image(const std::vector<uint8_t>& bytes, const std::string& name) {
  return decode_image(bytes.data(), bytes.size(), name);
}
// read_file_bytes + decode_image; "-" reads stdin.
Image read_image(const std::string& path);

struct EncodeOptions {
  int jpeg_quality = 95;         // 1..100
  bool jpeg_subsample_420 = true;  // libjpeg's default 4:2:0 chroma subsampling (as cv2.imencode)
  int png_compression = 6;       // zlib level 0..9
};
// PNG keeps depth and channels; JPEG needs depth 8 and 1 or 3 channels; PNM
// needs 1 or 3 channels (P5/P6, maxval 255 or 65535).
std::vector<uint8_t> encode_image(const Image& img, ImageFormat fmt, const EncodeOptions& opt = {});
// Encodes by `fmt` (or the path's extension when fmt is unknown) and writes
// atomically; "-" writes stdout (then fmt must be given, else PNG).
void write_image(const std::string& path, const Image& img, ImageFormat fmt = ImageFormat::unknown,
                 const EncodeOptions& opt = {});

}  // namespace rass
