// Image codecs: PNG (libpng), JPEG (libjpeg-turbo), PNM (P5/P6, also P2/P3 on
// input). The input format is sniffed from magic bytes, never the extension;
// the output format comes from the extension or an explicit choice.
// Every decode error names the file and what was wrong (exit code 3).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "rass/core/image.hpp"

namespace rass {

enum class ImageFormat { unknown, png, jpeg, pnm };

const char* format_name(ImageFormat f);
// Magic bytes: PNG \x89PNG\r\n\x1a\n, JPEG FF D8 FF, PNM 'P' + '1'..'6'.
ImageFormat sniff_format(const uint8_t* bytes, size_t size);
// From a path's extension (.png, .jpg/.jpeg, .ppm/.pgm/.pnm); unknown otherwise.
ImageFormat format_from_extension(const std::string& path);
// The format an output path asks for: its extension's, else PNG for "-" and
// a descriptor path (/dev/fd/N, /dev/stdout: no name to tell a format by),
// else unknown (a file name without a known extension).
ImageFormat output_image_format(const std::string& path);
// The -o of a tool whose output is a colour image (rass-restore, -samsr,
// -dreamclear): Error(usage) when output_image_format cannot tell its format,
// or when it is a .pgm (a gray format: the PPM bytes under that name fooled
// readers that trust extensions).
void check_colour_image_output(const std::string& path);
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
// The width and height an image's header declares, read without decoding
// the pixels: what a tool needs to decide before the work (rass-restore's
// tiles). {0, 0} where the header cannot be read (decode_image then names
// the problem).
std::pair<int, int> image_header_size(const uint8_t* bytes, size_t size);
// The bits per sample the header declares (8 or 16; a PNG's palette or
// sub-byte gray counts as 8, as decode_image reads it), 0 when unreadable.
int image_header_depth(const uint8_t* bytes, size_t size);

// An image file's bytes ("-" = stdin), its first bytes checked to be a
// format decode_image takes (/dev/zero or a stray binary is Error(bad_input)
// before it is read whole): for a caller that also needs the bytes (a hash).
std::vector<uint8_t> read_image_bytes(const std::string& path);
// read_image_bytes + decode_image; "-" reads stdin.
Image read_image(const std::string& path);

// Reads a label map (class indices): a single-channel PNG (8/16-bit gray)
// or gray JPEG decodes as read_image does; a PNM to its samples as stored
// (PGM/PPM not scaled to the full range when maxval is not 255 or 65535,
// depth 16 above 255; PBM white 1, black 0, as Pillow reads it); a palette
// PNG (VOC's SegmentationClass format) decodes to its palette indices as one
// 8-bit channel, as PIL's mode 'P' / mmseg's loader give them, whatever the
// palette colours and any tRNS. Colour images keep their channels (the
// caller refuses them). "-" reads stdin.
Image read_label_image(const std::string& path);
Image decode_label_image(const uint8_t* bytes, size_t size, const std::string& name);

// Pixel limit: every decoder checks width x height from the header against it
// before allocating, and refuses larger images with Error(bad_input) naming the
// file, its declared size and how to raise the limit. Process-wide (tools set
// it from --max-pixels). Without set_max_pixels, the limit is the environment
// variable RASS_MAX_PIXELS when set (a non-negative integer), else
// kDefaultMaxPixels. 0 = no limit (the codecs' own bounds, 65535 pixels per
// side and 2^31 samples, still hold).
constexpr uint64_t kDefaultMaxPixels = uint64_t{1} << 28;
void set_max_pixels(uint64_t pixels);
// Throws Error(usage) if RASS_MAX_PIXELS is set but not a non-negative integer.
uint64_t max_pixels();
// The most bytes an image file of max_pixels() pixels can take: 24 a pixel
// (plain-text PPM of 16-bit samples, "65535 " three times; a raw 16-bit RGBA
// PNG takes 8) and 64 MiB for headers and metadata; 0 = no limit. read_image_bytes refuses a longer file or stdin (exit 3) once it
// has read that much: a stream that never ends no longer fills the memory.
uint64_t max_image_file_bytes();
// Throws Error(bad_input) "<name>: image too large (WxH = N pixels; the pixel
// limit is L: raise it with --max-pixels N or RASS_MAX_PIXELS)" when
// width*height exceeds max_pixels(). For sizes an image declares (headers,
// degradation records) before anything is allocated.
void check_pixel_limit(const std::string& name, uint64_t width, uint64_t height);

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
